"""A training run (U-Net or detector), from a :class:`RunConfig` to a complete run directory.

A run directory holds ``config.json`` (enough to rebuild the model and its pre-processing),
``history.csv``, ``best.weights.h5``, ``metrics.json``, ``curves.png``, ``overlays.png``,
``saved_model/`` (TF Serving) and ``tensorboard/``; ``backup/`` exists while a run is unfinished.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from emdl.data import Augmentation, LabeledImage, load_labeled_images, semantic_dataset
from emdl.data.datasets import window_batches
from emdl.data.sources import split_by_image
from emdl.errors import InputError
from emdl.io.image import read_image
from emdl.labels import semantic_mask
from emdl.metrics import ForegroundDice, ForegroundIoU, PixelAccuracy
from emdl.metrics.evaluate import score_masks
from emdl.metrics.instances import union_mask
from emdl.models.losses import SegmentationLoss
from emdl.models.maskrcnn import build_maskrcnn
from emdl.models.unet import build_unet
from emdl.models.yolo import build_detector
from emdl.predict.segment import segment_image
from emdl.train.callbacks import BEST_WEIGHTS, run_callbacks
from emdl.train.config import RunConfig
from emdl.train.detection import (
    build_compiled_detector,
    detection_data,
    detections,
    evaluate_detector,
    export_detector,
)
from emdl.train.export import export_segmentation
from emdl.train.maskrcnn import (
    build_compiled_maskrcnn,
    evaluate_maskrcnn,
    export_maskrcnn,
    segmentations,
)
from emdl.train.optimizer import adamw
from emdl.train.report import plot_curves, plot_detections, plot_overlays
from emdl.train.strategy import choose_strategy, is_chief, workers_in_tf_config


@dataclass
class RunResult:
    """What a finished run left: its directory, its config (classes filled in), the trained model
    and its scores."""

    run_dir: Path
    config: RunConfig
    model: keras.Model
    metrics: dict


def _split(config: RunConfig) -> tuple[list[LabeledImage], list[LabeledImage], list[str]]:
    data = config.data
    records, classes = load_labeled_images(data.labels, data.images, missing=data.missing)
    if data.validation_labels:
        validation, more = load_labeled_images(
            data.validation_labels, data.images, missing=data.missing
        )
        classes += [name for name in more if name not in classes]
        return records, validation, classes
    if data.validation_fraction:
        training, validation = split_by_image(
            records, data.validation_fraction, seed=config.training.seed
        )
        return training, validation, classes
    return records, [], classes


def compile_unet(model: keras.Model, config: RunConfig) -> None:
    """AdamW with cosine decay and a weight average, the composed loss, and IoU, Dice and pixel
    accuracy per foreground class."""
    classes = config.model.classes
    metrics = [ForegroundIoU(1), ForegroundDice(1)]
    for class_id in range(2, classes + 1):
        metrics += [ForegroundIoU(class_id), ForegroundDice(class_id)]
    model.compile(
        optimizer=adamw(config.training),
        loss=SegmentationLoss(config.loss, classes=classes),
        metrics=[*metrics, PixelAccuracy()],
    )


def predicted_mask(model: keras.Model, image: np.ndarray, config: RunConfig) -> np.ndarray:
    """Class indices uint8 ``(H, W)`` of one whole image, predicted in tiles of the training
    window overlapping by a quarter of it."""
    return segment_image(
        model,
        image,
        tile=config.data.window,
        overlap=config.data.window // 4,
        multiple=config.model.multiple,
    )[1]


def evaluate_model(
    model: keras.Model, records: list[LabeledImage], classes: list[str], config: RunConfig
) -> dict:
    """Score ``model`` on whole labeled images, predicted in tiles (see
    :func:`emdl.metrics.evaluate.score_masks` or, for detectors,
    :func:`emdl.metrics.detection.score_detections`, for Mask R-CNN
    :func:`emdl.metrics.instances.score_instances` for the keys)."""
    if config.kind == "yolo":
        return evaluate_detector(model, records, classes, config)
    if config.kind == "maskrcnn":
        return evaluate_maskrcnn(model, records, classes, config)
    return score_masks(
        (
            (name, predicted, truth)
            for name, _, truth, predicted in _predictions(model, records, classes, config)
        ),
        classes,
    )


def _predictions(model, records, classes, config):
    """``(name, image, truth, prediction)`` of each record, one at a time."""
    for record in records:
        image = read_image(record.path)
        truth = semantic_mask(record.annotation, classes, line_width=config.data.line_width)
        yield record.name, image, truth, predicted_mask(model, image, config)


def train_run(
    config: RunConfig, run_dir: str | os.PathLike, *, verbose: int | str = 1
) -> RunResult:
    """Train the model of ``config.kind`` (a U-Net, a detector or a Mask R-CNN) as ``config``
    says and fill ``run_dir`` (created if needed).

    Runs under :func:`choose_strategy`; the global batch is ``batch_size x replicas``. A run
    directory whose ``backup/`` survives an interruption resumes where it stopped. ``metrics.json``
    holds the scores on the validation images (whole images, tiled), or on the training images
    when there is no validation part, with ``evaluated_on`` saying which.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.training.seed)
    training, validation, classes = _split(config)
    if config.kind != "unet" and config.model.classes not in (0, len(classes)):
        raise ValueError(
            f"model: classes is {config.model.classes} but the labels have {len(classes)} "
            f"({', '.join(classes)})"
        )
    model_config = dataclasses.replace(config.model, classes=len(classes))
    config = dataclasses.replace(config, model=model_config, classes=tuple(classes))
    chief = is_chief()
    if chief:
        config.save(run_dir / "config.json")

    strategy = choose_strategy()
    data = config.data
    batch = data.batch_size * strategy.num_replicas_in_sync
    if config.kind != "unet":
        kind = "detection" if config.kind == "yolo" else "instances"
        train_data, validation_data, validation_steps = detection_data(
            training, validation, classes, config, batch, kind
        )
    else:
        common = {
            "window": data.window,
            "line_width": data.line_width,
            "seed": config.training.seed,
        }
        train_data = semantic_dataset(
            training,
            classes,
            batch_size=batch,
            augmentation=Augmentation.from_dict(config.augmentation),
            empty_crops=data.empty_crops,
            **common,
        )
        validation_data = None
        if validation:
            validation_data = semantic_dataset(
                validation, classes, batch_size=batch, training=False, stride=data.stride, **common
            )
        validation_steps = window_batches(validation, data.window, data.stride, batch)
    with strategy.scope():
        model = _build(config)
    monitor = (
        config.training.monitor if validation else config.training.monitor.removeprefix("val_")
    )
    model.fit(
        train_data,
        epochs=config.training.epochs,
        steps_per_epoch=config.training.steps_per_epoch,
        validation_data=validation_data,
        # Counted, so that Keras knows where the validation windows end.
        validation_steps=validation_steps or None,
        shuffle=False,  # the pipeline shuffles
        callbacks=run_callbacks(
            run_dir, monitor=monitor, patience=config.training.early_stopping_patience, chief=chief
        ),
        verbose=verbose,
    )
    weights = run_dir / BEST_WEIGHTS if chief else run_dir / "worker_tmp" / BEST_WEIGHTS
    if workers_in_tf_config() > 1:
        # Under the strategy Keras would predict collectively, each call gathering every worker's
        # batch; each worker evaluates (and the chief exports) a copy of its own instead.
        model = _build(config, compiled=False)
    model.load_weights(weights)
    evaluated = validation or training
    metrics = evaluate_model(model, evaluated, classes, config)
    metrics["evaluated_on"] = "validation" if validation else "training"
    if chief:
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        plot_curves(run_dir / "history.csv", run_dir / "curves.png")
        if config.kind == "yolo":
            shown = list(detections(model, evaluated[:4], classes, config))
            plot_detections(shown, run_dir / "overlays.png", threshold=metrics["score_threshold"])
            export_detector(model, run_dir / "saved_model", config.model)
        elif config.kind == "maskrcnn":
            shown = zip(
                evaluated[:4], segmentations(model, evaluated[:4], classes, config), strict=True
            )
            overlays = [
                (
                    name,
                    image,
                    semantic_mask(record.annotation, classes, line_width=data.line_width),
                    union_mask(found, config.model.score_threshold),
                )
                for record, (name, image, found, _) in shown
            ]
            plot_overlays(overlays, len(classes), run_dir / "overlays.png")
            export_maskrcnn(model, run_dir / "saved_model", config.model)
        else:
            overlays = list(_predictions(model, evaluated[:4], classes, config))
            plot_overlays(overlays, len(classes), run_dir / "overlays.png")
            export_segmentation(model, run_dir / "saved_model", config.model.multiple)
    return RunResult(run_dir, config, model, metrics)


def _build(config: RunConfig, *, compiled: bool = True) -> keras.Model:
    """The run's model, compiled for training unless ``compiled`` is False."""
    if config.kind == "yolo":
        if compiled:
            return build_compiled_detector(config, config.data.window)
        return build_detector(config.model, config.data.window)
    if config.kind == "maskrcnn":
        if compiled:
            return build_compiled_maskrcnn(config)
        return build_maskrcnn(config.model, config.loss)
    model = build_unet(config.model)
    if compiled:
        compile_unet(model, config)
    return model


def load_run(run_dir: str | os.PathLike) -> tuple[RunConfig, keras.Model]:
    """The config and the trained model (best weights) of a finished run directory."""
    run_dir = Path(run_dir)
    for name in ("config.json", BEST_WEIGHTS):
        if not (run_dir / name).is_file():
            raise InputError(run_dir, f"not a finished run directory: no {name}")
    config = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    model = _build(config, compiled=False)
    model.load_weights(run_dir / BEST_WEIGHTS)
    return config, model


def evaluate_run(run_dir: str | os.PathLike, labels, images_dir, *, missing: str = "error") -> dict:
    """Scores of a run's model on labeled images (classes matched by name to the run's)."""
    config, model = load_run(run_dir)
    records, classes = load_labeled_images(labels, images_dir, missing=missing)
    unknown = [name for name in classes if name not in config.classes]
    if unknown:
        raise ValueError(f"labels {unknown} are not among the run's classes {list(config.classes)}")
    metrics = evaluate_model(model, records, list(config.classes), config)
    metrics["evaluated_images"] = len(records)
    return metrics
