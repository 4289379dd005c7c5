"""``python -m emdl.experiments.unet_bubbles``: a short run on small stand-in data."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from skimage import io as skio

from emdl import sample_data as datasets
from emdl.experiments import bubbles, unet_bubbles
from tests.conftest import BUBBLE_BOXES, box_image

SHORT = ["--epochs", "1", "--steps-per-epoch", "1"]


def run(folder, out, capsys, *options) -> tuple[dict, list[str]]:
    """The experiment at its defaults but ``options``, one step."""
    status = unet_bubbles.main(["--data-dir", str(folder), "--out", str(out), *SHORT, *options])
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    return metrics, capsys.readouterr().out.strip().splitlines()


@pytest.mark.slow
def test_without_the_test_pair_it_holds_out_an_image(bubbles_folder, tmp_path, capsys):
    out = tmp_path / "run"  # the distance U-Net, with one synthetic overlapping-bubble image
    metrics, lines = run(bubbles_folder, out, capsys, "--distance-weight", "1", "--overlaps", "1")
    assert metrics["evaluated_on"] == "validation"
    assert [image["name"] for image in metrics["images"]] == ["DL_for_Microscopy_Train_Img_1.png"]
    assert 0 <= metrics["iou"] <= 1 and 0 <= metrics["dice"] <= 1
    assert lines[0] == f"data: {bubbles_folder}; evaluating on a held-out image"
    overlaps = out / "synthetic_overlaps"
    assert lines[1].startswith("data: 1 images, ") and str(overlaps) in lines[1]
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["images"] == [str(bubbles_folder), str(overlaps / "images")]
    assert config["model"]["distance_weight"] == 1.0
    assert lines[-1] == (
        f"IoU {metrics['iou']:.3f} on the held-out training image (lecture's U-Net: 0.713)"
    )


@pytest.mark.slow
def test_with_the_test_pair_it_scores_the_test_image(bubbles_folder, tmp_path, capsys):
    skio.imsave(
        bubbles_folder / "test_image.png", box_image(256, BUBBLE_BOXES), check_contrast=False
    )
    label = (box_image(256, BUBBLE_BOXES) > 0).astype(np.uint8) * 255
    skio.imsave(bubbles_folder / "test_label.png", label, check_contrast=False)
    metrics, lines = run(bubbles_folder, tmp_path / "run", capsys)
    assert metrics["evaluated_on"] == "test_image"
    config = json.loads((tmp_path / "run" / "config.json").read_text())  # the defaults
    assert (config["data"]["images"], config["model"]["distance_weight"]) == (
        str(bubbles_folder),
        0.0,
    )
    assert not (tmp_path / "run" / "synthetic_overlaps").exists()
    assert [image["name"] for image in metrics["images"]] == ["test_image.png"]
    assert lines[-1].endswith("on the test image (lecture's U-Net: 0.713)")


@pytest.mark.parametrize("hold_out", [False, True])
def test_the_overlaps_train_beside_the_real_images_and_are_never_validated_on(tmp_path, hold_out):
    overlaps = (tmp_path / "o" / "annotations.xml", tmp_path / "o" / "images")
    config = unet_bubbles.default_config(
        tmp_path, epochs=1, steps_per_epoch=1, hold_out=hold_out, distance_weight=1.0,
        overlaps=overlaps,
    )  # fmt: skip
    real = [str(tmp_path / name) for name in unet_bubbles.LABELS]
    data = config.data
    assert data.images == (str(tmp_path), str(overlaps[1]))
    assert (data.validation_fraction, config.model.distance_weight) == (0.0, 1.0)
    if hold_out:  # image 1, as the 0.5 split of the two real images picks with seed 0
        assert (data.labels, data.validation_labels) == ((real[1], str(overlaps[0])), (real[0],))
    else:
        assert (data.labels, data.validation_labels) == ((*real, str(overlaps[0])), ())
    plain = unet_bubbles.default_config(tmp_path, epochs=1, steps_per_epoch=1, hold_out=True)
    assert (plain.data.labels, plain.data.images) == (tuple(real), str(tmp_path))
    assert (plain.data.validation_fraction, plain.model.distance_weight) == (0.5, 0)


def test_offline_without_data_it_says_how_to_supply_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMDL_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("EMDL_CACHE_DIR", str(tmp_path / "cache"))
    offline = dataclasses.replace(datasets.BUBBLES, base_url=(tmp_path / "no").as_uri() + "/")
    monkeypatch.setattr(datasets, "BUBBLES", offline)
    status = unet_bubbles.main(["--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and "--data-dir" in err and "EMDL_DATA_DIR" in err


@pytest.mark.slow
def test_synthetic_trains_and_scores_on_generated_bubbles_without_data(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("EMDL_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("EMDL_CACHE_DIR", str(tmp_path / "cache"))
    offline = dataclasses.replace(datasets.BUBBLES, base_url=(tmp_path / "no").as_uri() + "/")
    monkeypatch.setattr(datasets, "BUBBLES", offline)
    monkeypatch.setattr(bubbles, "SYNTHETIC_COUNT", 4)
    monkeypatch.setattr(bubbles, "SYNTHETIC_SIZE", 256)
    out = tmp_path / "run"
    status = unet_bubbles.main(
        ["--synthetic", "--out", str(out), "--epochs", "1", "--steps-per-epoch", "1"]
    )
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["synthetic"] is True and metrics["evaluated_on"] == "validation"
    held_out = np.random.default_rng(0).permutation(4)[0]  # emdl.data.split_by_image's pick
    assert [image["name"] for image in metrics["images"]] == [f"synthetic_{held_out:04d}.png"]
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["labels"] == [str(out / "synthetic_data" / "annotations.xml")]
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("data: 4 images, ") and "synthetic_data/annotations.xml" in lines[0]
    assert lines[-1] == (
        f"IoU {metrics['iou']:.3f} on held-out synthetic images (not comparable with the "
        "lecture's U-Net: 0.713 on its real test image)"
    )
    assert not (tmp_path / "cache").exists()  # nothing downloaded

    # Again with --overwrite: the same images, made before, are used.
    assert unet_bubbles.main(["--synthetic", "--out", str(out), "--overwrite", *SHORT]) == 0
    assert "(made before)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        (["--overlaps", "-2"], "--overlaps: must be at least 0, got -2"),
        (
            ["--distance-weight", "-1"],
            "--distance-weight: expected a weight of 0 or more, got '-1'",
        ),
        (
            ["--distance-weight", "nan"],
            "--distance-weight: expected a weight of 0 or more, got 'nan'",
        ),
    ],
)
def test_a_bad_option_is_one_line(tmp_path, capsys, option, problem):
    with pytest.raises(SystemExit) as stopped:
        unet_bubbles.main(["--out", str(tmp_path / "run"), *option])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(problem)
    assert not (tmp_path / "run").exists()


def test_synthetic_and_a_data_folder_are_refused_together(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        unet_bubbles.main(["--synthetic", "--data-dir", str(tmp_path)])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().endswith("give --data-dir or --synthetic, not both")
