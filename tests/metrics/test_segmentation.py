"""emdl.metrics: IoU, Dice and pixel accuracy against hand-counted pixels."""

from __future__ import annotations

import numpy as np
import pytest

from emdl.metrics import ForegroundDice, ForegroundIoU, PixelAccuracy, dice_score, iou_score
from emdl.metrics.evaluate import score_masks

PREDICTED = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool)
TRUTH = np.array([[1, 0, 0, 0], [1, 1, 1, 0]], bool)  # 4 pixels; TP 2, FP 1, FN 2


def test_numpy_scores():
    assert iou_score(PREDICTED, TRUTH) == pytest.approx(2 / 5)
    assert dice_score(PREDICTED, TRUTH) == pytest.approx(4 / 7)
    empty = np.zeros((2, 2), bool)
    assert iou_score(empty, empty) == 1.0 and dice_score(empty, empty) == 1.0


def test_keras_metrics_pool_pixels_over_batches():
    iou, dice, accuracy = ForegroundIoU(), ForegroundDice(), PixelAccuracy()
    truth = TRUTH.astype(np.int32)[None, ..., None]
    probabilities = np.where(PREDICTED, 0.9, 0.1).astype(np.float32)[None, ..., None]
    for metric in (iou, dice, accuracy):
        metric.update_state(truth, probabilities)
        metric.update_state(truth, truth.astype(np.float32))  # a perfect second batch
    assert float(iou.result()) == pytest.approx((2 + 4) / (5 + 4))
    assert float(dice.result()) == pytest.approx((4 + 8) / (7 + 8))
    assert float(accuracy.result()) == pytest.approx((5 + 8) / 16)
    assert (iou.name, dice.name, accuracy.name) == ("iou", "dice", "pixel_accuracy")
    iou.reset_state()
    assert float(iou.result()) == 0.0


def test_keras_metrics_ignore_a_distance_unets_last_channel():
    # The distance channel (0.95 everywhere) would win an arg-max; the metric reads only the
    # leading foreground channel, as the plain U-Net's metric reads its output.
    truth = np.concatenate([TRUTH.astype(np.int32)[None, ..., None]] * 2, -1)
    foreground = np.where(PREDICTED, 0.9, 0.1).astype(np.float32)[None, ..., None]
    outputs = np.concatenate([foreground, np.full_like(foreground, 0.95)], -1)
    for metric in (ForegroundIoU, PixelAccuracy):
        plain, distance = metric(), metric(probabilities=1)
        plain.update_state(truth[..., :1], foreground)
        distance.update_state(truth, outputs)
        assert float(distance.result()) == float(plain.result())
    assert ForegroundIoU.from_config(ForegroundIoU(probabilities=1).get_config()).probabilities == 1


def test_keras_metrics_per_class_of_a_softmax():
    truth = np.array([[[[2], [1], [0]]]], np.int32)
    probabilities = np.array([[[[0, 0, 1], [0, 0, 1], [1, 0, 0]]]], np.float32)
    second, first = ForegroundIoU(2), ForegroundIoU(1)
    second.update_state(truth, probabilities)
    first.update_state(truth, probabilities)
    assert second.name == "iou_2"
    assert float(second.result()) == pytest.approx(1 / 2)
    assert float(first.result()) == 0.0


def test_score_masks_pools_and_lists_images():
    scores = score_masks(
        [
            ("a", PREDICTED.astype(int), TRUTH.astype(int)),
            ("b", TRUTH.astype(int), TRUTH.astype(int)),
        ],
        ["bubble"],
    )
    assert scores["iou"] == pytest.approx(6 / 9)
    assert scores["dice"] == pytest.approx(12 / 15)
    assert scores["iou_bubble"] == scores["iou"]
    assert scores["pixel_accuracy"] == pytest.approx(13 / 16)
    assert [image["name"] for image in scores["images"]] == ["a", "b"]
    assert scores["images"][0]["iou"] == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="c: prediction"):
        score_masks([("c", np.zeros((2, 2)), np.zeros((2, 3)))], ["bubble"])
