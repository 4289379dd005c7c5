"""emdl export: a tiny run in TF Serving's layout, served in a fresh process from uint8 input,
finishing a run interrupted before its export, and the one-line refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from emdl.cli import main
from tests.conftest import box_image, box_xml, tiny_config, write_labeled_folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from emdl.train.run import train_run

    root = tmp_path_factory.mktemp("export")
    labels, images = write_labeled_folder(
        root,
        {
            "a.png": (box_image(64), box_xml("a.png", 64)),
            "b.png": (box_image(64), box_xml("b.png", 64)),
        },
    )
    run = root / "bubbles"
    train_run(tiny_config(labels, images), run, verbose=0)
    return run


SERVE = """
import json, sys
import numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
counts = np.random.default_rng(0).integers(0, 256, (1, 40, 52, 1)).astype(np.uint8)
typed = loaded.serve(tf.constant(counts))["probabilities"].numpy()
floats = loaded.signatures["serving_default"](image=tf.constant(counts, tf.float32))
print(json.dumps([list(typed.shape), float(np.abs(typed - floats["probabilities"]).max())]))
"""


@pytest.mark.slow
def test_export_writes_tf_servings_layout(run_dir, tmp_path, capsys):
    serving = tmp_path / "serving"
    assert main(["export", str(run_dir), "--serving-dir", str(serving)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"exported {serving / 'bubbles' / '1'} (listed in {serving / 'models.config'})"
    )
    assert main(["export", str(run_dir), "--serving-dir", str(serving)]) == 0
    assert main(["export", str(run_dir), "--serving-dir", str(serving), "--name", "u"]) == 0
    assert sorted(p.name for p in (serving / "bubbles").iterdir()) == ["1", "2"]
    config = (serving / "models.config").read_text()
    assert config.count("config {") == 2 and f'"{(serving / "u").resolve()}"' in config
    info = json.loads((serving / "u" / "1" / "assets.extra" / "emdl.json").read_text())
    assert info["kind"] == "unet" and info["classes"] == ["bubble", "loop"]
    assert info["threshold"] == 0.5 and info["min_area"] == 10

    # Served in a fresh process, from uint8 pixels, as float32 would be.
    served = subprocess.run(
        [sys.executable, "-c", SERVE, str(serving / "bubbles" / "2")],
        capture_output=True,
        text=True,
        check=True,
    )
    shape, difference = json.loads(served.stdout.strip().splitlines()[-1])
    assert shape == [1, 40, 52, 3] and difference < 1e-6


@pytest.mark.slow
def test_export_finishes_a_run_interrupted_before_its_export(run_dir, tmp_path, capsys):
    copy = tmp_path / "bubbles"
    shutil.copytree(run_dir, copy)
    (copy / "metrics.json").unlink()
    shutil.rmtree(copy / "saved_model")
    assert main(["export", str(copy), "--serving-dir", str(tmp_path / "serving")]) == 0
    err = capsys.readouterr().err
    assert f"{copy}: finishing the run (evaluation, calibration, plots, saved_model/) ..." in err
    assert (copy / "metrics.json").is_file() and (copy / "saved_model" / "saved_model.pb").is_file()
    assert (tmp_path / "serving" / "bubbles" / "1" / "saved_model.pb").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, problem",
    [
        (["--version", "0"], "0: not a version: expected a positive integer such as 1"),
        (["--version", "two"], "two: not a version: expected a positive integer such as 1"),
        (["--name", "a/b"], "a/b: not a model name"),
    ],
)
def test_bad_export_options_are_one_line(run_dir, tmp_path, capsys, extra, problem):
    serving = tmp_path / "serving"
    assert main(["export", str(run_dir), "--serving-dir", str(serving), *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"emdl: error: {problem}") and err.count("\n") == 1
    assert not serving.exists()


def test_a_serving_dir_that_is_a_file_and_a_folder_without_a_run(tmp_path, capsys):
    file = tmp_path / "serving"
    file.write_text("x")
    assert main(["export", str(tmp_path), "--serving-dir", str(file)]) == 1
    assert capsys.readouterr().err == f"emdl: error: {file}: is a file, not a serving folder\n"
    assert main(["export", str(tmp_path), "--serving-dir", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert err == f"emdl: error: {tmp_path}: not a run directory: no config.json\n"
    assert not (tmp_path / "s").exists() and file.read_text() == "x"


def test_a_run_whose_training_did_not_end_is_refused_with_how_to_resume(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    assert main(["export", str(run), "--serving-dir", str(tmp_path / "s")]) == 1
    assert capsys.readouterr().err == (
        f"emdl: error: {run}: training has not ended; resume it with "
        f"emdl train {run / 'config.json'} --out {run}\n"
    )


def test_export_needs_a_destination(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 1
    assert "give --serving-dir DIR and/or --cvat-serverless DIR" in capsys.readouterr().err
