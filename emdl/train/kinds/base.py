"""The protocol every model kind implements (after TF Model Garden's ``Task`` and stardist's
base class with hooks): what a run, ``emdl evaluate``, ``emdl predict`` and the CLI need from a
kind, so that none of them compares kind names.

A kind states its config class, default loss weights and loss terms, the checkpoint monitor and
the pipeline target it trains on, and fills the hooks: build (and compile), the truth and the
whole-image prediction it is scored on, the scores, defect instances of one image, its default
threshold, SavedModel export, training overlays and its headline line. The loops that use the
hooks (training data, evaluation) are written once, here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from emdl.annotations import ImageAnnotation
from emdl.data import Augmentation, LabeledImage
from emdl.data.datasets import build_dataset, window_batches
from emdl.io.image import read_image
from emdl.labels import box_targets

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from emdl.predict.instances import Instances
    from emdl.train.config import RunConfig

# One evaluated image: (record, image float32 (H, W) in [0, 1], prediction, truth).
Row = tuple[LabeledImage, np.ndarray, Any, Any]


class ModelKind:
    """One model kind. Subclasses set the class attributes and implement the hooks that raise
    NotImplementedError; the rest have working defaults."""

    name: ClassVar[str]
    config_class: ClassVar[type]  # the model section's dataclass, with to_dict/from_dict
    default_loss: ClassVar[Mapping[str, float]]
    loss_terms: ClassVar[tuple[str, ...]]
    monitor: ClassVar[str]  # the best checkpoint's figure ("val_loss", "val_iou", ...)
    target: ClassVar[str]  # the pipeline's target kind: "semantic", "detection" or "instances"

    # Training.

    def model_config(self, model: Any, classes: Sequence[str]) -> Any:
        """The model section with ``classes`` filled in from the labels; a ValueError when the
        config asked for another number."""
        if model.classes not in (0, len(classes)):
            raise ValueError(
                f"model: classes is {model.classes} but the labels have {len(classes)} "
                f"({', '.join(classes)})"
            )
        return dataclasses.replace(model, classes=len(classes))

    def dataset_options(
        self, training: Sequence[LabeledImage], classes: Sequence[str], config: RunConfig
    ) -> dict:
        """Extra :func:`emdl.data.build_dataset` settings of this kind (none by default)."""
        return {}

    def datasets(
        self,
        training: Sequence[LabeledImage],
        validation: Sequence[LabeledImage],
        classes: Sequence[str],
        config: RunConfig,
        batch: int,
    ) -> tuple[tf.data.Dataset, tf.data.Dataset | None, int]:
        """Endless augmented training batches of ``batch`` crops, the validation images'
        sliding windows (None without validation images) and how many batches those are."""
        data = config.data
        common = {
            "window": data.window,
            "line_width": data.line_width,
            "seed": config.training.seed,
            **self.dataset_options(training, classes, config),
        }
        train = build_dataset(
            training,
            classes,
            self.target,
            batch_size=batch,
            augmentation=Augmentation.from_dict(config.augmentation),
            empty_crops=data.empty_crops,
            **common,
        )
        if not validation:
            return train, None, 0
        windows = build_dataset(
            validation,
            classes,
            self.target,
            batch_size=batch,
            training=False,
            stride=data.stride,
            **common,
        )
        steps = window_batches(validation, data.window, data.stride, batch, common.get("resize"))
        return train, windows, steps

    def build(self, config: RunConfig, *, compiled: bool = True) -> keras.Model:
        """The untrained model of ``config`` (classes filled in), compiled for training unless
        ``compiled`` is False."""
        raise NotImplementedError

    def unusable_epoch(self, logs: Mapping[str, float], config: RunConfig, prefix: str) -> str:
        """Why the model at the end of an epoch (its Keras ``logs``; ``prefix`` "val_" or "" for
        the figures the run monitors) cannot be the best checkpoint whatever its monitored
        figure, or "" when it can (always, by default)."""
        return ""

    # Evaluation on whole labeled images.

    def truth(self, annotation: ImageAnnotation, classes: Sequence[str], config: RunConfig) -> Any:
        """What a prediction of the image is scored against."""
        raise NotImplementedError

    def predict(self, model: keras.Model, image: np.ndarray, config: RunConfig) -> Any:
        """The kind's whole-image prediction of ``image`` float32 ``(H, W)`` in [0, 1], tiled."""
        raise NotImplementedError

    def score(
        self, pairs: Iterable[tuple[str, Any, Any]], classes: Sequence[str], config: RunConfig
    ) -> dict:
        """The scores of ``(name, prediction, truth)`` pairs, pooled over the images."""
        raise NotImplementedError

    def predictions(
        self,
        model: keras.Model,
        records: Sequence[LabeledImage],
        classes: Sequence[str],
        config: RunConfig,
    ) -> Iterator[Row]:
        """``(record, image, prediction, truth)`` of each record, one image at a time."""
        for record in records:
            image = read_image(record.path)
            truth = self.truth(record.annotation, classes, config)
            yield record, image, self.predict(model, image, config), truth

    def evaluate(
        self,
        model: keras.Model,
        records: Sequence[LabeledImage],
        classes: Sequence[str],
        config: RunConfig,
    ) -> dict:
        """Scores of ``model`` on whole labeled images (see :meth:`score`)."""
        rows = self.predictions(model, records, classes, config)
        return self.score(
            ((record.name, predicted, truth) for record, _, predicted, truth in rows),
            classes,
            config,
        )

    # What a trained run gives.

    def instances(
        self,
        model: keras.Model,
        image: np.ndarray,
        config: RunConfig,
        *,
        threshold: float,
        min_area: float = 0.0,
    ) -> Instances:
        """Defects of one image float32 ``(H, W)`` in [0, 1] whose score (or probability)
        reaches ``threshold``; objects under ``min_area`` square pixels dropped."""
        raise NotImplementedError

    def calibration_settings(self, config: RunConfig) -> list[dict]:
        """Changes to the model section that the calibration tries besides the threshold and
        the smallest area (the first: none), e.g. the U-Net's split depth."""
        return [{}]

    def default_threshold(self, config: RunConfig, metrics: Mapping | None) -> float:
        """The threshold :meth:`instances` uses unless told; ``metrics`` is the run's
        ``metrics.json`` (None when there is none)."""
        raise NotImplementedError

    def export(self, model: keras.Model, path: str | os.PathLike, config: RunConfig) -> None:
        """Write the SavedModel for TF Serving."""
        raise NotImplementedError

    def plot(
        self,
        rows: Sequence[Row],
        classes: Sequence[str],
        config: RunConfig,
        metrics: dict,
        out: str | os.PathLike,
    ) -> None:
        """Draw evaluated rows (:meth:`predictions`) as the run's ``overlays.png``."""
        raise NotImplementedError

    def headline(self, metrics: Mapping) -> str:
        """The scores in one line, e.g. ``iou 0.755, dice 0.860, pixel accuracy 0.950``."""
        raise NotImplementedError


def detection_batches(model: keras.Model, config: RunConfig):
    """The batch function of a detector or Mask R-CNN for tiled prediction: its
    ``predict_on_batch``, with the eight views of each tile merged when ``model.tta`` is set
    (:func:`emdl.predict.tta.tta_detections`, clustering at the run's NMS IoU)."""
    if not config.model.tta:
        return model.predict_on_batch
    from emdl.predict.tta import tta_detections

    return tta_detections(model.predict_on_batch, iou_threshold=config.model.iou_threshold)


def object_counts(records: Sequence[LabeledImage], classes: Sequence[str]) -> list[int]:
    """The number of labeled objects of ``classes`` in each record."""
    return [len(box_targets(r.annotation, classes)["classes"]) for r in records]


def box_dataset_options(
    training: Sequence[LabeledImage], classes: Sequence[str], config: RunConfig
) -> dict:
    """Dataset settings of the kinds that learn boxes: the model's resize rule and dense targets
    padded to the most objects an image has (so no box is cut off by the padding).

    Raises ValueError when the labels hold no objects of ``classes`` at all."""
    counts = object_counts(training, classes)
    if not sum(counts):
        raise ValueError(f"the training labels hold no objects of the classes {list(classes)}")
    return {"resize": config.model.resize, "max_boxes": max(counts)}
