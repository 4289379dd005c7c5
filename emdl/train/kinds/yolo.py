"""The detector kind: a box per defect, keras-cv's YOLOv8 with emdl's additions
(:mod:`emdl.models.yolo`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import tensorflow as tf

from emdl.annotations import ImageAnnotation
from emdl.data.normalize import min_max
from emdl.export.saved_model import write_serving
from emdl.labels import box_targets
from emdl.metrics.detection import score_detections
from emdl.models.keras_cv_adapter import decode_regression_to_boxes, dist2bbox, dynamic_anchors
from emdl.models.yolo import Detector, DetectorConfig, build_detector
from emdl.predict.detect import detect_image
from emdl.predict.instances import Instances, instances_from_boxes
from emdl.train import strategy
from emdl.train.config import RunConfig
from emdl.train.kinds.base import ModelKind, Row, box_dataset_options, detection_batches
from emdl.train.optimizer import build_optimizer
from emdl.train.report import plot_detections

THRESHOLD = 0.25  # score, when the run's metrics.json names no F1-best one


class DetectorKind(ModelKind):
    name = "yolo"
    config_class = DetectorConfig
    default_loss = MappingProxyType({"box": 7.5, "dfl": 1.5, "class": 0.5})
    loss_terms = ("box", "dfl", "class")
    monitor = "val_loss"
    target = "detection"

    def dataset_options(self, training, classes, config) -> dict:
        options = box_dataset_options(training, classes, config)
        if self.jit_compile(config):
            return options  # XLA compiles each shape anew: every batch padded alike
        # Boxes padded per batch: the label assignment's time grows with the padded boxes, and
        # a crop holds far fewer than the busiest image (keras-cv's assigner takes any number).
        return options | {"max_boxes": "batch"}

    def jit_compile(self, config: RunConfig) -> bool:
        """Whether the training step is compiled by XLA: ``model.jit_compile``, "auto" resolved
        by :func:`emdl.train.strategy.xla_preferred`."""
        jit = config.model.jit_compile
        return strategy.xla_preferred() if jit == "auto" else bool(jit)

    def build(self, config: RunConfig, *, compiled: bool = True) -> Detector:
        """A detector whose head priors suit the training window; compiled with the run's
        optimizer and loss weights (``box`` CIoU, ``dfl``, ``class``)."""
        model = build_detector(config.model, config.data.window)
        if compiled:
            loss = config.loss
            model.compile(
                optimizer=build_optimizer(config.training),
                box_loss="ciou",
                classification_loss="binary_crossentropy",
                box_loss_weight=loss["box"],
                classification_loss_weight=loss["class"],
                dfl_loss_weight=loss["dfl"],
                jit_compile=self.jit_compile(config),
            )
        return model

    def unusable_epoch(self, logs: Mapping[str, float], config: RunConfig, prefix: str) -> str:
        """An epoch whose model scores no box above ``confidence_threshold`` (the batches'
        highest class scores, averaged: ``top_score``) detects nothing; its loss is then about
        0 too (the task-aligned targets scale with the model's scores), the lowest of the run."""
        top = logs.get(f"{prefix}top_score")
        if top is None or top >= config.model.confidence_threshold:
            return ""
        return (
            f"{prefix}top_score {top:.3g} is below the confidence threshold "
            f"{config.model.confidence_threshold:g}: the model detects nothing"
        )

    def truth(self, annotation: ImageAnnotation, classes: Sequence[str], config: RunConfig) -> dict:
        """Boxes "xyxy" pixels of the whole image and their classes."""
        return box_targets(annotation, classes, line_width=config.data.line_width)

    def predict(self, model: Detector, image: np.ndarray, config: RunConfig) -> dict:
        """Detections in a whole micrograph, resized and cut into tiles as the model config says
        and merged across tiles (:func:`emdl.predict.detect.detect_image`): ``{"boxes" float32
        (N, 4) "xyxy" image pixels, "classes" int32 (N,), "scores" float32 (N,)}``."""
        batches = detection_batches(model, config)
        return detect_image(batches, image, **config.model.tiling(), batch_size=1)

    def score(self, pairs: Iterable, classes: Sequence[str], config: RunConfig) -> dict:
        """AP, precision, recall, F1 and count errors
        (:func:`emdl.metrics.detection.score_detections`)."""
        return score_detections(pairs, classes)

    def instances(
        self,
        model: Detector,
        image: np.ndarray,
        config: RunConfig,
        *,
        threshold: float,
        min_area: float = 0.0,
    ) -> Instances:
        found = self.predict(model, image, config)
        return instances_from_boxes(
            found["boxes"],
            found["classes"],
            found["scores"],
            *image.shape,
            score_threshold=threshold,
            min_area=min_area,
        )

    def default_threshold(self, config: RunConfig, metrics: Mapping | None) -> float:
        """The F1-best score threshold the run recorded, else :data:`THRESHOLD`."""
        try:
            return float(metrics["score_threshold"])
        except (KeyError, TypeError, ValueError):
            return THRESHOLD

    def export(self, model: Detector, path: str | os.PathLike, config: RunConfig) -> None:
        """Write a SavedModel whose signatures (:data:`emdl.signatures.SIGNATURES`)
        take ``image``: uint8, uint16 or float32 ``(B, H, W, 1)`` micrographs of any size and
        intensity range, and return final detections: ``boxes`` float32 ``(B, K, 4)`` "xyxy"
        in pixels of the input, ``classes`` ``(B, K)``, ``confidence`` ``(B, K)`` (padded with
        -1 after ``num_detections``) and ``num_detections`` int32 ``(B,)``.

        Inside: the image is resized by the run's rule (:class:`emdl.data.resize.Resize`, the
        one training and ``emdl predict`` use), min-max scaled, padded to a multiple of 32, and
        the raw head outputs decoded with non-max suppression (keras-cv's own ``export`` stops
        at the raw heads).
        """
        resize = config.model.resize

        def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
            height, width = tf.shape(image)[1], tf.shape(image)[2]
            resized = min_max(resize.tensor_images(image))
            new_size = tf.shape(resized)[1:3]
            pad = (32 - new_size % 32) % 32
            padded = tf.pad(resized, [[0, 0], [0, pad[0]], [0, pad[1]], [0, 0]], mode="SYMMETRIC")
            raw = model(padded, training=False)
            points, strides = dynamic_anchors(tf.shape(padded)[1], tf.shape(padded)[2])
            distances = decode_regression_to_boxes(raw["boxes"])
            boxes = dist2bbox(distances, points) * strides[:, None]
            found = model.prediction_decoder(boxes, raw["classes"])
            # Back to input pixels (x by the width ratio, y by the height ratio), inside it.
            ratio = tf.cast(tf.stack([width, height]), tf.float32) / tf.cast(
                new_size[::-1], tf.float32
            )
            limit = tf.tile(tf.cast(tf.stack([width, height]), tf.float32), [2])
            scaled = tf.clip_by_value(found["boxes"] * tf.tile(ratio, [2]), 0.0, limit)
            count = tf.cast(found["num_detections"], tf.int32)
            real = tf.sequence_mask(count, tf.shape(scaled)[1])[..., None]
            return {
                "boxes": tf.where(real, scaled, -1.0),
                "classes": found["classes"],
                "confidence": found["confidence"],
                "num_detections": count,
            }

        write_serving(model, serve, path)

    def plot(self, rows: Sequence[Row], classes, config, metrics, out) -> None:
        """True boxes and the detections at the F1-best threshold."""
        shown = [(record.name, image, found, truth) for record, image, found, truth in rows]
        plot_detections(shown, out, threshold=metrics["score_threshold"])

    def headline(self, metrics: Mapping) -> str:
        return (
            f"ap50 {metrics['ap50']:.3f}, ap50_95 {metrics['ap50_95']:.3f}, "
            f"precision50 {metrics['precision50']:.3f}, recall50 {metrics['recall50']:.3f}, "
            f"f1_50 {metrics['f1_50']:.3f} at score >= {metrics['score_threshold']:.3f}"
        )


KIND = DetectorKind()
