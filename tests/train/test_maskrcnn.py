"""Mask R-CNN runs: a tiny run writes its directory and scores, `emdl evaluate` and `emdl
predict` take it, and its SavedModel serves masks in a fresh process."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from skimage import io as skio

from emdl.cli import main
from emdl.models.maskrcnn import MaskRCNN
from emdl.train.config import DataConfig, RunConfig, TrainingConfig
from emdl.train.run import load_run, train_run
from tests.conftest import TINY, box_image, box_xml, cvat_text

KEYS = ("mask_ap50", "mask_ap50_95", "ap50", "f1_50", "iou")


def maskrcnn_run_config(labels, images, **model) -> RunConfig:
    return RunConfig(
        kind="maskrcnn",
        data=DataConfig(
            labels=(str(labels),),
            images=str(images),
            validation_fraction=0.5,
            window=64,
            stride=64,
            batch_size=2,
        ),
        model=dataclasses.replace(TINY, **{"classes": 0, **model}),
        training=TrainingConfig(epochs=1, steps_per_epoch=2),
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished tiny Mask R-CNN run on two 96 x 96 images with four rectangles each."""
    folder = tmp_path_factory.mktemp("maskrcnn")
    images = folder / "images"
    images.mkdir()
    body = []
    for name in ("a.png", "b.png"):
        skio.imsave(images / name, box_image(96), check_contrast=False)
        body.append(box_xml(name, 96))
    labels = folder / "labels.xml"
    labels.write_text(cvat_text("\n".join(body), labels=("bubble",)))
    result = train_run(maskrcnn_run_config(labels, images), folder / "run", verbose=0)
    return result, labels, images


@pytest.mark.slow
def test_a_maskrcnn_run_writes_its_directory(finished_run):
    result, _, _ = finished_run
    for name in ("config.json", "history.csv", "best.weights.h5", "metrics.json", "curves.png"):
        assert (result.run_dir / name).is_file(), name
    assert (result.run_dir / "overlays.png").is_file()
    assert (result.run_dir / "saved_model" / "saved_model.pb").is_file()
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["kind"] == "maskrcnn" and saved["model"]["classes"] == 1
    assert saved["training"]["monitor"] == "val_loss"
    history = (result.run_dir / "history.csv").read_text().splitlines()[0].split(",")
    for name in ("rpn_class", "rpn_box", "class", "box", "mask", "val_mask"):
        assert name in history, name
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "validation" and metrics["objects"] == 4
    for key in KEYS:
        assert 0 <= metrics[key] <= 1, key
    config, model = load_run(result.run_dir)
    assert config.kind == "maskrcnn" and isinstance(model, MaskRCNN)


@pytest.mark.slow
def test_emdl_evaluate_scores_a_maskrcnn_run(finished_run, tmp_path, capsys):
    result, labels, images = finished_run
    out = tmp_path / "scores.json"
    arguments = ["--labels", str(labels), "--images", str(images), "--json", str(out)]
    assert main(["evaluate", str(result.run_dir), *arguments]) == 0
    scores = json.loads(out.read_text())
    assert set(KEYS) <= set(scores) and scores["objects"] == 8
    assert f"mask_ap50 {scores['mask_ap50']:.3f}" in capsys.readouterr().out


@pytest.mark.slow
def test_emdl_predict_takes_a_maskrcnn_run(finished_run, tmp_path, capsys):
    result, _, images = finished_run
    out = tmp_path / "predicted"
    code = main(
        ["predict", str(result.run_dir), str(images), "--out", str(out), "--threshold", "0"]
    )
    assert code == 0
    for name in ("defects.csv", "summary.csv", "annotations.xml", "diameters.png"):
        assert (out / name).is_file(), name
    assert capsys.readouterr().out.startswith("2 images, ")


SERVE = """
import json, sys
import numpy as np, tensorflow as tf
served = tf.saved_model.load(sys.argv[1]).signatures["serving_uint16"]
counts = np.random.default_rng(0).integers(0, 4096, (2, 64, 64, 1))
out = served(image=tf.constant(counts, tf.uint16))
print(json.dumps({key: list(value.shape) for key, value in out.items()}))
"""


@pytest.mark.slow
def test_the_saved_model_serves_masks_in_a_fresh_process(finished_run):
    result, _, _ = finished_run
    run = subprocess.run(
        [sys.executable, "-c", SERVE, str(result.run_dir / "saved_model")],
        capture_output=True,
        text=True,
        check=True,
    )
    shapes = json.loads(run.stdout.strip().splitlines()[-1])
    k = TINY.max_detections
    assert shapes == {
        "boxes": [2, k, 4],
        "classes": [2, k],
        "scores": [2, k],
        "masks": [2, k, 28, 28],
        "num_detections": [2],
    }


@pytest.mark.slow
def test_a_class_count_that_differs_from_the_labels_is_refused(finished_run, tmp_path):
    _, labels, images = finished_run
    with pytest.raises(ValueError, match="classes is 2 but the labels have 1"):
        train_run(maskrcnn_run_config(labels, images, classes=2), tmp_path / "run", verbose=0)
