"""The callbacks of a training run, writing into its run directory."""

from __future__ import annotations

from pathlib import Path

import keras

BEST_WEIGHTS = "best.weights.h5"


def run_callbacks(
    run_dir: Path,
    *,
    monitor: str,
    patience: int,
    chief: bool = True,
) -> list[keras.callbacks.Callback]:
    """Best checkpoint (``best.weights.h5`` by ``monitor``, higher is better), BackupAndRestore
    (``backup/``: an interrupted run resumes at the epoch it stopped in), early stopping after
    ``patience`` epochs without improvement (0: never), TerminateOnNaN, a CSV log
    (``history.csv``) and TensorBoard logs (``tensorboard/``).

    Workers other than the chief of a multi-worker run checkpoint into ``worker_tmp/`` beside it,
    as tf.distribute requires every worker to save but only one copy to be kept. The learning-rate
    schedule is part of the optimizer (cosine decay), so it resumes with the step count.
    """
    write_dir = run_dir if chief else run_dir / "worker_tmp"
    write_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.ModelCheckpoint(
            str(write_dir / BEST_WEIGHTS),
            monitor=monitor,
            mode="max",
            save_best_only=True,
            save_weights_only=True,
        ),
        keras.callbacks.CSVLogger(str(write_dir / "history.csv"), append=True),
    ]
    if patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=patience)
        )
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard")))
    return callbacks
