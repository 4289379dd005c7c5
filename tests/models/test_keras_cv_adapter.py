"""emdl.models.keras_cv_adapter against keras-cv itself: these fail when keras-cv's behaviour
under emdl changes (its loss, its anchors, its head's layer names)."""

from __future__ import annotations

import math

import keras
import keras_cv
import numpy as np
import pytest
import tensorflow as tf
from keras_cv.src.models.object_detection.yolo_v8.yolo_v8_detector import get_anchors

from emdl.models import keras_cv_adapter as kcv
from emdl.models.yolo import DetectorConfig, build_detector

CLASSES = 2
WINDOW = 128


@pytest.fixture(scope="module")
def detector():
    keras.utils.set_random_seed(0)
    return build_detector(DetectorConfig(size="xxs", classes=CLASSES), window=WINDOW)


def batch(size: int = 64):
    """Two noisy images, three true boxes ("xyxy" pixels) padded with -1 to three per image."""
    rng = np.random.default_rng(0)
    images = rng.random((2, size, size, 1)).astype(np.float32)
    boxes = np.full((2, 3, 4), -1.0, np.float32)
    classes = np.full((2, 3), -1.0, np.float32)
    boxes[0, 0], classes[0, 0] = [4, 6, 30, 40], 0
    boxes[0, 1], classes[0, 1] = [20, 10, 52, 34], 1
    boxes[1, 0], classes[1, 0] = [2, 3, 60, 61], 1
    return tf.constant(images), {"boxes": tf.constant(boxes), "classes": tf.constant(classes)}


def test_loss_without_dfl_equals_keras_cv_own(detector):
    detector.compile(
        optimizer="adam",
        box_loss="ciou",
        classification_loss="binary_crossentropy",
        box_loss_weight=7.5,
        classification_loss_weight=0.5,
        dfl_loss_weight=0.0,
    )
    images, targets = batch()
    raw = detector(images, training=True)
    ours = float(detector.compute_loss(images, targets, raw))
    theirs = float(keras_cv.models.YOLOV8Detector.compute_loss(detector, images, targets, raw))
    assert ours > 0
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-6)
    detector.dfl_loss_weight = 1.5  # and the DFL term is really there when weighted
    try:
        assert float(detector.compute_loss(images, targets, raw)) > ours + 1e-3
    finally:
        detector.dfl_loss_weight = 0.0


@pytest.mark.parametrize(("height", "width"), [(64, 64), (96, 160), (128, 64)])
def test_dynamic_anchors_equal_get_anchors(height, width):
    points, strides = get_anchors(image_shape=(height, width, 1))
    static_points, static_strides = kcv.dynamic_anchors(height, width)

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 1), tf.float32)])
    def from_image(image):
        return kcv.dynamic_anchors(tf.shape(image)[1], tf.shape(image)[2])

    dynamic_points, dynamic_strides = from_image(tf.zeros((1, height, width, 1)))
    count = sum((height // s) * (width // s) for s in kcv.STRIDES)
    assert tuple(points.shape) == (count, 2)
    for mine, theirs in ((static_points, points), (dynamic_points, points)):
        assert mine.dtype == tf.float32
        np.testing.assert_array_equal(mine, theirs)
    for mine in (static_strides, dynamic_strides):
        assert mine.dtype == tf.float32
        np.testing.assert_array_equal(mine, strides)


def test_head_layers_exist_and_start_at_the_priors(detector):
    names = kcv.head_layer_names()
    assert len(names) == len(kcv.STRIDES)
    for (class_name, box_name), stride in zip(names, kcv.STRIDES, strict=True):
        class_layer, box_layer = detector.get_layer(class_name), detector.get_layer(box_name)
        assert isinstance(class_layer, keras.layers.Conv2D)
        assert isinstance(box_layer, keras.layers.Conv2D)
        class_bias, box_bias = class_layer.get_weights()[1], box_layer.get_weights()[1]
        assert class_bias.shape == (CLASSES,)
        assert box_bias.shape == (kcv.BOX_REGRESSION_CHANNELS,)
        prior = 5 / CLASSES / (WINDOW / stride) ** 2
        np.testing.assert_array_equal(class_bias, np.float32(math.log(prior)))
        np.testing.assert_array_equal(box_bias, 1.0)


def test_set_head_priors_sets_every_level(detector):
    kernels = [
        detector.get_layer(name).get_weights()[0]
        for pair in kcv.head_layer_names()
        for name in pair
    ]
    kcv.set_head_priors(detector, [-1.0, -2.0, -3.0], box_bias=0.5)
    try:
        for (class_name, box_name), value in zip(kcv.head_layer_names(), [-1, -2, -3], strict=True):
            np.testing.assert_array_equal(detector.get_layer(class_name).get_weights()[1], value)
            np.testing.assert_array_equal(detector.get_layer(box_name).get_weights()[1], 0.5)
        after = [
            detector.get_layer(name).get_weights()[0]
            for pair in kcv.head_layer_names()
            for name in pair
        ]
        for before, now in zip(kernels, after, strict=True):
            np.testing.assert_array_equal(before, now)
    finally:
        priors = [math.log(5 / CLASSES / (WINDOW / s) ** 2) for s in kcv.STRIDES]
        kcv.set_head_priors(detector, priors)


def test_a_renamed_head_layer_is_named_in_the_error(detector):
    other = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 1, name="conv")])
    with pytest.raises(LookupError, match="no layer 'yolo_v8_head_1_class_3_conv'"):
        kcv.set_head_priors(other, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="one per level"):
        kcv.set_head_priors(detector, [0.0])
