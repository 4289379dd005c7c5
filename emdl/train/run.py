"""A training run of any model kind, from a :class:`RunConfig` to a complete run directory.

A run directory holds ``config.json`` (enough to rebuild the model and its pre-processing),
``history.csv``, ``best.weights.h5``, ``metrics.json``, ``curves.png``, ``overlays.png``,
``saved_model/`` (TF Serving), ``model.keras`` (the best model whole) and ``tensorboard/``;
``backup/`` exists while a run is unfinished.
What differs between kinds is asked of the run's :class:`~emdl.train.kinds.base.ModelKind`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras

from emdl.data import LabeledImage, load_labeled_images
from emdl.data.sources import split_by_image
from emdl.errors import InputError
from emdl.io.atomic import atomic_path, write_text
from emdl.train.backup import check_restart, disk_full_is_one_line
from emdl.train.calibration import (
    calibrate,
    calibrated_config,
    calibration_line,
    write_calibration,
)
from emdl.train.callbacks import BEST_WEIGHTS, run_callbacks
from emdl.train.config import RunConfig
from emdl.train.pretrained import start_from_pretrained
from emdl.train.report import plot_curves
from emdl.train.strategy import choose_strategy, is_chief

log = logging.getLogger(__name__)
SHOWN = 4  # images drawn in overlays.png
TRAINED = "trained"  # written when training ends, before the stages after it
MODEL_FILE = "model.keras"  # the best model whole: emdl.load_model(RUN_DIR / MODEL_FILE)
# What a run writes into its directory (the files --overwrite removes).
RUN_FILES = (
    "config.json",
    "history.csv",
    BEST_WEIGHTS,
    TRAINED,
    "calibration.json",
    "curves.png",
    "overlays.png",
    "metrics.json",
    "backup",
    "tensorboard",
    "saved_model",
    MODEL_FILE,
    "worker_tmp",
)


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


def train_run(
    config: RunConfig,
    run_dir: str | os.PathLike,
    *,
    verbose: int | str = 1,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    overwrite: bool = False,
) -> RunResult:
    """Train the model of ``config.kind`` as ``config`` says and fill ``run_dir`` (created if
    needed); ``callbacks`` run after the run's own (:func:`run_callbacks`).

    Runs under :func:`choose_strategy`; the global batch is ``batch_size x replicas``. A run
    directory whose ``backup/`` survives an interruption resumes where it stopped; one whose
    training ended (``trained``) but not its later stages (evaluation, calibration, plots,
    export) goes on with those. A finished run (``metrics.json``, written last) is refused with
    an InputError unless ``overwrite``, which first removes the run's own files (of a finished
    or an unfinished run: it starts afresh). Before a restart its backup and best weights are
    checked (:func:`emdl.train.backup.check_restart`: readable, and fitting ``config``'s
    model); ``config.json`` is written only then, so it never disagrees with the weights beside
    it. A full disk ends in one EmdlError; the last good backup stays. ``metrics.json``
    holds the scores on the validation images (whole images, tiled), or on the training images
    when there is no validation part, with ``evaluated_on`` saying which. With validation images
    the post-processing is calibrated on them (``calibration.json``,
    :mod:`emdl.train.calibration`); ``emdl predict`` uses it unless told otherwise.
    """
    run_dir = Path(run_dir)
    if (run_dir / "metrics.json").is_file() and not overwrite:
        raise InputError(
            run_dir,
            "holds a finished run; give --overwrite to train it again, or another --out",
        )
    if overwrite:
        _remove_run_files(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with disk_full_is_one_line(run_dir):
        return _train(config, run_dir, verbose, callbacks)


def _train(
    config: RunConfig,
    run_dir: Path,
    verbose: int | str,
    callbacks: Sequence[keras.callbacks.Callback],
) -> RunResult:
    say = log.info  # stage lines; the command line shows them unless --quiet
    keras.utils.set_random_seed(config.training.seed)
    training, validation, classes = _split(config)
    kind = config.model_kind
    config = dataclasses.replace(
        config, model=kind.model_config(config.model, classes), classes=tuple(classes)
    )
    chief = is_chief()
    strategy = choose_strategy(config.training.mixed_precision)
    batch = config.data.batch_size * strategy.num_replicas_in_sync
    train_data, validation_data, validation_steps = kind.datasets(
        training, validation, classes, config, batch
    )
    with strategy.scope():
        model = kind.build(config)
    if model.jit_compile:
        say("the training step is compiled by XLA (its first step compiles it)")
    monitor = (
        config.training.monitor if validation else config.training.monitor.removeprefix("val_")
    )
    trained = run_dir / TRAINED
    state_dir = run_dir if chief else run_dir / "worker_tmp"
    check_restart(run_dir, state_dir, config, BEST_WEIGHTS, trained=trained.is_file())
    start_from_pretrained(model, config, state_dir, trained=trained.is_file())
    if chief:
        # Only now: a restart whose weights do not fit would leave a config.json that lies.
        with atomic_path(run_dir / "config.json") as temporary:
            config.save(temporary)
    if trained.is_file():
        say(f"{run_dir}: training ended before; going on with the stages after it")
    else:
        model.fit(
            train_data,
            epochs=config.training.epochs,
            steps_per_epoch=config.training.steps_per_epoch,
            validation_data=validation_data,
            # Counted, so that Keras knows where the validation windows end.
            validation_steps=validation_steps or None,
            shuffle=False,  # the pipeline shuffles
            callbacks=[
                *run_callbacks(
                    run_dir,
                    monitor=monitor,
                    patience=config.training.early_stopping_patience,
                    chief=chief,
                    replicas=strategy.num_replicas_in_sync,
                    training=config.training,
                    unusable=functools.partial(
                        kind.unusable_epoch, config=config, prefix="val_" if validation else ""
                    ),
                ),
                *callbacks,
            ],
            verbose=verbose,
        )
        if chief:
            write_text(trained, "training ended; the stages after it follow\n")
    weights = run_dir / BEST_WEIGHTS if chief else run_dir / "worker_tmp" / BEST_WEIGHTS
    if strategy.num_replicas_in_sync > 1:
        # Under the strategy Keras predicts collectively: each call hands the whole batch to
        # every replica (and every worker) and gathers all their outputs. Each process evaluates
        # (and the chief exports) a copy of its own instead.
        model = kind.build(config, compiled=False)
    model.load_weights(weights)
    evaluated = validation or training
    which = "validation" if validation else "training"
    say(f"evaluating on {len(evaluated)} {which} image{'s' * (len(evaluated) != 1)} ...")
    metrics = kind.evaluate(model, evaluated, classes, config)
    metrics["evaluated_on"] = which
    if chief:
        if validation:
            say(f"calibrating the post-processing on {len(validation)} validation images ...")
            calibration = calibrate(model, validation, classes, config, metrics)
            write_calibration(run_dir, calibration)
        else:
            calibration = None
        say(calibration_line(calibration) + ("" if validation else " (no validation images)"))
        say("plotting curves.png and overlays.png ...")
        plot_curves(run_dir / "history.csv", run_dir / "curves.png")
        shown = list(kind.predictions(model, evaluated[:SHOWN], classes, config))
        kind.plot(shown, classes, config, metrics, run_dir / "overlays.png")
        say(f"exporting saved_model/ and {MODEL_FILE} ...")
        kind.export(model, run_dir / "saved_model", config)
        with atomic_path(run_dir / MODEL_FILE) as temporary:
            model.save(temporary)
        # Last: a run directory with metrics.json is a finished run.
        write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return RunResult(run_dir, config, model, metrics)


def _remove_run_files(run_dir: Path) -> None:
    """Remove what a run writes into ``run_dir`` (and nothing else there)."""
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def load_run(run_dir: str | os.PathLike) -> tuple[RunConfig, keras.Model]:
    """The config and the trained model (best weights) of a finished run directory; the
    config with the model settings its calibration chose (:func:`calibrated_config`).

    Raises:
        InputError: ``run_dir`` holds no run (no ``config.json``), or an unfinished one (no
            ``metrics.json``, the marker a run writes last): the message says how to resume it.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise InputError(run_dir, "not a finished run directory: no config.json")
    if not (run_dir / "metrics.json").is_file():
        raise InputError(
            run_dir,
            "is an unfinished run (no metrics.json): resume it with "
            f"`emdl train {run_dir / 'config.json'} --out {run_dir}`",
        )
    if not (run_dir / BEST_WEIGHTS).is_file():
        raise InputError(run_dir, f"not a finished run directory: no {BEST_WEIGHTS}")
    config = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    model = config.model_kind.build(config, compiled=False)
    model.load_weights(run_dir / BEST_WEIGHTS)
    return calibrated_config(run_dir, config), model
