"""The three heads: region proposals per anchor, class and box per region, mask per region."""

from __future__ import annotations

import keras

from emdl.models.maskrcnn.config import MASK_SIZE


def build_rpn_head(width: int, anchors: int) -> keras.Model:
    """Shared by every pyramid level: features ``(B, h, w, width)`` to objectness logits
    ``(B, h, w, anchors)`` and box deltas ``(B, h, w, 4 * anchors)`` (dy, dx, dh, dw per
    anchor)."""
    inputs = keras.Input((None, None, width))
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name="rpn_conv")(inputs)
    init = keras.initializers.RandomNormal(stddev=0.01)
    logits = keras.layers.Conv2D(anchors, 1, kernel_initializer=init, name="rpn_objectness")(x)
    deltas = keras.layers.Conv2D(4 * anchors, 1, kernel_initializer=init, name="rpn_deltas")(x)
    return keras.Model(inputs, [logits, deltas], name="rpn_head")


def build_box_head(width: int, channels: int, classes: int) -> keras.Model:
    """Region features ``(N, 7, 7, channels)`` to class logits ``(N, classes + 1)`` (0 is
    background) and class-agnostic box deltas ``(N, 4)`` relative to the region."""
    inputs = keras.Input((7, 7, channels))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(width, activation="relu", name="box_fc1")(x)
    x = keras.layers.Dense(width, activation="relu", name="box_fc2")(x)
    logits = keras.layers.Dense(
        classes + 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01), name="cls"
    )(x)
    deltas = keras.layers.Dense(
        4, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001), name="box_deltas"
    )(x)
    return keras.Model(inputs, [logits, deltas], name="box_head")


def build_mask_head(width: int, channels: int, classes: int) -> keras.Model:
    """Region features ``(N, 14, 14, channels)`` to mask logits ``(N, 28, 28, classes)``, one
    mask per object class."""
    inputs = keras.Input((MASK_SIZE // 2, MASK_SIZE // 2, channels))
    x = inputs
    for index in range(4):
        x = keras.layers.Conv2D(
            width, 3, padding="same", activation="relu", name=f"mask_conv{index + 1}"
        )(x)
    x = keras.layers.Conv2DTranspose(width, 2, strides=2, activation="relu", name="mask_up")(x)
    logits = keras.layers.Conv2D(classes, 1, name="mask_logits")(x)
    return keras.Model(inputs, logits, name="mask_head")
