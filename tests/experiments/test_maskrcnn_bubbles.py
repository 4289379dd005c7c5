"""``python -m emdl.experiments.maskrcnn_bubbles``: one-step runs on stand-in data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import io as skio

from emdl.experiments import maskrcnn_bubbles
from tests.conftest import BUBBLE_BOXES, box_image

SHORT = ["--epochs", "1", "--steps-per-epoch", "1"]


@pytest.mark.slow
def test_without_the_test_pair_it_scores_a_held_out_image(
    bubbles_folder,
    tmp_path,
    capsys,
):
    out = tmp_path / "run"
    assert (
        maskrcnn_bubbles.main(["--data-dir", str(bubbles_folder), "--out", str(out), *SHORT]) == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "validation" and metrics["objects"] == len(BUBBLE_BOXES)
    assert metrics["instances"] == metrics["images"][0]["detected"]
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"data: {bubbles_folder}; evaluating on a held-out image"
    assert lines[-1] == (
        f"IoU {metrics['iou']:.3f} on the held-out training image "
        "(lecture's Mask R-CNN, COCO-pretrained: 0.652)"
    )


@pytest.mark.slow
def test_with_the_test_pair_it_scores_the_test_image(
    bubbles_folder,
    tmp_path,
    capsys,
):
    skio.imsave(
        bubbles_folder / "test_image.png", box_image(256, BUBBLE_BOXES), check_contrast=False
    )
    label = (box_image(256, BUBBLE_BOXES) > 0).astype(np.uint8) * 255
    skio.imsave(bubbles_folder / "test_label.png", label, check_contrast=False)
    out = tmp_path / "run"
    assert (
        maskrcnn_bubbles.main(["--data-dir", str(bubbles_folder), "--out", str(out), *SHORT]) == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "test_image" and 0 <= metrics["iou"] <= 1
    assert isinstance(metrics["instances"], int)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"data: {bubbles_folder}; evaluating on test_image.png"
    assert lines[-1].startswith(f"IoU {metrics['iou']:.3f} on the test image")
