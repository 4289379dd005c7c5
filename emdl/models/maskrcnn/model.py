"""Mask R-CNN (He et al. 2017) as one Keras model assembled from the parts of this package.

``MaskRCNN(images)`` (float32 ``(B, S, S, 1)`` in [0, 1], ``S`` a multiple of 32) returns final
detections: ``boxes`` float32 ``(B, K, 4)`` "xyxy" pixels, ``classes`` int32 ``(B, K)``
0-based, ``confidence`` float32 ``(B, K)``, ``masks`` float32 ``(B, K, 28, 28)`` foreground
probabilities on each box's own 28 x 28 grid (the grid spans the box), and ``num_detections``
int32 ``(B,)``; rows past ``num_detections`` are padding (boxes and classes -1).
``K = max_detections``.

Training (``fit``) takes ``(images, {"boxes", "classes", "masks"})`` batches of
:func:`emdl.data.instance_dataset` with ``max_boxes`` set: boxes ``(B, M, 4)`` "xyxy" pixels,
classes ``(B, M)`` 0-based with -1 padding, masks uint8 ``(B, M, S, S)``. It logs the five losses
apart (``rpn_class``, ``rpn_box``, ``class``, ``box``, ``mask``) and their weighted sum
(``loss``).
"""

from __future__ import annotations

import contextlib

import keras
import keras_cv
import tensorflow as tf

from emdl.models.maskrcnn.anchors import base_anchors, grid_anchors
from emdl.models.maskrcnn.backbone import build_features
from emdl.models.maskrcnn.box_coder import clip, decode
from emdl.models.maskrcnn.config import DEFAULT_LOSS_WEIGHTS, LEVELS, LOSSES, MaskRCNNConfig
from emdl.models.maskrcnn.heads import build_box_head, build_mask_head, build_rpn_head
from emdl.models.maskrcnn.losses import box_loss, classification_loss, mask_loss, objectness_loss
from emdl.models.maskrcnn.roi_align import roi_align
from emdl.models.maskrcnn.targets import ROI_DELTA_WEIGHTS, roi_targets, rpn_targets


@contextlib.contextmanager
def _float32_policy():
    """keras-cv's ROIGenerator builds its NonMaxSuppression layer inside ``call``, under the
    global dtype policy; under mixed precision (GPU runs) that layer would cast boxes to float16
    and fail, so box layers are built and called under float32."""
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(policy)


def _xyxy(boxes: tf.Tensor) -> tf.Tensor:
    # "yxyx" <-> "xyxy" is the same swap both ways.
    return tf.gather(boxes, [1, 0, 3, 2], axis=-1)


@keras.saving.register_keras_serializable(package="emdl")
class MaskRCNN(keras.Model):
    """Mask R-CNN of ``config`` (a :class:`MaskRCNNConfig` or its dict, ``classes`` >= 1),
    trained with the losses weighted by ``loss_weights`` (keys :data:`LOSSES`, default 1)."""

    def __init__(
        self, config: MaskRCNNConfig | dict, loss_weights: dict | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = MaskRCNNConfig.from_dict(config)
        if config.classes < 1:
            raise ValueError("model: a Mask R-CNN needs classes >= 1 (the labels' classes)")
        weights = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}
        if set(weights) != set(LOSSES):
            raise ValueError(f"loss: terms must be among {LOSSES}, got {sorted(weights)}")
        self.settings = config
        self.term_weights = weights
        self.features = build_features(config)
        width = config.fpn_width
        self.rpn_head = build_rpn_head(width, config.anchors_per_location)
        self.box_head = build_box_head(config.box_head_width, width, config.classes)
        self.mask_head = build_mask_head(config.mask_head_width, width, config.classes)
        self._base_anchors = [anchors.numpy() for anchors in base_anchors(config)]
        self.roi_generator = keras_cv.layers.ROIGenerator(
            dtype="float32",
            bounding_box_format="yxyx",
            pre_nms_topk_train=config.pre_nms_proposals,
            nms_iou_threshold_train=config.rpn_iou_threshold,
            post_nms_topk_train=config.proposals_train,
            pre_nms_topk_test=config.pre_nms_proposals,
            nms_iou_threshold_test=config.rpn_iou_threshold,
            post_nms_topk_test=config.proposals_test,
        )
        self.suppression = keras_cv.layers.MultiClassNonMaxSuppression(
            dtype="float32",
            bounding_box_format="yxyx",
            from_logits=False,
            iou_threshold=config.iou_threshold,
            confidence_threshold=config.confidence_threshold,
            max_detections=config.max_detections,
            max_detections_per_class=config.max_detections,
        )
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", *LOSSES)}

    @property
    def metrics(self) -> list:
        # Listed so that Keras resets them every epoch.
        return list(self.trackers.values())

    def _rpn(self, pyramid: list[tf.Tensor]):
        """Per level: objectness logits ``(B, N_l)``, deltas ``(B, N_l, 4)``, anchors
        ``(N_l, 4)`` "yxyx"."""
        logits, deltas, anchors = [], [], []
        for level, features, base in zip(LEVELS, pyramid, self._base_anchors, strict=True):
            # float32 from here on, also under a mixed-precision policy (GPU runs).
            level_logits, level_deltas = (tf.cast(x, tf.float32) for x in self.rpn_head(features))
            batch = tf.shape(features)[0]
            height, width = tf.shape(features)[1], tf.shape(features)[2]
            level_anchors = grid_anchors(tf.constant(base), 2**level, height, width)
            # keras-cv's proposal generator needs the anchor count as a static shape.
            count = level_anchors.shape[0]
            logits.append(tf.ensure_shape(tf.reshape(level_logits, (batch, -1)), (None, count)))
            deltas.append(
                tf.ensure_shape(tf.reshape(level_deltas, (batch, -1, 4)), (None, count, 4))
            )
            anchors.append(level_anchors)
        return logits, deltas, anchors

    def _propose(self, logits, deltas, anchors, height, width, training: bool) -> tf.Tensor:
        """Proposals ``(B, P, 4)`` "yxyx" (padding -1) of the best-scoring decoded anchors."""
        boxes, scores = {}, {}
        for level, level_logits, level_deltas, level_anchors in zip(
            LEVELS, logits, deltas, anchors, strict=True
        ):
            # Proposals are inputs to the second stage, not a path for its gradients.
            decoded = decode(level_anchors[None], tf.stop_gradient(level_deltas))
            boxes[f"P{level}"] = clip(decoded, height, width)
            scores[f"P{level}"] = tf.sigmoid(tf.stop_gradient(level_logits))
        with _float32_policy():
            rois, _ = self.roi_generator(boxes, scores, training=training)
        return tf.stop_gradient(rois)

    def _classify(self, pyramid, rois: tf.Tensor, training: bool):
        """Class logits ``(B, R, classes + 1)`` and box deltas ``(B, R, 4)`` of ``rois``."""
        batch, count = tf.shape(rois)[0], tf.shape(rois)[1]
        features = roi_align(pyramid, rois, 7)
        features = tf.reshape(features, (-1, 7, 7, features.shape[-1]))
        logits, deltas = (
            tf.cast(x, tf.float32) for x in self.box_head(features, training=training)
        )
        return (
            tf.reshape(logits, (batch, count, self.settings.classes + 1)),
            tf.reshape(deltas, (batch, count, 4)),
        )

    def _mask_logits(self, pyramid, rois: tf.Tensor, training: bool) -> tf.Tensor:
        """Mask logits ``(B, R, 28, 28, classes)`` of ``rois``."""
        batch, count = tf.shape(rois)[0], tf.shape(rois)[1]
        features = roi_align(pyramid, rois, 14)
        features = tf.reshape(features, (-1, 14, 14, features.shape[-1]))
        logits = tf.cast(self.mask_head(features, training=training), tf.float32)
        return tf.reshape(logits, (batch, count, 28, 28, self.settings.classes))

    def call(self, images: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        pyramid = self.features(images, training=training)
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        logits, deltas, anchors = self._rpn(pyramid)
        rois = self._propose(logits, deltas, anchors, height, width, training=False)
        class_logits, box_deltas = self._classify(pyramid, rois, training)
        real = (rois[..., 2] > rois[..., 0]) & (rois[..., 3] > rois[..., 1])
        probabilities = tf.where(real[..., None], tf.nn.softmax(class_logits), 0.0)
        boxes = clip(decode(rois, box_deltas, ROI_DELTA_WEIGHTS), height, width)
        with _float32_policy():
            found = self.suppression(boxes, probabilities[..., 1:])
        classes = tf.cast(found["classes"], tf.int32)
        mask_logits = self._mask_logits(pyramid, found["boxes"], training)
        own = tf.gather(
            tf.transpose(mask_logits, (0, 1, 4, 2, 3)),
            tf.maximum(classes, 0),
            axis=2,
            batch_dims=2,
        )
        count = tf.cast(found["num_detections"], tf.int32)
        valid = tf.sequence_mask(count, tf.shape(classes)[1])
        return {
            "boxes": tf.where(valid[..., None], _xyxy(found["boxes"]), -1.0),
            "classes": tf.where(valid, classes, -1),
            "confidence": tf.where(valid, found["confidence"], -1.0),
            "masks": tf.where(valid[..., None, None], tf.sigmoid(own), 0.0),
            "num_detections": count,
        }

    def compute_losses(
        self, images: tf.Tensor, targets: dict[str, tf.Tensor], training: bool
    ) -> dict[str, tf.Tensor]:
        """The five losses (keys :data:`LOSSES`) of a batch (see the module for the shapes)."""
        classes = tf.cast(targets["classes"], tf.int32)
        valid = classes >= 0
        boxes = _xyxy(tf.cast(targets["boxes"], tf.float32))
        pyramid = self.features(images, training=training)
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        logits, deltas, anchors = self._rpn(pyramid)
        rpn = rpn_targets(tf.concat(anchors, 0), boxes, valid, self.settings)
        rpn_logits, rpn_deltas = tf.concat(logits, 1), tf.concat(deltas, 1)
        rois = self._propose(logits, deltas, anchors, height, width, training=True)
        roi = roi_targets(rois, boxes, classes, targets["masks"], valid, self.settings)
        class_logits, box_deltas = self._classify(pyramid, roi["rois"], training)
        # Sampled positives come first (see roi_targets): only those rows need masks.
        first = round(self.settings.roi_batch * self.settings.roi_positive_fraction)
        mask_logits = self._mask_logits(pyramid, roi["rois"][:, :first], training)
        return {
            "rpn_class": objectness_loss(rpn_logits, rpn["labels"], rpn["weights"]),
            "rpn_box": box_loss(rpn_deltas, rpn["deltas"], rpn["positive"], rpn["weights"]),
            "class": classification_loss(class_logits, roi["labels"], roi["weights"]),
            "box": box_loss(box_deltas, roi["deltas"], roi["positive"], roi["weights"]),
            "mask": mask_loss(
                mask_logits,
                roi["labels"][:, :first],
                roi["masks"][:, :first],
                roi["positive"][:, :first],
            ),
        }

    def _total(self, losses: dict[str, tf.Tensor]) -> tf.Tensor:
        return tf.add_n([self.term_weights[name] * losses[name] for name in LOSSES])

    def _record(self, losses: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Logs of the step: the running mean of each loss and of their weighted sum."""
        self.trackers["loss"].update_state(self._total(losses))
        for name in LOSSES:
            self.trackers[name].update_state(losses[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data):
        images, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            losses = self.compute_losses(images, targets, training=True)
            # Replicas' gradients are summed: each contributes its share of the mean.
            total = self._total(losses) / tf.distribute.get_strategy().num_replicas_in_sync
            # Under mixed precision the optimizer scales the loss up (and the gradients down).
            total = self.optimizer.scale_loss(total)
        gradients = tape.gradient(total, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        return self._record(losses)

    def test_step(self, data):
        images, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._record(self.compute_losses(images, targets, training=False))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "config": self.settings.to_dict(),
            "loss_weights": dict(self.term_weights),
        }


def build_maskrcnn(config: MaskRCNNConfig, loss_weights: dict | None = None) -> MaskRCNN:
    """A Mask R-CNN of ``config`` with fresh weights, built (its variables exist)."""
    model = MaskRCNN(config, loss_weights)
    model(tf.zeros((1, config.tile, config.tile, 1)))
    return model
