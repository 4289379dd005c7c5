"""Training targets: which anchors and which proposals learn what.

Matching uses keras-cv's ``BoxMatcher`` on IoU; sampling keeps a fixed number per image with at
most a set fraction of positives (drawn at random), so that the few objects of a crop are not
drowned by background. Objects are given as dense ``(B, M, ...)`` arrays padded with class -1.
"""

from __future__ import annotations

import keras_cv
import tensorflow as tf

from emdl.models.maskrcnn.box_coder import encode, pairwise_iou
from emdl.models.maskrcnn.config import MASK_SIZE

# Detectron's deltas weights of the second stage: box deltas are learnt at a comparable scale.
ROI_DELTA_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def sample(
    positive: tf.Tensor, negative: tf.Tensor, size: int, positive_fraction: float, seed=None
) -> tuple[tf.Tensor, tf.Tensor]:
    """Random positives and negatives bool ``(B, N)`` of candidate masks ``(B, N)``: per row at
    most ``round(size * positive_fraction)`` positives, and negatives filling up to ``size``."""
    random = tf.random.uniform(tf.shape(positive), seed=seed)

    def first(candidates: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
        # The candidates of the `count` highest random keys of each row.
        keys = tf.where(candidates, random, -1.0)
        rank = tf.argsort(tf.argsort(keys, axis=1, direction="DESCENDING"), axis=1)
        return candidates & (rank < count[:, None])

    limit = tf.constant(round(size * positive_fraction), tf.int32)
    n_positive = tf.minimum(tf.reduce_sum(tf.cast(positive, tf.int32), axis=1), limit)
    chosen_positive = first(positive, n_positive)
    chosen_negative = first(negative & ~positive, size - n_positive)
    return chosen_positive, chosen_negative


def rpn_targets(
    anchors: tf.Tensor,
    boxes: tf.Tensor,
    valid: tf.Tensor,
    config,
    seed=None,
) -> dict[str, tf.Tensor]:
    """Targets of the proposal head for ``anchors`` float32 ``(N, 4)`` "yxyx" and objects
    ``boxes`` ``(B, M, 4)`` "yxyx" (``valid`` bool ``(B, M)``).

    An anchor is positive at IoU >= 0.7 with an object or when it is an object's best anchor,
    negative below 0.3, ignored between. Returns ``labels`` float32 ``(B, N)`` (1 positive),
    ``weights`` float32 ``(B, N)`` (1 for the ``rpn_batch`` sampled anchors, else 0),
    ``positive`` bool ``(B, N)`` (sampled positives) and ``deltas`` float32 ``(B, N, 4)``
    (meaningful where positive).
    """
    iou = tf.where(valid[:, None, :], pairwise_iou(anchors, boxes), -1.0)
    matcher = keras_cv.layers.BoxMatcher(
        thresholds=[0.3, 0.7], match_values=[-1, -2, 1], force_match_for_each_col=True
    )
    matched, values = matcher(iou)
    # A padding column has IoU -1 everywhere, yet the forced match gives it an anchor (the
    # first), and so does the -1 column BoxMatcher appends itself (index M): such an anchor
    # keeps its own best match and the thresholds' verdict on it instead.
    forced_by_padding = ~tf.gather(tf.pad(valid, [[0, 0], [0, 1]]), matched, batch_dims=1)
    best, best_iou = tf.argmax(iou, axis=-1, output_type=tf.int32), tf.reduce_max(iou, axis=-1)
    plain = tf.where(best_iou >= 0.7, 1, tf.where(best_iou < 0.3, -1, -2))
    matched = tf.where(forced_by_padding, best, matched)
    values = tf.where(forced_by_padding, plain, values)
    positive, negative = values == 1, values == -1
    chosen_positive, chosen_negative = sample(
        positive, negative, config.rpn_batch, config.rpn_positive_fraction, seed
    )
    matched_boxes = tf.gather(boxes, matched, batch_dims=1)
    return {
        "labels": tf.cast(chosen_positive, tf.float32),
        "weights": tf.cast(chosen_positive | chosen_negative, tf.float32),
        "positive": chosen_positive,
        "deltas": encode(tf.broadcast_to(anchors[None], tf.shape(matched_boxes)), matched_boxes),
    }


def roi_targets(
    proposals: tf.Tensor,
    boxes: tf.Tensor,
    classes: tf.Tensor,
    masks: tf.Tensor,
    valid: tf.Tensor,
    config,
    seed=None,
) -> dict[str, tf.Tensor]:
    """Sample ``config.roi_batch`` regions per image from ``proposals`` float32 ``(B, P, 4)``
    "yxyx" (padding has no area) and the objects themselves, and give their targets.

    Objects: ``boxes`` ``(B, M, 4)`` "yxyx", ``classes`` ``(B, M)`` 0-based, ``masks`` uint8
    ``(B, M, H, W)`` of the whole crop, ``valid`` bool ``(B, M)``. A region is positive at IoU
    >= 0.5 with an object (it learns that object), negative below (background).

    Returns ``rois`` ``(B, R, 4)``, ``weights`` float32 ``(B, R)`` (0 for filler rows when an
    image has too few regions), ``labels`` int32 ``(B, R)`` (object class + 1, 0 background),
    ``positive`` bool ``(B, R)``, ``deltas`` ``(B, R, 4)`` (weighted by ``ROI_DELTA_WEIGHTS``)
    and ``masks`` float32 ``(B, R, 28, 28)`` 0/1: the matched object's mask resampled on the
    region's 28 x 28 grid.
    """
    rois = tf.concat([proposals, tf.where(valid[..., None], boxes, 0.0)], axis=1)
    area = (rois[..., 2] - rois[..., 0]) * (rois[..., 3] - rois[..., 1])
    iou = tf.where(valid[:, None, :], pairwise_iou(rois, boxes), -1.0)
    matcher = keras_cv.layers.BoxMatcher(thresholds=[0.5], match_values=[-1, 1])
    matched, values = matcher(iou)
    matched = tf.minimum(matched, tf.shape(valid)[1] - 1)  # BoxMatcher's own -1 column
    real = area > 0
    positive = (values == 1) & real
    negative = (values == -1) & real
    chosen_positive, chosen_negative = sample(
        positive, negative, config.roi_batch, config.roi_positive_fraction, seed
    )
    # The sampled rows first (positives, then negatives), then filler; keep roi_batch rows.
    key = tf.cast(chosen_positive, tf.float32) * 2 + tf.cast(chosen_negative, tf.float32)
    _, order = tf.math.top_k(key, k=config.roi_batch)
    take = lambda values: tf.gather(values, order, batch_dims=1)  # noqa: E731
    rois, matched = take(rois), take(matched)
    chosen_positive, weights = take(chosen_positive), take(key > 0)
    matched_boxes = tf.gather(boxes, matched, batch_dims=1)
    matched_classes = tf.gather(classes, matched, batch_dims=1)
    labels = tf.where(chosen_positive, tf.cast(matched_classes, tf.int32) + 1, 0)
    return {
        "rois": tf.stop_gradient(rois),
        "weights": tf.cast(weights, tf.float32),
        "labels": labels,
        "positive": chosen_positive,
        "deltas": encode(rois, matched_boxes, ROI_DELTA_WEIGHTS),
        "masks": mask_targets(masks, matched, rois),
    }


def mask_targets(masks: tf.Tensor, matched: tf.Tensor, rois: tf.Tensor) -> tf.Tensor:
    """float32 ``(B, R, 28, 28)`` 0/1: object ``matched[b, r]``'s mask of ``masks`` uint8
    ``(B, M, H, W)`` bilinearly sampled at the centres of region ``rois[b, r]``'s 28 x 28 grid
    ("yxyx" pixels) and thresholded at 0.5."""
    batch, count = tf.shape(masks)[0], tf.shape(masks)[1]
    height = tf.cast(tf.shape(masks)[2], tf.float32)
    width = tf.cast(tf.shape(masks)[3], tf.float32)
    # crop_and_resize reads uint8 directly: no float copy of every mask.
    images = tf.reshape(masks, (-1, tf.shape(masks)[2], tf.shape(masks)[3], 1))
    indices = tf.reshape(matched + tf.range(batch)[:, None] * count, (-1,))
    y0, x0, y1, x1 = tf.unstack(tf.reshape(rois, (-1, 4)), axis=-1)
    step_y, step_x = (y1 - y0) / MASK_SIZE, (x1 - x0) / MASK_SIZE
    # Cell centres in pixel-index coordinates (a pixel's centre is at index + 0.5).
    normalised = tf.stack(
        [
            (y0 + 0.5 * step_y - 0.5) / (height - 1),
            (x0 + 0.5 * step_x - 0.5) / (width - 1),
            (y1 - 0.5 * step_y - 0.5) / (height - 1),
            (x1 - 0.5 * step_x - 0.5) / (width - 1),
        ],
        axis=-1,
    )
    crops = tf.image.crop_and_resize(images, normalised, indices, [MASK_SIZE, MASK_SIZE])
    crops = tf.reshape(crops, (batch, -1, MASK_SIZE, MASK_SIZE))
    return tf.stop_gradient(tf.cast(crops >= 0.5, tf.float32))
