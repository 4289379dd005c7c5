"""Anchor boxes of every pyramid level, for images of any (also dynamic) size."""

from __future__ import annotations

import keras_cv
import tensorflow as tf

from emdl.models.maskrcnn.config import LEVELS, MaskRCNNConfig


def base_anchors(config: MaskRCNNConfig) -> list[tf.Tensor]:
    """Per level of :data:`LEVELS`, the ``A`` anchors float32 ``(A, 4)`` "yxyx" pixels of the
    grid cell at the origin, from keras-cv's ``AnchorGenerator`` (size ``anchor_sizes[l]``, one
    per aspect ratio, centred on the cell)."""
    generator = keras_cv.layers.AnchorGenerator(
        bounding_box_format="yxyx",
        sizes={f"P{level}": size for level, size in zip(LEVELS, config.anchor_sizes, strict=True)},
        scales=[1.0],
        aspect_ratios=list(config.aspect_ratios),
        strides={f"P{level}": 2**level for level in LEVELS},
        clip_boxes=False,
    )
    # keras-cv's generator needs a static image size; the first cell of each level is enough,
    # the rest of a grid is a shift of it (see grid_anchors).
    coarsest = 2 ** LEVELS[-1]
    grids = generator(image_shape=(coarsest, coarsest, 1))
    count = config.anchors_per_location
    anchors = [tf.convert_to_tensor(grids[f"P{level}"][:count], tf.float32) for level in LEVELS]
    return anchors


def grid_anchors(base: tf.Tensor, stride: int, height, width) -> tf.Tensor:
    """All anchors float32 ``(height * width * A, 4)`` "yxyx" pixels of a ``height x width``
    feature grid of ``stride`` (ints or scalar tensors), ordered by row, column, then anchor: the
    order of a ``(B, height, width, A)`` head output flattened."""
    ys = tf.cast(tf.range(height), tf.float32) * stride
    xs = tf.cast(tf.range(width), tf.float32) * stride
    grid_y, grid_x = tf.meshgrid(ys, xs, indexing="ij")
    shifts = tf.stack([grid_y, grid_x, grid_y, grid_x], axis=-1)[:, :, None, :]
    return tf.reshape(shifts + base[None, None], (-1, 4))
