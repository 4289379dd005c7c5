"""A YOLO-style detector: keras-cv's ``YOLOV8Detector`` on a ``YOLOV8Backbone`` built from its
constructor (never a preset: those download), trained from scratch on 1-channel micrographs.

Two things keras-cv leaves out of Ultralytics' YOLOv8, which its detector trains far worse without
(keras-team/keras-cv#2442), are put back here:

- the distribution focal loss (DFL) on the 16-bin box-side distributions, next to CIoU and the
  class cross-entropy (weights 7.5 / 1.5 / 0.5 as Ultralytics);
- priors for the head's last biases: class logits start at the log-odds of about five objects per
  crop (instead of 0.5 everywhere, which floods the loss with negatives), box logits at 1.

What they need of keras-cv's private internals comes through :mod:`emdl.models.keras_cv_adapter`.

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

from emdl.models import keras_cv_adapter as kcv
from emdl.models.inference import TiledInference
from emdl.models.keras_cv_adapter import BOX_REGRESSION_CHANNELS, STRIDES
from emdl.settings import from_known_fields

# (stackwise_channels, stackwise_depth) of keras-cv's backbone presets, built here without
# weights; "xs" matches Ultralytics' YOLOv8n.
SIZES: dict[str, tuple[list[int], list[int]]] = {
    "xxs": ([16, 32, 64, 128], [1, 1, 1, 1]),
    "xs": ([32, 64, 128, 256], [1, 2, 2, 1]),
    "s": ([64, 128, 256, 512], [1, 2, 2, 1]),
    "m": ([96, 192, 384, 576], [2, 4, 4, 2]),
}
BINS = BOX_REGRESSION_CHANNELS // 4


@dataclass(frozen=True)
class DetectorConfig(TiledInference):
    """Everything that shapes a detector; stored in the run's ``config.json``.

    ``size`` names the backbone (:data:`SIZES`); ``fpn_depth`` blocks per path-aggregation step;
    ``classes`` object classes (0: as many as the labels have); resizing, tiles and non-max
    suppression as :class:`~emdl.models.inference.TiledInference` says (tiles of 640 overlapping
    by 128, NMS at IoU 0.6, at most 300 detections per tile). ``jit_compile``: the training step
    compiled by XLA, true, false (the default) or "auto" (XLA where
    :func:`emdl.train.strategy.xla_preferred` expects it faster); prediction never is.
    """

    size: str = "xs"
    fpn_depth: int = 1
    classes: int = 0
    # Off by default: XLA's steps were faster on AVX2 with TensorFlow's Eigen kernels (with
    # oneDNN's, which emdl turns on, hardly), and its one scored 60-minute run scored far
    # below the runs without it (README, "The training step").
    jit_compile: bool | str = False

    def checks(self) -> list[tuple[bool, str]]:
        return [
            (self.size in SIZES, f"size must be one of {sorted(SIZES)}, got {self.size!r}"),
            (self.fpn_depth >= 1, f"fpn_depth must be at least 1, got {self.fpn_depth}"),
            (self.classes >= 0, f"classes must be 0 (from the labels) or more, got {self.classes}"),
            (
                isinstance(self.jit_compile, bool) or self.jit_compile == "auto",
                f'jit_compile must be true, false or "auto", got {self.jit_compile!r}',
            ),
            *super().checks(),
        ]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> DetectorConfig:
        return from_known_fields(cls, values, "model")


@keras.saving.register_keras_serializable(package="emdl")
class Detector(keras_cv.models.YOLOV8Detector):
    """``YOLOV8Detector`` with a distribution focal loss term (weight ``dfl_loss_weight``) and a
    ``top_score`` metric: the highest class score (0 to 1) of each batch, averaged over the
    epoch's batches. A model that scores nothing (about 0 everywhere) also has a loss of about 0,
    as the task-aligned targets scale with its own scores; ``top_score`` tells the two apart."""

    def __init__(self, *args, dfl_loss_weight: float = 1.5, **kwargs):
        super().__init__(*args, **kwargs)
        self.dfl_loss_weight = dfl_loss_weight
        self.top_score = keras.metrics.Mean(name="top_score")

    def compile(self, *args, dfl_loss_weight: float | None = None, **kwargs):
        """keras-cv's ``compile`` (``box_loss``, ``classification_loss`` and their weights), and
        the DFL term's weight."""
        if dfl_loss_weight is not None:
            self.dfl_loss_weight = dfl_loss_weight
        super().compile(*args, **kwargs)

    def make_predict_function(self, force=False):
        # Prediction stays out of XLA, whatever the training step is compiled with: every tile
        # size would compile anew, and the non-max suppression has data-dependent shapes.
        # (_jit_compile is what Keras' jit_compile property reads and its predict function uses.)
        jit, self._jit_compile = self._jit_compile, False
        try:
            return super().make_predict_function(force)
        finally:
            self._jit_compile = jit

    def predict_step(self, data):
        # keras-cv's takes the batch for the images; Keras 3.15 hands it over as a tuple.
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.decode_predictions(self(images, training=False), images)

    def compute_loss(self, x, y, y_pred, sample_weight=None, **kwargs):
        # keras-cv's compute_loss, with the DFL term added; it needs the label assignment's
        # intermediate results, so the assignment is repeated here rather than called.
        assigned = kcv.assign_labels(self, x, y, y_pred)
        target_bboxes, target_scores = assigned.target_bboxes, assigned.target_scores
        target_scores_sum = ops.maximum(ops.sum(target_scores), 1)
        box_weight = ops.sum(target_scores, axis=-1) * assigned.fg_mask  # (B, A)
        fg = assigned.fg_mask[..., None]
        loss = kcv.compiled_loss(
            self,
            x,
            box_true=target_bboxes * fg,
            box_pred=assigned.pred_bboxes * fg,
            class_true=target_scores,
            class_pred=y_pred["classes"],
            box_weight=self.box_loss_weight * box_weight[..., None] / target_scores_sum,
            class_weight=self.classification_loss_weight / target_scores_sum,
            **kwargs,
        )
        dfl = distribution_focal_loss(y_pred["boxes"], target_bboxes, assigned.anchor_points)
        return loss + self.dfl_loss_weight * ops.sum(dfl * box_weight) / target_scores_sum

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self.top_score.update_state(ops.max(y_pred["classes"]))
        return super().compute_metrics(x, y, y_pred, sample_weight)

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
    # Ultralytics' priors: about five objects per crop, spread over each level's cells.
    priors = [5 / config.classes / (window / stride) ** 2 for stride in STRIDES]
    kcv.set_head_priors(model, [math.log(prior) for prior in priors], box_bias=1.0)
    return model
