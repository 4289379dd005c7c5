"""ROI Align (He et al. 2017) over a feature pyramid, on ``tf.image.crop_and_resize``.

keras-cv's private ``_ROIAligner`` fails under Keras 3, so this is emdl's own. Each box is read
from one pyramid level, chosen by its size as in the FPN paper: level
``floor(canonical_level + log2(sqrt(h * w) / canonical_size))`` clipped to the pyramid, so that
small objects are read from fine, high-resolution features.

Sampling follows torchvision's ``roi_align(aligned=True)`` with a fixed sampling ratio: the box
(in feature-map coordinates, pixel ``(r, c)`` covering ``[r, r + 1) x [c, c + 1)``) is cut into
``size x size`` bins, each bin averages ``sampling_ratio x sampling_ratio`` bilinear samples at
evenly spaced points ``(i + 0.5) / n`` across it, and a point within one pixel outside the map
takes the nearest border value (further out: 0). crop_and_resize samples at pixel centres of
the normalised box corners with zero extrapolation, so the map is padded by one edge pixel and
the box corners are moved onto the first and last sample points.
"""

from __future__ import annotations

import tensorflow as tf

from emdl.models.maskrcnn.config import LEVELS


def box_levels(
    boxes: tf.Tensor, canonical_size: float = 224.0, canonical_level: int = 4
) -> tf.Tensor:
    """Pyramid level int32 ``(...)`` of each "yxyx" box ``(..., 4)`` in image pixels."""
    side = tf.sqrt(
        tf.maximum(boxes[..., 2] - boxes[..., 0], 1e-6)
        * tf.maximum(boxes[..., 3] - boxes[..., 1], 1e-6)
    )
    level = tf.floor(canonical_level + tf.math.log(side / canonical_size) / tf.math.log(2.0))
    return tf.cast(tf.clip_by_value(level, LEVELS[0], LEVELS[-1]), tf.int32)


def align_level(
    features: tf.Tensor,
    boxes: tf.Tensor,
    box_indices: tf.Tensor,
    stride: int,
    size: int,
    sampling_ratio: int = 2,
) -> tf.Tensor:
    """ROI Align of one feature map ``(B, H, W, C)``: float32 ``(N, size, size, C)`` for
    ``boxes`` ``(N, 4)`` "yxyx" in image pixels (``stride`` image pixels per feature pixel) of
    batch entries ``box_indices`` int32 ``(N,)``."""
    padded = tf.pad(features, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    height = tf.cast(tf.shape(padded)[1], tf.float32)
    width = tf.cast(tf.shape(padded)[2], tf.float32)
    n = size * sampling_ratio
    # In padded-map pixel-centre coordinates: a feature-map coordinate u lies at u - 0.5 + 1.
    y0, x0, y1, x1 = tf.unstack(boxes / stride, axis=-1)
    step_y, step_x = (y1 - y0) / n, (x1 - x0) / n
    first_y, last_y = y0 + 0.5 * step_y + 0.5, y1 - 0.5 * step_y + 0.5
    first_x, last_x = x0 + 0.5 * step_x + 0.5, x1 - 0.5 * step_x + 0.5
    normalised = tf.stack(
        [
            first_y / (height - 1),
            first_x / (width - 1),
            last_y / (height - 1),
            last_x / (width - 1),
        ],
        axis=-1,
    )
    crops = tf.image.crop_and_resize(
        padded, normalised, box_indices, [n, n], method="bilinear", extrapolation_value=0.0
    )
    if sampling_ratio == 1:
        return crops
    return tf.nn.avg_pool2d(crops, sampling_ratio, sampling_ratio, "VALID")


def roi_align(
    pyramid: list[tf.Tensor],
    boxes: tf.Tensor,
    size: int,
    *,
    sampling_ratio: int = 2,
    canonical_size: float = 224.0,
) -> tf.Tensor:
    """Features float32 ``(B, R, size, size, C)`` of ``boxes`` float32 ``(B, R, 4)`` "yxyx" in
    image pixels, each read from its level (:func:`box_levels`) of ``pyramid``, the feature maps
    ``(B, H / 2**l, W / 2**l, C)`` of :data:`LEVELS`."""
    batch, count = tf.shape(boxes)[0], tf.shape(boxes)[1]
    flat = tf.reshape(boxes, (-1, 4))
    indices = tf.repeat(tf.range(batch, dtype=tf.int32), count)
    levels = box_levels(flat, canonical_size)
    positions, parts = [], []
    for level, features in zip(LEVELS, pyramid, strict=True):
        where = tf.cast(tf.reshape(tf.where(levels == level), (-1,)), tf.int32)
        positions.append(where)
        parts.append(
            align_level(
                features,
                tf.gather(flat, where),
                tf.gather(indices, where),
                2**level,
                size,
                sampling_ratio,
            )
        )
    aligned = tf.dynamic_stitch(positions, parts)
    channels = pyramid[0].shape[-1]
    return tf.reshape(aligned, (batch, count, size, size, channels))
