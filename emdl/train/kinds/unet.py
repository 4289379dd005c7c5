"""The U-Net kind: semantic segmentation, instances from connected components of its
probability map, touching objects split by a watershed on the distance transform or, for an
instance-aware U-Net (``model.border_width`` > 0), along the borders it learned."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import keras
import numpy as np

from emdl.annotations import ImageAnnotation
from emdl.export.saved_model import export_segmentation
from emdl.labels import semantic_mask
from emdl.metrics import ForegroundDice, ForegroundIoU, PixelAccuracy
from emdl.metrics.evaluate import score_masks
from emdl.models.losses import TERMS, SegmentationLoss
from emdl.models.unet import UNetConfig, build_unet
from emdl.predict.instances import (
    Instances,
    foreground_probability,
    instances_from_borders,
    instances_from_probabilities,
)
from emdl.predict.segment import classes_from_probabilities
from emdl.predict.tiled import predict_image
from emdl.predict.tta import tta_pixels
from emdl.train.config import RunConfig
from emdl.train.kinds.base import ModelKind, Row
from emdl.train.optimizer import adamw
from emdl.train.report import plot_overlays

THRESHOLD = 0.5  # foreground probability


class UNetKind(ModelKind):
    name = "unet"
    config_class = UNetConfig
    default_loss = MappingProxyType({"cross_entropy": 1.0, "dice": 1.0})
    loss_terms = TERMS
    monitor = "val_iou"
    target = "semantic"

    def model_config(self, model: UNetConfig, classes: Sequence[str]) -> UNetConfig:
        # The U-Net's output layer follows the labels whatever the config said.
        return dataclasses.replace(model, classes=len(classes))

    def dataset_options(self, training, classes, config: RunConfig) -> dict:
        border = config.model.border_width
        return {"border_width": border} if border else {}

    def build(self, config: RunConfig, *, compiled: bool = True) -> keras.Model:
        """A U-Net; compiled with AdamW (cosine decay, optional weight average), the composed
        loss (the border class weighted ``border_weight``) and IoU, Dice and pixel accuracy per
        foreground class."""
        settings = config.model
        model = build_unet(settings)
        if compiled:
            metrics = [ForegroundIoU(1), ForegroundDice(1)]
            for class_id in range(2, settings.classes + 1):
                metrics += [ForegroundIoU(class_id), ForegroundDice(class_id)]
            weights = None
            if settings.border_width:
                weights = [1.0] * (settings.classes + 1) + [settings.border_weight]
            model.compile(
                optimizer=adamw(config.training),
                loss=SegmentationLoss(config.loss, classes=settings.labels, class_weights=weights),
                metrics=[*metrics, PixelAccuracy()],
            )
        return model

    def truth(
        self, annotation: ImageAnnotation, classes: Sequence[str], config: RunConfig
    ) -> np.ndarray:
        return semantic_mask(annotation, classes, line_width=config.data.line_width)

    def probabilities(self, model: keras.Model, image: np.ndarray, config: RunConfig) -> np.ndarray:
        """Probabilities float32 ``(H, W, C)`` of a whole image, in tiles of the training window
        overlapping by a quarter of it (averaged over the eight flips and turns of each with
        ``model.tta``)."""
        window = config.data.window
        predict_batch = model.predict_on_batch
        if config.model.tta:
            predict_batch = tta_pixels(predict_batch)
        return predict_image(
            predict_batch,
            image,
            tile=window,
            overlap=window // 4,
            multiple=config.model.multiple,
        )

    def predict(self, model: keras.Model, image: np.ndarray, config: RunConfig) -> np.ndarray:
        """Class indices uint8 ``(H, W)``: an instance-aware U-Net's border pixels belong to
        the foreground, with the likeliest class."""
        probabilities = self.probabilities(model, image, config)
        if not config.model.border_width:
            return classes_from_probabilities(probabilities)
        foreground = foreground_probability(probabilities) > THRESHOLD
        likeliest = probabilities[..., 1:-1].argmax(axis=-1) + 1
        return np.where(foreground, likeliest, 0).astype(np.uint8)

    def score(self, pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], classes, config) -> dict:
        """:func:`emdl.metrics.evaluate.score_masks`."""
        return score_masks(pairs, classes)

    def instances(
        self,
        model: keras.Model,
        image: np.ndarray,
        config: RunConfig,
        *,
        threshold: float,
        min_area: float = 0.0,
    ) -> Instances:
        probabilities = self.probabilities(model, image, config)
        found = (
            instances_from_borders if config.model.border_width else instances_from_probabilities
        )
        return found(probabilities, threshold=threshold, min_area=min_area)

    def default_threshold(self, config: RunConfig, metrics: Mapping | None) -> float:
        return THRESHOLD

    def export(self, model: keras.Model, path: str | os.PathLike, config: RunConfig) -> None:
        export_segmentation(model, path, config.model.multiple)

    def plot(self, rows: Sequence[Row], classes, config, metrics, out) -> None:
        shown = [(record.name, image, truth, predicted) for record, image, predicted, truth in rows]
        plot_overlays(shown, len(classes), out)

    def headline(self, metrics: Mapping) -> str:
        return (
            f"iou {metrics['iou']:.3f}, dice {metrics['dice']:.3f}, "
            f"pixel accuracy {metrics['pixel_accuracy']:.3f}"
        )


KIND = UNetKind()
