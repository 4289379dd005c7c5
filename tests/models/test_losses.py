"""emdl.models.losses against hand-computed values."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from emdl.models.losses import SegmentationLoss

TRUTH = np.array([[[[1], [0]], [[0], [0]]]], dtype=np.int32)  # (1, 2, 2, 1)
PROBABILITIES = np.array([[[[0.8], [0.2]], [[0.1], [0.4]]]], dtype=np.float32)


def loss(terms, truth=TRUTH, probabilities=PROBABILITIES, classes=1) -> float:
    return float(SegmentationLoss(terms, classes=classes)(truth, probabilities))


def test_binary_cross_entropy():
    expected = -(math.log(0.8) + math.log(0.8) + math.log(0.9) + math.log(0.6)) / 4
    assert loss({"cross_entropy": 1}) == pytest.approx(expected, rel=1e-5)


def test_dice():
    # overlap 0.8; truth 1 and prediction 1.5 in all; smoothing 1
    assert loss({"dice": 1}) == pytest.approx(1 - (2 * 0.8 + 1) / (2.5 + 1), rel=1e-5)


def test_focal():
    # (1 - p_t) ** 2 * -log(p_t) per pixel, p_t the probability of the true class
    p_true = [0.8, 0.8, 0.9, 0.6]
    expected = np.mean([(1 - p) ** 2 * -math.log(p) for p in p_true])
    assert loss({"focal": 1}) == pytest.approx(expected, rel=1e-4)


def test_weighted_sum():
    combined = loss({"cross_entropy": 2.0, "dice": 0.5})
    parts = 2.0 * loss({"cross_entropy": 1}) + 0.5 * loss({"dice": 1})
    assert combined == pytest.approx(parts, rel=1e-6)


def test_multi_class_cross_entropy_and_dice():
    truth = np.array([[[[2], [0]]]], dtype=np.int32)  # (1, 1, 2, 1)
    probabilities = np.array([[[[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]]], dtype=np.float32)
    expected = -(math.log(0.7) + math.log(0.6)) / 2
    assert loss({"cross_entropy": 1}, truth, probabilities, 2) == pytest.approx(expected, rel=1e-5)
    # foreground channels 1 and 2: class 1 overlap 0, total 0.5; class 2 overlap 0.7, total 1.8
    dice = 1 - np.mean([(0 + 1) / (0.5 + 1), (1.4 + 1) / (1.8 + 1)])
    assert loss({"dice": 1}, truth, probabilities, 2) == pytest.approx(dice, rel=1e-5)


def test_unknown_terms_and_serialization():
    with pytest.raises(ValueError, match="loss terms must be among"):
        SegmentationLoss({"hinge": 1})
    original = SegmentationLoss({"focal": 1.0, "dice": 2.0}, classes=3)
    restored = keras.losses.deserialize(keras.losses.serialize(original))
    assert (restored.terms, restored.classes) == ({"focal": 1.0, "dice": 2.0}, 3)


def test_distance_error_is_added_and_the_class_terms_ignore_the_distance_channels():
    # The truth's second channel is the normalized distance x 255; the prediction's last channel
    # the predicted distance: errors 0.3, 0, 0.1, 0.2, mean 0.15, times the weight 2.
    truth = np.concatenate([TRUTH, np.array([[[[255], [0]], [[51], [0]]]], np.int32)], -1)
    predicted = np.array([[[[0.7], [0.0]], [[0.3], [0.2]]]], np.float32)
    probabilities = np.concatenate([PROBABILITIES, predicted], -1)
    terms = {"cross_entropy": 1, "dice": 1}
    with_distance = float(SegmentationLoss(terms, distance_weight=2.0)(truth, probabilities))
    assert with_distance == pytest.approx(loss(terms) + 2.0 * 0.15, rel=1e-5)
    config = SegmentationLoss(terms, distance_weight=2.0).get_config()
    assert SegmentationLoss.from_config(config).distance_weight == 2.0
