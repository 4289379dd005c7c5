"""A YOLO-style detector: keras-cv's ``YOLOV8Detector`` on a ``YOLOV8Backbone`` built from its
constructor (never a preset: those download), trained from scratch on 1-channel micrographs.

Two things keras-cv leaves out of Ultralytics' YOLOv8, which its detector trains far worse without
(keras-team/keras-cv#2442), are put back here:

- the distribution focal loss (DFL) on the 16-bin box-side distributions, next to CIoU and the
  class cross-entropy (weights 7.5 / 1.5 / 0.5 as Ultralytics);
- priors for the head's last biases: class logits start at the log-odds of about five objects per
  crop (instead of 0.5 everywhere, which floods the loss with negatives), box logits at 1.

The model takes float32 images ``(B, S, S, 1)`` in [0, 1], ``S`` a multiple of 32, and returns
raw head outputs; :meth:`Detector.predict` and ``decode_predictions`` give final detections
``{"boxes" (B, K, 4) "xyxy" pixels, "classes" (B, K), "confidence" (B, K), "num_detections"
(B,)}``, padded with -1 after ``num_detections``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import keras
import keras_cv
from keras import ops
from keras_cv.src import bounding_box
from keras_cv.src.models.object_detection.yolo_v8.yolo_v8_detector import (
    BOX_REGRESSION_CHANNELS,
    decode_regression_to_boxes,
    dist2bbox,
    get_anchors,
)

from emdl.data.resize import Resize
from emdl.settings import from_known_fields

# (stackwise_channels, stackwise_depth) of keras-cv's backbone presets, built here without
# weights; "xs" matches Ultralytics' YOLOv8n.
SIZES: dict[str, tuple[list[int], list[int]]] = {
    "xxs": ([16, 32, 64, 128], [1, 1, 1, 1]),
    "xs": ([32, 64, 128, 256], [1, 2, 2, 1]),
    "s": ([64, 128, 256, 512], [1, 2, 2, 1]),
    "m": ([96, 192, 384, 576], [2, 4, 4, 2]),
}
STRIDES = (8, 16, 32)
BINS = BOX_REGRESSION_CHANNELS // 4


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that shapes a detector; stored in the run's ``config.json``.

    ``size`` names the backbone (:data:`SIZES`); ``fpn_depth`` blocks per path-aggregation step;
    ``classes`` object classes (0: as many as the labels have). Micrographs are resized before
    the model sees them, by ``scale`` or so that their longer side is ``longest_side`` pixels,
    so that objects have the pixel size they were trained at; whole micrographs are predicted in
    ``tile`` x ``tile`` tiles (resized pixels) overlapping by ``overlap``.
    ``confidence_threshold``, ``iou_threshold`` and ``max_detections`` configure the non-max
    suppression that decodes predictions.
    """

    size: str = "xs"
    fpn_depth: int = 1
    classes: int = 0
    scale: float = 1.0
    longest_side: int | None = None
    tile: int = 640
    overlap: int = 128
    confidence_threshold: float = 0.05
    iou_threshold: float = 0.6
    max_detections: int = 300

    multiple = 32  # the coarsest stride: input sizes must divide by it

    def __post_init__(self) -> None:
        checks = [
            (self.size in SIZES, f"size must be one of {sorted(SIZES)}, got {self.size!r}"),
            (self.fpn_depth >= 1, f"fpn_depth must be at least 1, got {self.fpn_depth}"),
            (self.classes >= 0, f"classes must be 0 (from the labels) or more, got {self.classes}"),
            (self.tile > 0 and self.tile % self.multiple == 0, "tile must divide by 32"),
            (0 <= self.overlap < self.tile, f"overlap must be in [0, tile), got {self.overlap}"),
            (0 <= self.confidence_threshold < 1, "confidence_threshold must be in [0, 1)"),
            (0 < self.iou_threshold <= 1, "iou_threshold must be in (0, 1]"),
            (self.max_detections >= 1, "max_detections must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"model: {message}")
        self.resize  # noqa: B018 -- refuses a bad scale or longest_side now

    @property
    def resize(self) -> Resize:
        """How micrographs are resized before the model sees them."""
        return Resize(self.scale, self.longest_side)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> DetectorConfig:
        return from_known_fields(cls, values, "model")


@keras.saving.register_keras_serializable(package="emdl")
class Detector(keras_cv.models.YOLOV8Detector):
    """``YOLOV8Detector`` with a distribution focal loss term (weight ``dfl_loss_weight``)."""

    def __init__(self, *args, dfl_loss_weight: float = 1.5, **kwargs):
        super().__init__(*args, **kwargs)
        self.dfl_loss_weight = dfl_loss_weight

    def compile(self, *args, dfl_loss_weight: float | None = None, **kwargs):
        """keras-cv's ``compile`` (``box_loss``, ``classification_loss`` and their weights), and
        the DFL term's weight."""
        if dfl_loss_weight is not None:
            self.dfl_loss_weight = dfl_loss_weight
        super().compile(*args, **kwargs)

    def predict_step(self, data):
        # keras-cv's takes the batch for the images; Keras 3.15 hands it over as a tuple.
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.decode_predictions(self(images, training=False), images)

    def compute_loss(self, x, y, y_pred, sample_weight=None, **kwargs):
        # keras-cv's compute_loss, with the DFL term added; it needs the label assignment's
        # intermediate results, so the assignment is repeated here rather than called.
        box_logits, pred_scores = y_pred["boxes"], y_pred["classes"]
        anchor_points, stride_tensor = get_anchors(image_shape=x.shape[1:])
        stride_tensor = ops.expand_dims(stride_tensor, axis=-1)
        pred_bboxes = dist2bbox(decode_regression_to_boxes(box_logits), anchor_points)
        mask_gt = ops.all(y["boxes"] > -1.0, axis=-1, keepdims=True)
        gt_bboxes = bounding_box.convert_format(
            y["boxes"], source=self.bounding_box_format, target="xyxy", images=x
        )
        target_bboxes, target_scores, fg_mask = self.label_encoder(
            pred_scores,
            ops.cast(pred_bboxes * stride_tensor, gt_bboxes.dtype),
            anchor_points * stride_tensor,
            y["classes"],
            gt_bboxes,
            mask_gt,
        )
        target_bboxes /= stride_tensor
        target_scores_sum = ops.maximum(ops.sum(target_scores), 1)
        box_weight = ops.sum(target_scores, axis=-1) * fg_mask  # (B, A)
        fg = fg_mask[..., None]
        loss = super(keras_cv.models.YOLOV8Detector, self).compute_loss(
            x=x,
            y={"box": target_bboxes * fg, "class": target_scores},
            y_pred={"box": pred_bboxes * fg, "class": pred_scores},
            sample_weight={
                "box": self.box_loss_weight * box_weight[..., None] / target_scores_sum,
                "class": self.classification_loss_weight / target_scores_sum,
            },
            **kwargs,
        )
        dfl = distribution_focal_loss(box_logits, target_bboxes, anchor_points)
        return loss + self.dfl_loss_weight * ops.sum(dfl * box_weight) / target_scores_sum

    def get_config(self):
        return {**super().get_config(), "dfl_loss_weight": self.dfl_loss_weight}


def distribution_focal_loss(box_logits, target_bboxes, anchor_points):
    """Per-anchor DFL ``(B, A)``: cross-entropy of each box side's 16-bin distribution
    (``box_logits`` ``(B, A, 64)``) against the two bins around the true distance, weighted by
    nearness. ``target_bboxes`` ``(B, A, 4)`` "xyxy" and ``anchor_points`` ``(A, 2)`` are in units
    of the anchor's stride."""
    x0y0, x1y1 = ops.split(target_bboxes, 2, axis=-1)
    distances = ops.concatenate([anchor_points - x0y0, x1y1 - anchor_points], axis=-1)
    distances = ops.clip(distances, 0.0, BINS - 1.01)
    logits = ops.reshape(box_logits, (-1, ops.shape(box_logits)[1], 4, BINS))
    log_p = ops.log_softmax(logits, axis=-1)
    left = ops.floor(distances)
    weight_right = distances - left
    left_index = ops.cast(left, "int32")
    pick = (
        ops.one_hot(left_index, BINS) * (1 - weight_right)[..., None]
        + ops.one_hot(left_index + 1, BINS) * weight_right[..., None]
    )
    return -ops.mean(ops.sum(pick * log_p, axis=-1), axis=-1)


def build_detector(config: DetectorConfig, window: int = 640) -> Detector:
    """An untrained, uncompiled detector, its head biases set to the priors for ``window`` x
    ``window`` training crops."""
    channels, depth = SIZES[config.size]
    backbone = keras_cv.models.YOLOV8Backbone(
        stackwise_channels=channels,
        stackwise_depth=depth,
        include_rescaling=False,
        input_shape=(None, None, 1),
    )
    model = Detector(
        backbone=backbone,
        num_classes=config.classes,
        bounding_box_format="xyxy",
        fpn_depth=config.fpn_depth,
        prediction_decoder=keras_cv.layers.NonMaxSuppression(
            bounding_box_format="xyxy",
            from_logits=False,
            confidence_threshold=config.confidence_threshold,
            iou_threshold=config.iou_threshold,
            max_detections=config.max_detections,
        ),
    )
    for level, stride in enumerate(STRIDES, start=1):
        # Ultralytics' priors: about five objects per crop, spread over the level's cells.
        prior = 5 / config.classes / (window / stride) ** 2
        head = f"yolo_v8_head_{level}"
        kernel, bias = model.get_layer(f"{head}_class_3_conv").get_weights()
        model.get_layer(f"{head}_class_3_conv").set_weights([kernel, bias * 0 + math.log(prior)])
        kernel, bias = model.get_layer(f"{head}_box_3_conv").get_weights()
        model.get_layer(f"{head}_box_3_conv").set_weights([kernel, bias * 0 + 1.0])
    return model
