"""The Mask R-CNN kind: a mask per defect, from keras-cv's blocks (:mod:`emdl.models.maskrcnn`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from emdl.annotations import ImageAnnotation
from emdl.data.normalize import min_max
from emdl.export.saved_model import write_serving
from emdl.labels import instance_targets, semantic_mask
from emdl.metrics.instances import score_instances, union_mask
from emdl.models.maskrcnn import LOSSES, MaskRCNN, MaskRCNNConfig, build_maskrcnn
from emdl.models.maskrcnn.config import DEFAULT_LOSS_WEIGHTS
from emdl.predict.instances import Instances
from emdl.predict.masks import segment_instances
from emdl.train.config import RunConfig
from emdl.train.kinds.base import ModelKind, Row, box_dataset_options, detection_batches
from emdl.train.optimizer import build_optimizer
from emdl.train.report import plot_overlays


class MaskRCNNKind(ModelKind):
    name = "maskrcnn"
    config_class = MaskRCNNConfig
    default_loss = DEFAULT_LOSS_WEIGHTS
    loss_terms = LOSSES
    monitor = "val_loss"
    target = "instances"

    def dataset_options(self, training, classes, config) -> dict:
        return box_dataset_options(training, classes, config)

    def build(self, config: RunConfig, *, compiled: bool = True) -> MaskRCNN:
        """A Mask R-CNN, its losses weighted by ``config.loss``; compiled with the run's
        optimizer."""
        model = build_maskrcnn(config.model, config.loss)
        if compiled:
            # Not XLA: keras-cv's non-max suppression and the sampling have data-dependent shapes.
            model.compile(optimizer=build_optimizer(config.training), jit_compile=False)
        return model

    def truth(self, annotation: ImageAnnotation, classes: Sequence[str], config: RunConfig) -> dict:
        """:func:`emdl.labels.instance_targets`: boxes "xyxy", classes, masks ``(M, H, W)``."""
        return instance_targets(annotation, classes, line_width=config.data.line_width)

    def predict(self, model: MaskRCNN, image: np.ndarray, config: RunConfig) -> Instances:
        """All instances (no score threshold)."""
        return self.instances(model, image, config, threshold=0.0)

    def score(self, pairs: Iterable, classes: Sequence[str], config: RunConfig) -> dict:
        """Mask and box AP, F1 and the lecture's union IoU
        (:func:`emdl.metrics.instances.score_instances`)."""
        return score_instances(pairs, classes, score_threshold=config.model.score_threshold)

    def instances(
        self,
        model: MaskRCNN,
        image: np.ndarray,
        config: RunConfig,
        *,
        threshold: float,
        min_area: float = 0.0,
    ) -> Instances:
        """Instances of a whole micrograph, resized and cut into tiles as the model config says
        (:func:`emdl.predict.masks.segment_instances`), with its NMS and mask threshold."""
        return segment_instances(
            detection_batches(model, config),
            image,
            **config.model.tiling(),
            score_threshold=threshold,
            mask_threshold=config.model.mask_threshold,
            min_area=min_area,
        )

    def default_threshold(self, config: RunConfig, metrics: Mapping | None) -> float:
        """The config's ``score_threshold`` (the lecture's 0.7)."""
        return config.model.score_threshold

    def export(self, model: MaskRCNN, path: str | os.PathLike, config: RunConfig) -> None:
        """Write a SavedModel whose signatures (:data:`emdl.signatures.SIGNATURES`)
        take ``image``: uint8, uint16 or float32 ``(B, T, T, 1)`` tiles of ``T = tile`` pixels
        (of the resized micrograph, any intensity range; each is min-max scaled inside) and
        return ``boxes`` float32 ``(B, K, 4)``
        "xyxy" tile pixels, ``classes`` int32 ``(B, K)``, ``scores`` float32 ``(B, K)``,
        ``masks`` float32 ``(B, K, 28, 28)`` (each spanning its box) and ``num_detections``
        int32 ``(B,)``; rows past ``num_detections`` are padding. The tile size is fixed because
        keras-cv's proposal generator needs static shapes; large micrographs are cut into tiles
        by the caller (``emdl predict`` does so and merges the tiles' instances).
        """

        def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
            found = model(min_max(image), training=False)
            return {
                "boxes": found["boxes"],
                "classes": found["classes"],
                "scores": found["confidence"],
                "masks": found["masks"],
                "num_detections": found["num_detections"],
            }

        write_serving(model, serve, path, size=config.model.tile)

    def plot(self, rows: Sequence[Row], classes, config, metrics, out) -> None:
        """The union of the instances above the score threshold against the truth mask."""
        shown = [
            (
                record.name,
                image,
                semantic_mask(record.annotation, classes, line_width=config.data.line_width),
                union_mask(found, config.model.score_threshold),
            )
            for record, image, found, _ in rows
        ]
        plot_overlays(shown, len(classes), out)

    def headline(self, metrics: Mapping) -> str:
        return (
            f"mask_ap50 {metrics['mask_ap50']:.3f}, mask_ap50_95 {metrics['mask_ap50_95']:.3f}, "
            f"ap50 {metrics['ap50']:.3f}, f1_50 {metrics['f1_50']:.3f}, iou {metrics['iou']:.3f}"
        )


KIND = MaskRCNNKind()
