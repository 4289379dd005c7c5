"""The Mask R-CNN's part of a run: compile, whole-image evaluation and SavedModel export.
:mod:`emdl.train.run` calls these for runs of kind "maskrcnn" (its data comes from
:func:`emdl.train.detection.detection_data` with ``kind="instances"``)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from emdl.data import LabeledImage
from emdl.io.image import read_image
from emdl.labels import instances as instance_targets
from emdl.metrics.instances import score_instances
from emdl.models.maskrcnn import MaskRCNN, MaskRCNNConfig, build_maskrcnn
from emdl.predict.instances import Instances
from emdl.predict.masks import segment_objects
from emdl.train.export import write_serving
from emdl.train.optimizer import adamw


def build_compiled_maskrcnn(config) -> MaskRCNN:
    """A Mask R-CNN for ``config`` (a :class:`~emdl.train.config.RunConfig` of kind
    "maskrcnn"), its losses weighted by ``config.loss``, compiled with AdamW."""
    model = build_maskrcnn(config.model, config.loss)
    # Not XLA: keras-cv's non-max suppression and the sampling have data-dependent shapes.
    model.compile(optimizer=adamw(config.training), jit_compile=False)
    return model


def segmentations(
    model: MaskRCNN, records: Sequence[LabeledImage], classes: Sequence[str], config
) -> Iterator[tuple[str, np.ndarray, Instances, dict]]:
    """``(name, image, predicted instances, truth)`` of each record, one at a time; truth as
    :func:`emdl.labels.instances` gives it (boxes "xyxy", classes, masks ``(M, H, W)``)."""
    for record in records:
        image = read_image(record.path)
        truth = instance_targets(record.annotation, classes, line_width=config.data.line_width)
        yield record.name, image, segment_objects(model, image, config.model), truth


def evaluate_maskrcnn(
    model: MaskRCNN, records: Sequence[LabeledImage], classes: Sequence[str], config
) -> dict:
    """Mask and box AP, F1 and the lecture's union IoU on whole images (see
    :func:`emdl.metrics.instances.score_instances` for the keys)."""
    return score_instances(
        (
            (name, found, truth)
            for name, _, found, truth in segmentations(model, records, classes, config)
        ),
        classes,
        score_threshold=config.model.score_threshold,
    )


def export_maskrcnn(model: MaskRCNN, path: str | os.PathLike, config: MaskRCNNConfig) -> None:
    """Write a SavedModel whose ``serving_default`` takes ``image``: float32 ``(B, T, T, 1)``
    tiles of ``T = config.tile`` pixels (of the resized micrograph, any intensity range; each
    is min-max scaled inside) and returns ``boxes`` float32 ``(B, K, 4)`` "xyxy" tile pixels,
    ``classes`` int32 ``(B, K)``, ``scores`` float32 ``(B, K)``, ``masks`` float32
    ``(B, K, 28, 28)`` (each spanning its box) and ``num_detections`` int32 ``(B,)``; rows past
    ``num_detections`` are padding. The tile size is fixed because keras-cv's proposal
    generator needs static shapes; large micrographs are cut into tiles by the caller
    (``emdl predict`` does so and merges the tiles' instances).
    """

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        low = tf.reduce_min(image, axis=[1, 2, 3], keepdims=True)
        span = tf.reduce_max(image, axis=[1, 2, 3], keepdims=True) - low
        found = model(tf.math.divide_no_nan(image - low, span), training=False)
        return {
            "boxes": found["boxes"],
            "classes": found["classes"],
            "scores": found["confidence"],
            "masks": found["masks"],
            "num_detections": found["num_detections"],
        }

    write_serving(model, serve, path, size=config.tile)
