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
def test_it_scores_a_held_out_image_or_the_test_pair(bubbles_folder, tmp_path, capsys, monkeypatch):
    trained = []
    train = maskrcnn_bubbles.bubbles.train

    def keep(config, out, **kwargs):
        trained.append((config, train(config, out, **kwargs)))
        return trained[-1][1]

    monkeypatch.setattr(maskrcnn_bubbles.bubbles, "train", keep)
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

    # With the test pair: trained on both images (nothing held out) and scored on the pair.
    # The model trained above stands in for that run, so that the suite trains one, not two.
    skio.imsave(
        bubbles_folder / "test_image.png", box_image(256, BUBBLE_BOXES), check_contrast=False
    )
    label = (box_image(256, BUBBLE_BOXES) > 0).astype(np.uint8) * 255
    skio.imsave(bubbles_folder / "test_label.png", label, check_contrast=False)
    configs = []

    def stand_in(config, out, **kwargs):
        configs.append(config)
        return trained[0][1]

    monkeypatch.setattr(maskrcnn_bubbles.bubbles, "train", stand_in)
    out = tmp_path / "with_pair"
    out.mkdir()
    assert (
        maskrcnn_bubbles.main(["--data-dir", str(bubbles_folder), "--out", str(out), *SHORT]) == 0
    )
    assert (trained[0][0].data.validation_fraction, configs[0].data.validation_fraction) == (
        0.5,
        0.0,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "test_image" and 0 <= metrics["iou"] <= 1
    assert isinstance(metrics["instances"], int)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"data: {bubbles_folder}; evaluating on test_image.png"
    assert lines[-1].startswith(f"IoU {metrics['iou']:.3f} on the test image")
