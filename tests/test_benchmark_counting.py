"""The emdl side of benchmarks/counting.py's ``atomai`` method: AtomAI's training crops, its
cycles and batch, the reading of the peer's probabilities, and the method end to end with a
stand-in driver (plain Python, no torch, no training) in place of AtomAI's."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from emdl.errors import EmdlError, InputError
from emdl.io.image import read_image
from tests.conftest import REPO, load_benchmark

# Reads what the real driver reads and writes what it writes; its probabilities are the held-out
# image itself, which in the stand-in data is its own mask.
FAKE_DRIVER = """import json, sys
import numpy as np
mode, settings = sys.argv[1], json.load(open(sys.argv[2]))
images, masks = np.load(settings["images"]), np.load(settings["masks"])
np.save(settings["probabilities"], np.load(settings["image"]).astype("float32"))
json.dump({"mode": mode, "crops": len(images), "mask_pixels": float(masks.sum()),
           "cycles": settings["cycles"], "batch_size": settings["batch_size"],
           "seed": settings["seed"], "predict_seconds": 0.0,
           "probabilities": settings["probabilities"]}, open(settings["result"], "w"))
"""


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("counting")


def test_crops_cover_the_image_in_raster_order(bench):
    image = np.arange(300 * 400, dtype=np.float32).reshape(300, 400)
    mask = (image % 7 == 0).astype(np.uint8)
    images, masks = bench.atomai_crops(image, mask)
    # Rows start at 0 and 44 (flush with the bottom), columns at 0, 128 and 144.
    windows = [(t, lt) for t in (0, 44) for lt in (0, 128, 144)]
    assert images.shape == masks.shape == (6, 1, 256, 256)
    assert images.dtype == masks.dtype == np.float32
    for k, (top, left) in enumerate(windows):
        np.testing.assert_array_equal(images[k, 0], image[top : top + 256, left : left + 256])
        np.testing.assert_array_equal(masks[k, 0], mask[top : top + 256, left : left + 256])
    assert len(bench.atomai_crops(np.zeros((512, 512)), np.zeros((512, 512)))[0]) == 9
    with pytest.raises(ValueError, match="smaller than a 256 px crop"):
        bench.atomai_crops(np.zeros((255, 512)), np.zeros((255, 512)))
    with pytest.raises(ValueError, match="differ in shape"):
        bench.atomai_crops(np.zeros((256, 256)), np.zeros((256, 257)))


def test_cycles_match_the_crops_emdl_sees(bench):
    args = bench.argparse.Namespace(
        epochs=16, steps_per_epoch=30, atomai_batch_size=None, atomai_cycles=None
    )
    # 16 x 30 x 8 = 3840 crops over a batch of the 9 crops (AtomAI's 32 keeps no whole batch).
    assert bench.atomai_settings((512, 512), args) == {"batch_size": 9, "cycles": 427, "crops": 9}
    args.atomai_batch_size = 8
    assert bench.atomai_settings((512, 512), args)["cycles"] == 480
    args.atomai_cycles = 5
    assert bench.atomai_settings((512, 512), args)["cycles"] == 5
    args.atomai_batch_size = 10
    with pytest.raises(EmdlError, match="--atomai-batch-size 10: must be 1 to the 9 crops"):
        bench.atomai_settings((512, 512), args)


def test_reads_the_peer_probabilities(bench, tmp_path):
    path = tmp_path / "probabilities.npy"
    np.save(path, np.array([[0.0, 0.25], [1.0, 0.5]]))
    probabilities = bench.read_atomai_probabilities(path, (2, 2))
    assert probabilities.dtype == np.float32 and probabilities.shape == (2, 2, 1)
    np.testing.assert_array_equal(probabilities[..., 0], [[0.0, 0.25], [1.0, 0.5]])
    with pytest.raises(InputError, match=r"probabilities.npy: shape \(2, 2\), expected \(3, 2\)"):
        bench.read_atomai_probabilities(path, (3, 2))
    np.save(path, np.array([[0.0, 1.5]]))
    with pytest.raises(InputError, match="outside"):
        bench.read_atomai_probabilities(path, (1, 2))
    path.write_text("no array")
    with pytest.raises(InputError, match="not a .npy array"):
        bench.read_atomai_probabilities(path, (1, 2))


def test_driver_is_python(bench):
    compile(bench.ATOMAI_DRIVER, "driver.py", "exec")


def test_atomai_method_end_to_end(bench, bubbles_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "ATOMAI_DRIVER", FAKE_DRIVER)
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # as when run as a script
    out = tmp_path / "runs"
    argv = ["--data-dir", str(bubbles_folder), "--methods", "atomai", "--out", str(out)]
    argv += ["--atomai-python", sys.executable, "--atomai-cycles", "3"]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    # The stand-in's probabilities are the truth: every bubble found, sizes exact.
    for name in (*bench.IMAGES, "both"):
        row = next(line for line in printed.splitlines() if line.startswith(f"atomai-c3  {name}"))
        assert row.split()[2:] == (["8/8"] if name == "both" else ["4/4"]) + [
            "+0.0%",
            "+0.0%",
            "0.000",
            "1.000",
        ]
    run = out / "atomai-c3-train1"
    image = read_image(bubbles_folder / bench.IMAGES[0])
    np.testing.assert_array_equal(np.load(run / "train_images.npy"), image[None, None])
    done = json.loads((run / "result.json").read_text())
    assert done == {
        "mode": "fit",
        "crops": 1,
        "mask_pixels": float((image > 0).sum()),
        "cycles": 3,
        "batch_size": 1,
        "seed": 0,
        "predict_seconds": 0.0,
        "probabilities": str(run / "probabilities.npy"),
    }
    # A finished run is read again, not driven again.
    monkeypatch.setattr(bench, "ATOMAI_DRIVER", "raise SystemExit(1)")
    assert bench.main(argv) == 0


def test_missing_peer_is_one_line(bench, bubbles_folder, tmp_path, capsys):
    argv = ["--data-dir", str(bubbles_folder), "--methods", "atomai", "--out", str(tmp_path)]
    assert bench.main([*argv, "--atomai-python", str(tmp_path / "none")]) == 0
    printed = capsys.readouterr().out
    assert printed == f"atomai: {tmp_path / 'none'}: no such Python, skipped (see the docstring)\n"
    assert bench.main([*argv, "--atomai-python", sys.executable, "--atomai-batch-size", "2"]) == 1
    assert capsys.readouterr().err == "counting: --atomai-batch-size 2: must be 1 to the 1 crops\n"
