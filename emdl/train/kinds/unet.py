"""The U-Net kind: semantic segmentation, instances from connected components of its
probability map, touching objects split by a watershed on the distance transform, or, for an
instance-aware U-Net, along the borders it learned (``model.border_width`` > 0) or from the peaks
of the distance map it learned (``model.distance_weight`` > 0)."""

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
    instances_from_distance,
    instances_from_probabilities,
)
from emdl.predict.segment import classes_from_probabilities
from emdl.predict.tiled import predict_image
from emdl.predict.tta import tta_pixels
from emdl.train.config import RunConfig
from emdl.train.kinds.base import ModelKind, Row
from emdl.train.optimizer import build_optimizer
from emdl.train.report import plot_overlays

THRESHOLD = 0.5  # foreground probability
# What the calibration tries: peak depths of the normalized distance map, split depths in pixels.
PEAK_DEPTHS = (0.1, 0.15, 0.2, 0.3)
SPLIT_DEPTHS = (0.5, 0.75, 1.0, 2.0)


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
        options = {}
        if config.model.border_width:
            options["border_width"] = config.model.border_width
        if config.model.distance:
            options["distance"] = True
        return options

    def build(self, config: RunConfig, *, compiled: bool = True) -> keras.Model:
        """A U-Net; compiled with the run's optimizer (cosine decay, optional weight average),
        the composed loss (the border class weighted ``border_weight``; the distance map's error
        weighted ``distance_weight``) and IoU, Dice and pixel accuracy per foreground class."""
        settings = config.model
        model = build_unet(settings)
        if compiled:
            # The class channels: all but a distance U-Net's last.
            channels = {"probabilities": _channels(settings)} if settings.distance else {}
            metrics = [ForegroundIoU(1, **channels), ForegroundDice(1, **channels)]
            for class_id in range(2, settings.classes + 1):
                metrics += [
                    ForegroundIoU(class_id, **channels),
                    ForegroundDice(class_id, **channels),
                ]
            weights = None
            if settings.border_width:
                weights = [1.0] * (settings.classes + 1) + [settings.border_weight]
            loss = SegmentationLoss(
                config.loss,
                classes=settings.labels,
                class_weights=weights,
                distance_weight=settings.distance_weight,
            )
            model.compile(
                optimizer=build_optimizer(config.training),
                loss=loss,
                metrics=[*metrics, PixelAccuracy(**channels)],
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
        if config.model.distance:
            probabilities = probabilities[..., :-1]
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
        settings = config.model
        if settings.distance:
            return instances_from_distance(
                probabilities,
                threshold=threshold,
                min_area=min_area,
                peak_depth=settings.peak_depth,
            )
        if settings.border_width:
            return instances_from_borders(probabilities, threshold=threshold, min_area=min_area)
        return instances_from_probabilities(
            probabilities, threshold=threshold, min_area=min_area, split_depth=settings.split_depth
        )

    def calibration_settings(self, config: RunConfig) -> list[dict]:
        """The distance U-Net's peak depth or the plain U-Net's split depth (pixels; None its
        rule), the config's own first."""
        settings = config.model
        if settings.distance:
            tried = [settings.peak_depth, *PEAK_DEPTHS]
            return [{"peak_depth": depth} for depth in dict.fromkeys(tried)]
        if settings.border_width:
            return [{}]
        tried = [settings.split_depth, None, *SPLIT_DEPTHS]
        return [{"split_depth": depth} for depth in dict.fromkeys(tried)]

    def default_threshold(self, config: RunConfig, metrics: Mapping | None) -> float:
        return THRESHOLD

    def export(self, model: keras.Model, path: str | os.PathLike, config: RunConfig) -> None:
        export_segmentation(model, path, config.model.multiple, distance=config.model.distance)

    def plot(self, rows: Sequence[Row], classes, config, metrics, out) -> None:
        shown = [(record.name, image, truth, predicted) for record, image, predicted, truth in rows]
        plot_overlays(shown, len(classes), out)

    def headline(self, metrics: Mapping) -> str:
        return (
            f"iou {metrics['iou']:.3f}, dice {metrics['dice']:.3f}, "
            f"pixel accuracy {metrics['pixel_accuracy']:.3f}"
        )


def _channels(settings: UNetConfig) -> int:
    """The class channels of the U-Net's output: 1 (sigmoid) or the softmax's."""
    return 1 if settings.labels == 1 else settings.labels + 1


KIND = UNetKind()
