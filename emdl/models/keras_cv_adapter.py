"""Everything emdl takes from keras-cv's private internals for its YOLOv8 detector, in one place.

keras-cv's ``YOLOV8Detector`` lacks the distribution focal loss (DFL) and the head's bias priors
(keras-team/keras-cv#2442), so :mod:`emdl.models.yolo` puts them back. That needs what keras-cv's
public API does not offer: the box decoding and anchor helpers of ``keras_cv.src``, the label
assignment that ``YOLOV8Detector.compute_loss`` runs (its intermediate results feed the DFL), the
"box"/"class" losses that keras-cv's ``compile`` sets up, and the names of the head's layers.
This module is the only one in emdl that imports ``keras_cv.src`` or relies on those names, so
when keras-cv changes it is the one place to look; ``tests/models/test_keras_cv_adapter.py``
fails when its behaviour here no longer matches keras-cv's own.

Units: "stride units" are pixels divided by an anchor's stride (8, 16 or 32). Boxes are "xyxy"
``(x0, y0, x1, y1)`` unless said otherwise; anchor points are ``(x, y)`` cell centres.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import keras
import keras_cv
import tensorflow as tf
from keras import ops
from keras_cv.src import bounding_box
from keras_cv.src.models.object_detection.yolo_v8.yolo_v8_detector import (
    BOX_REGRESSION_CHANNELS,
    decode_regression_to_boxes,
    dist2bbox,
    get_anchors,
)

__all__ = [
    "BOX_REGRESSION_CHANNELS",
    "STRIDES",
    "LabelAssignment",
    "assign_labels",
    "compiled_loss",
    "decode_regression_to_boxes",
    "dist2bbox",
    "dynamic_anchors",
    "get_anchors",
    "head_layer_names",
    "set_head_priors",
]

# BOX_REGRESSION_CHANNELS (64): the head's box logits per anchor, 4 sides x 16 distance bins.
# decode_regression_to_boxes(box_logits (B, A, 64)) -> (B, A, 4) float32 expected distances
#   (left, top, right, bottom) in stride units, from the softmax over each side's 16 bins.
# dist2bbox(distances (B, A, 4), anchor_points (A, 2)) -> (B, A, 4) "xyxy" in stride units.
# get_anchors(image_shape=(H, W, ...)) -> (points (A, 2) float32 (x, y) in stride units,
#   strides (A,) float32), for static H, W; see dynamic_anchors for tf.Tensor sizes.

STRIDES = (8, 16, 32)
"""The strides of keras-cv's three head levels (P3, P4, P5), finest first: anchors, head layers
and raw outputs come in this order."""


def dynamic_anchors(height: tf.Tensor | int, width: tf.Tensor | int) -> tuple[tf.Tensor, tf.Tensor]:
    """Anchor centres and strides of a ``height`` x ``width`` input whose size is known only when
    run (scalar int32 tensors, as from ``tf.shape``; Python ints work too), in the order of
    keras-cv's ``get_anchors`` (level by level as :data:`STRIDES`, each row by row).

    Returns ``points`` float32 ``(A, 2)``, the ``(x, y)`` cell centres in units of their stride
    (``0.5, 1.5, ...``), and ``strides`` float32 ``(A,)``. For sizes that divide by 32 they equal
    ``get_anchors(image_shape=(height, width))`` exactly."""
    points, strides = [], []
    for stride in STRIDES:
        ys = tf.range(height // stride, dtype=tf.float32) + 0.5
        xs = tf.range(width // stride, dtype=tf.float32) + 0.5
        grid_x, grid_y = tf.meshgrid(xs, ys)
        level = tf.reshape(tf.stack([grid_x, grid_y], -1), (-1, 2))
        points.append(level)
        strides.append(tf.fill([tf.shape(level)[0]], float(stride)))
    return tf.concat(points, 0), tf.concat(strides, 0)


def head_layer_names() -> list[tuple[str, str]]:
    """``(class-logit conv, box-logit conv)`` layer names of keras-cv's YOLOv8 head, one pair per
    level in :data:`STRIDES` order: the last 1x1 ``Conv2D`` of each branch, whose biases
    :func:`set_head_priors` sets (``(classes,)`` and ``(64,)`` float32)."""
    return [
        (f"yolo_v8_head_{level}_class_3_conv", f"yolo_v8_head_{level}_box_3_conv")
        for level in range(1, len(STRIDES) + 1)
    ]


def _head_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    try:
        return model.get_layer(name)
    except ValueError:
        raise LookupError(
            f"keras-cv's YOLOv8 head has no layer {name!r}: keras-cv seems to have renamed its "
            "head layers; update head_layer_names in emdl/models/keras_cv_adapter.py"
        ) from None


def set_head_priors(
    model: keras_cv.models.YOLOV8Detector, class_bias: Sequence[float], box_bias: float = 1.0
) -> None:
    """Set the biases of the head's last convolutions: every class logit of level ``i`` to
    ``class_bias[i]`` (log-odds, one per level in :data:`STRIDES` order) and every box logit to
    ``box_bias``; kernels are kept.

    Raises LookupError naming the layer when ``model`` lacks one of :func:`head_layer_names`
    (keras-cv renamed them) and ValueError when ``class_bias`` has not one value per level."""
    names = head_layer_names()
    if len(class_bias) != len(names):
        raise ValueError(f"class_bias needs {len(names)} values (one per level), got {class_bias}")
    for (class_name, box_name), level_bias in zip(names, class_bias, strict=True):
        for name, value in ((class_name, level_bias), (box_name, box_bias)):
            layer = _head_layer(model, name)
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, bias * 0 + value])


class LabelAssignment(NamedTuple):
    """keras-cv's task-aligned label assignment for a batch of ``B`` images, ``A`` anchors and
    ``C`` classes; all float32, boxes "xyxy" in stride units."""

    anchor_points: tf.Tensor
    """``(A, 2)`` anchor centres ``(x, y)``."""
    strides: tf.Tensor
    """``(A, 1)`` each anchor's stride in pixels."""
    pred_bboxes: tf.Tensor
    """``(B, A, 4)`` predicted boxes, decoded from the box logits."""
    target_bboxes: tf.Tensor
    """``(B, A, 4)`` the assigned true box of each anchor (meaningful where ``fg_mask``)."""
    target_scores: tf.Tensor
    """``(B, A, C)`` class targets: the alignment metric at the assigned class, else 0."""
    fg_mask: tf.Tensor
    """``(B, A)`` 1.0 where an anchor was assigned a true box, else 0.0."""


def assign_labels(
    model: keras_cv.models.YOLOV8Detector,
    x: tf.Tensor,
    y: dict[str, tf.Tensor],
    y_pred: dict[str, tf.Tensor],
) -> LabelAssignment:
    """Run the first half of keras-cv's ``YOLOV8Detector.compute_loss``: decode the predicted
    boxes and assign true boxes to anchors with ``model.label_encoder``, as keras-cv does.

    ``x`` float32 images ``(B, H, W, channels)`` of static ``H``, ``W``; ``y`` the dense targets
    ``{"boxes": (B, N, 4) in model.bounding_box_format, pixels, "classes": (B, N)}`` padded with
    -1; ``y_pred`` the raw head outputs ``{"boxes": (B, A, 64) logits, "classes": (B, A, C)
    sigmoid scores}``."""
    box_logits, pred_scores = y_pred["boxes"], y_pred["classes"]
    anchor_points, stride_tensor = get_anchors(image_shape=x.shape[1:])
    stride_tensor = ops.expand_dims(stride_tensor, axis=-1)
    pred_bboxes = dist2bbox(decode_regression_to_boxes(box_logits), anchor_points)
    mask_gt = ops.all(y["boxes"] > -1.0, axis=-1, keepdims=True)
    gt_bboxes = bounding_box.convert_format(
        y["boxes"], source=model.bounding_box_format, target="xyxy", images=x
    )
    target_bboxes, target_scores, fg_mask = model.label_encoder(
        pred_scores,
        ops.cast(pred_bboxes * stride_tensor, gt_bboxes.dtype),
        anchor_points * stride_tensor,
        y["classes"],
        gt_bboxes,
        mask_gt,
    )
    target_bboxes /= stride_tensor
    return LabelAssignment(
        anchor_points, stride_tensor, pred_bboxes, target_bboxes, target_scores, fg_mask
    )


def compiled_loss(
    model: keras_cv.models.YOLOV8Detector,
    x: tf.Tensor,
    *,
    box_true: tf.Tensor,
    box_pred: tf.Tensor,
    class_true: tf.Tensor,
    class_pred: tf.Tensor,
    box_weight: tf.Tensor,
    class_weight: tf.Tensor,
    **kwargs,
) -> tf.Tensor:
    """The second half of keras-cv's ``YOLOV8Detector.compute_loss``: the scalar sum of the
    "box" and "class" losses that keras-cv's ``compile`` set up (by default CIoU and binary
    cross-entropy, both summed), weighted by ``box_weight`` and ``class_weight`` (broadcastable
    to ``(B, A, 1)`` and ``(B, A, C)``), computed by ``keras.Model.compute_loss`` (so with the
    model's regularization losses).

    ``box_true``, ``box_pred`` ``(B, A, 4)`` "xyxy"; ``class_true``, ``class_pred`` ``(B, A, C)``;
    ``kwargs`` as Keras passes to ``compute_loss`` (e.g. ``training``)."""
    return super(keras_cv.models.YOLOV8Detector, model).compute_loss(
        x=x,
        y={"box": box_true, "class": class_true},
        y_pred={"box": box_pred, "class": class_pred},
        sample_weight={"box": box_weight, "class": class_weight},
        **kwargs,
    )
