"""emdl.models.yolo: sizes and config, the distribution focal loss on hand-worked cases, the
head priors, and a tiny detector whose loss falls over a few steps."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from emdl.models.yolo import (
    BINS,
    DetectorConfig,
    build_detector,
    distribution_focal_loss,
)


def test_config_round_trip_and_defaults():
    config = DetectorConfig(size="xxs", longest_side=640, classes=2)
    assert DetectorConfig.from_dict(config.to_dict()) == config
    assert config.resize.shape(2048, 1024) == (640, 320)
    assert DetectorConfig().classes == 0  # taken from the labels


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"size": "huge"}, "size must be one of"),
        ({"classes": -1}, "classes must be 0"),
        ({"tile": 100}, "tile must divide by 32"),
        ({"overlap": 640}, "overlap must be in"),
        ({"scale": 0}, "scale must be positive"),
        ({"colour": 1}, "unknown setting"),
    ],
)
def test_bad_config(settings, message):
    with pytest.raises(ValueError, match=message):
        DetectorConfig.from_dict(settings)


def test_dfl_is_the_cross_entropy_of_the_two_bins_around_the_distance():
    # One anchor at (4, 4); its target box reaches 2.25 to the left, 3 up, 0.5 right, 7 down.
    anchor = np.array([[4.0, 4.0]], np.float32)
    target = np.array([[[1.75, 1.0, 4.5, 11.0]]], np.float32)
    logits = np.zeros((1, 1, 4 * BINS), np.float32)  # uniform: every bin has log p = -log 16
    loss = float(distribution_focal_loss(logits, target, anchor)[0, 0])
    assert loss == pytest.approx(math.log(BINS), rel=1e-6)
    # All mass on the right bins: 2.25 -> bins 2 (0.75) and 3 (0.25); 3 -> bin 3; 0.5 -> bins 0
    # and 1 (0.5 each); 7 -> bin 7. A logit of 20 on one bin gives it log p ~ 0, others ~ -20.
    sure = np.full((4, BINS), -20.0, np.float32)
    sure[0, 2], sure[1, 3], sure[2, 0], sure[3, 7] = 20, 20, 20, 20
    loss = float(distribution_focal_loss(sure.reshape(1, 1, -1), target, anchor)[0, 0])
    # side 0 loses 0.25 x 40 (its bin 3 has log p = -40), side 2 loses 0.5 x 40; mean of four.
    assert loss == pytest.approx((0.25 * 40 + 0.5 * 40) / 4, rel=1e-3)


def test_head_biases_start_at_the_priors():
    model = build_detector(DetectorConfig(size="xxs", classes=2), window=256)
    bias = model.get_layer("yolo_v8_head_1_class_3_conv").get_weights()[1]
    np.testing.assert_allclose(bias, math.log(5 / 2 / (256 / 8) ** 2), rtol=1e-6)
    box_bias = model.get_layer("yolo_v8_head_3_box_3_conv").get_weights()[1]
    np.testing.assert_array_equal(box_bias, 1.0)


def squares(count: int, size: int = 64, seed: int = 0):
    """Images with one bright square each and their dense targets (padded to 2 boxes)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, size, size, 1), np.float32)
    boxes = np.full((count, 2, 4), -1.0, np.float32)
    classes = np.full((count, 2), -1.0, np.float32)
    for i in range(count):
        x, y = rng.integers(4, size - 24, 2)
        images[i, y : y + 16, x : x + 16] = 1
        boxes[i, 0] = [x, y, x + 16, y + 16]
        classes[i, 0] = 0
    return images, {"boxes": boxes, "classes": classes}


@pytest.mark.slow
def test_a_tiny_detector_learns():
    keras.utils.set_random_seed(0)
    model = build_detector(DetectorConfig(size="xxs", classes=1), window=64)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        box_loss="ciou",
        classification_loss="binary_crossentropy",
        dfl_loss_weight=1.5,
    )
    images, targets = squares(8)
    data = tf.data.Dataset.from_tensor_slices((images, targets)).batch(4).repeat()
    history = model.fit(data, steps_per_epoch=2, epochs=6, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    found = model.predict_on_batch(images[:2])
    assert set(found) == {"boxes", "classes", "confidence", "num_detections"}
    assert found["boxes"].shape[-1] == 4


def test_save_and_load_give_identical_outputs(tmp_path):
    config = DetectorConfig(size="xxs", classes=1)
    model = build_detector(config, window=64)
    images, _ = squares(2)
    model.save_weights(tmp_path / "w.weights.h5")
    again = build_detector(config, window=64)
    again.load_weights(tmp_path / "w.weights.h5")
    for key in ("boxes", "classes"):
        np.testing.assert_array_equal(model(images)[key], again(images)[key])


def test_top_score_is_the_batches_highest_class_score_averaged():
    model = build_detector(DetectorConfig(size="xxs", classes=1), window=64)
    model.compile(optimizer="adam", box_loss="ciou", classification_loss="binary_crossentropy")
    images, targets = squares(4)
    data = tf.data.Dataset.from_tensor_slices((images, targets)).batch(2)
    logs = model.evaluate(data, verbose=0, return_dict=True)
    highest = [float(np.max(model(images[i : i + 2])["classes"])) for i in (0, 2)]
    assert logs["top_score"] == pytest.approx(np.mean(highest), rel=1e-5)
    assert 0 < logs["top_score"] < 1  # sigmoid scores
