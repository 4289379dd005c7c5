"""The detector's part of a run: its data, optimizer and losses, whole-image evaluation and
SavedModel export. :mod:`emdl.train.run` calls these for runs of kind "yolo"."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from emdl.data import Augmentation, LabeledImage
from emdl.data.datasets import build_dataset, window_batches
from emdl.io.image import read_image
from emdl.labels import boxes as box_targets
from emdl.metrics.detection import score_detections
from emdl.models.yolo import (
    STRIDES,
    Detector,
    DetectorConfig,
    build_detector,
    decode_regression_to_boxes,
    dist2bbox,
)
from emdl.predict.detect import detect_objects
from emdl.train.export import write_serving
from emdl.train.optimizer import adamw


def detection_data(
    training: Sequence[LabeledImage],
    validation: Sequence[LabeledImage],
    classes: Sequence[str],
    config,
    batch: int,
    kind: str = "detection",
) -> tuple[tf.data.Dataset, tf.data.Dataset | None, int]:
    """Training batches, validation batches (sliding windows, or None) and the number of
    validation batches of ``kind`` ("detection", or "instances" for Mask R-CNN), dense with -1
    padding as keras-cv's detector expects.

    Raises ValueError when the labels hold no boxes of ``classes`` at all."""
    counts = [len(box_targets(r.annotation, classes)["classes"]) for r in training]
    if not sum(counts):
        raise ValueError(f"the training labels hold no objects of the classes {list(classes)}")
    data, model = config.data, config.model
    common = {
        "window": data.window,
        "line_width": data.line_width,
        "seed": config.training.seed,
        "resize": model.resize,
        # A crop holds at most an image's objects: no box is cut off by the padding.
        "max_boxes": max(counts),
    }
    train_data = build_dataset(
        training,
        classes,
        kind,
        batch_size=batch,
        augmentation=Augmentation.from_dict(config.augmentation),
        empty_crops=data.empty_crops,
        **common,
    )
    if not validation:
        return train_data, None, 0
    validation_data = build_dataset(
        validation, classes, kind, batch_size=batch, training=False, stride=data.stride, **common
    )
    steps = window_batches(validation, data.window, data.stride, batch, model.resize)
    return train_data, validation_data, steps


def build_compiled_detector(config, window: int) -> Detector:
    """A detector for ``config`` (a :class:`~emdl.train.config.RunConfig` of kind "yolo"),
    compiled with AdamW and the run's loss weights (``box`` CIoU, ``dfl``, ``class``)."""
    model = build_detector(config.model, window)
    loss = config.loss
    model.compile(
        optimizer=adamw(config.training),
        box_loss="ciou",
        classification_loss="binary_crossentropy",
        box_loss_weight=loss["box"],
        classification_loss_weight=loss["class"],
        dfl_loss_weight=loss["dfl"],
        jit_compile=False,
    )
    return model


def detections(
    model: Detector, records: Sequence[LabeledImage], classes: Sequence[str], config
) -> Iterator[tuple[str, np.ndarray, dict, dict]]:
    """``(name, image, predicted, truth)`` of each record, one at a time; truth boxes are
    "xyxy" pixels of the whole image."""
    for record in records:
        image = read_image(record.path)
        truth = box_targets(record.annotation, classes, line_width=config.data.line_width)
        yield record.name, image, detect_objects(model, image, config.model), truth


def evaluate_detector(
    model: Detector, records: Sequence[LabeledImage], classes: Sequence[str], config
) -> dict:
    """AP, precision, recall, F1 and count errors on whole images (see
    :func:`emdl.metrics.detection.score_detections` for the keys)."""
    return score_detections(
        (
            (name, found, truth)
            for name, _, found, truth in detections(model, records, classes, config)
        ),
        classes,
    )


def _anchors(height: tf.Tensor, width: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Anchor centres ``(A, 2)`` (x, y, in units of their stride) and strides ``(A,)`` of an
    input of dynamic size, in the order of keras-cv's ``get_anchors``."""
    points, strides = [], []
    for stride in STRIDES:
        ys = tf.range(height // stride, dtype=tf.float32) + 0.5
        xs = tf.range(width // stride, dtype=tf.float32) + 0.5
        grid_x, grid_y = tf.meshgrid(xs, ys)
        level = tf.reshape(tf.stack([grid_x, grid_y], -1), (-1, 2))
        points.append(level)
        strides.append(tf.fill([tf.shape(level)[0]], float(stride)))
    return tf.concat(points, 0), tf.concat(strides, 0)


def export_detector(model: Detector, path: str | os.PathLike, config: DetectorConfig) -> None:
    """Write a SavedModel whose ``serving_default`` takes ``image``: float32 ``(B, H, W, 1)``
    micrographs of any size and intensity range, and returns final detections: ``boxes`` float32
    ``(B, K, 4)`` "xyxy" in pixels of the input, ``classes`` ``(B, K)``, ``confidence`` ``(B, K)``
    (padded with -1 after ``num_detections``) and ``num_detections`` int32 ``(B,)``.

    Inside: the image is resized as ``config`` says, padded to a multiple of 32, min-max scaled,
    and the raw head outputs decoded with non-max suppression (keras-cv's own ``export`` stops at
    the raw heads).
    """
    resize = config.resize

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        height, width = tf.shape(image)[1], tf.shape(image)[2]
        size = tf.cast(tf.stack([height, width]), tf.float32)
        factor = (
            tf.constant(resize.scale, tf.float32)
            if resize.longest_side is None
            else resize.longest_side / tf.reduce_max(size)
        )
        new_size = tf.maximum(tf.cast(tf.round(size * factor), tf.int32), 1)
        resized = tf.image.resize(image, new_size, antialias=True)
        low = tf.reduce_min(resized, axis=[1, 2, 3], keepdims=True)
        span = tf.reduce_max(resized, axis=[1, 2, 3], keepdims=True) - low
        resized = tf.math.divide_no_nan(resized - low, span)
        pad = (32 - new_size % 32) % 32
        padded = tf.pad(resized, [[0, 0], [0, pad[0]], [0, pad[1]], [0, 0]], mode="SYMMETRIC")
        raw = model(padded, training=False)
        points, strides = _anchors(tf.shape(padded)[1], tf.shape(padded)[2])
        distances = decode_regression_to_boxes(raw["boxes"])
        boxes = dist2bbox(distances, points) * strides[:, None]
        found = model.prediction_decoder(boxes, raw["classes"])
        # Back to input pixels (x by the width ratio, y by the height ratio), inside the image.
        ratio = tf.cast(tf.stack([width, height]), tf.float32) / tf.cast(new_size[::-1], tf.float32)
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
