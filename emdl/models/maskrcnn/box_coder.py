"""Boxes as deltas from reference boxes (Girshick et al. 2014) and pairwise IoU, in "yxyx"."""

from __future__ import annotations

import math

import tensorflow as tf

# Deltas of larger size changes are cut here, so that exp() cannot overflow.
MAX_LOG_SCALE = math.log(1000.0 / 16)


def encode(reference: tf.Tensor, boxes: tf.Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> tf.Tensor:
    """Deltas float32 ``(..., 4)`` (dy, dx, dh, dw) that turn ``reference`` into ``boxes`` (both
    ``(..., 4)`` "yxyx"), times ``weights``."""
    ref_h = reference[..., 2] - reference[..., 0]
    ref_w = reference[..., 3] - reference[..., 1]
    ref_y = reference[..., 0] + 0.5 * ref_h
    ref_x = reference[..., 1] + 0.5 * ref_w
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    y = boxes[..., 0] + 0.5 * h
    x = boxes[..., 1] + 0.5 * w
    ref_h, ref_w = tf.maximum(ref_h, 1e-6), tf.maximum(ref_w, 1e-6)
    deltas = tf.stack(
        [
            (y - ref_y) / ref_h,
            (x - ref_x) / ref_w,
            tf.math.log(tf.maximum(h, 1e-6) / ref_h),
            tf.math.log(tf.maximum(w, 1e-6) / ref_w),
        ],
        axis=-1,
    )
    return deltas * tf.constant(weights, tf.float32)


def decode(reference: tf.Tensor, deltas: tf.Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> tf.Tensor:
    """Boxes float32 ``(..., 4)`` "yxyx" from ``reference`` boxes and ``deltas`` (the inverse of
    :func:`encode`; size changes capped at ``exp(MAX_LOG_SCALE)``)."""
    deltas = deltas / tf.constant(weights, tf.float32)
    ref_h = reference[..., 2] - reference[..., 0]
    ref_w = reference[..., 3] - reference[..., 1]
    ref_y = reference[..., 0] + 0.5 * ref_h
    ref_x = reference[..., 1] + 0.5 * ref_w
    y = ref_y + deltas[..., 0] * ref_h
    x = ref_x + deltas[..., 1] * ref_w
    h = ref_h * tf.exp(tf.minimum(deltas[..., 2], MAX_LOG_SCALE))
    w = ref_w * tf.exp(tf.minimum(deltas[..., 3], MAX_LOG_SCALE))
    return tf.stack([y - 0.5 * h, x - 0.5 * w, y + 0.5 * h, x + 0.5 * w], axis=-1)


def clip(boxes: tf.Tensor, height, width) -> tf.Tensor:
    """``boxes`` "yxyx" cut to the image ``[0, height] x [0, width]``."""
    limit = tf.cast(tf.stack([height, width, height, width]), tf.float32)
    return tf.clip_by_value(boxes, 0.0, limit)


def pairwise_iou(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """IoU float32 ``(B, N, M)`` of boxes ``a`` ``(B, N, 4)`` (or ``(N, 4)``, shared) with ``b``
        ``(B, M, 4)``, "yxyx"; 0 where a box has no area. The graph twin of
    :func:`emdl.boxes.box_iou` (exact, unlike Keras' ``compute_iou``, which adds an epsilon to
    the union)."""
    if a.shape.rank == 2:
        a = tf.broadcast_to(a[None], [tf.shape(b)[0], tf.shape(a)[0], 4])
    a, b = a[:, :, None, :], b[:, None, :, :]
    top_left = tf.maximum(a[..., :2], b[..., :2])
    bottom_right = tf.minimum(a[..., 2:], b[..., 2:])
    inter = tf.reduce_prod(tf.maximum(bottom_right - top_left, 0.0), axis=-1)
    area_a = tf.reduce_prod(tf.maximum(a[..., 2:] - a[..., :2], 0.0), axis=-1)
    area_b = tf.reduce_prod(tf.maximum(b[..., 2:] - b[..., :2], 0.0), axis=-1)
    return tf.math.divide_no_nan(inter, area_a + area_b - inter)
