"""The callbacks of a training run, writing into its run directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from emdl.errors import EmdlError
from emdl.train.backup import BACKUP, AtomicBackupAndRestore, AtomicModelCheckpoint
from emdl.train.budget import BUDGET_STATE, Budget
from emdl.train.config import TrainingConfig
from emdl.train.strategy import workers_in_tf_config

BEST_WEIGHTS = "best.weights.h5"


class AverageAcrossWorkers(keras.callbacks.Callback):
    """Averages the non-trainable float weights (batch-norm moving statistics) over the replicas
    of a distributed run (several workers, or several GPUs of one) at the end of each epoch,
    before anything saves them.

    Keras 3 updates them on each replica from its own batches alone, so each replica would keep
    its own, and a checkpoint would save the first replica's. The average is what a synchronized
    update would give: the moving averages are linear in the batch statistics.
    """

    def on_epoch_end(self, epoch, logs=None):
        variables = [
            variable
            for variable in self.model.non_trainable_variables
            if keras.backend.is_float_dtype(variable.dtype)
        ]

        @tf.function
        def average():
            # In replica context each replica reads and overwrites its own copies.
            context = tf.distribute.get_replica_context()
            means = context.all_reduce("MEAN", [tf.identity(v.value) for v in variables])
            for variable, mean in zip(variables, means, strict=True):
                variable.assign(mean)

        self.model.distribute_strategy.run(average)


class UsableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' EarlyStopping, passing over the epochs ``unusable`` (logs -> why, or "") names,
    as the best checkpoint does: they neither count as best nor as epochs without improvement."""

    def __init__(self, *args, unusable: Callable[[dict], str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.unusable = unusable

    def get_monitor_value(self, logs):
        if self.unusable and self.unusable(logs or {}):
            return None  # Keras skips an epoch without a value
        return super().get_monitor_value(logs)


def run_callbacks(
    run_dir: Path,
    *,
    monitor: str,
    patience: int,
    chief: bool = True,
    replicas: int = 1,
    training: TrainingConfig | None = None,
    unusable: Callable[[dict], str] | None = None,
) -> list[keras.callbacks.Callback]:
    """Best checkpoint (``best.weights.h5`` by ``monitor``: lower is better for a loss, higher
    for anything else), BackupAndRestore
    (``backup/``: an interrupted run resumes at the epoch it stopped in), both written whole or
    not at all (:mod:`emdl.train.backup`), early stopping after
    ``patience`` epochs without improvement (0: never), TerminateOnNaN, a CSV log
    (``history.csv``) and TensorBoard logs (``tensorboard/``); with several ``replicas`` (or
    workers), :class:`AverageAcrossWorkers` first; when ``training`` sets ``budget_minutes``,
    :class:`emdl.train.budget.Budget` (its state in ``backup/``, right after the backup's, so
    that it resumes with it); when it sets ``ema_momentum``, Keras' SwapEMAWeights, so that
    the moving average of the weights is what is validated and checkpointed. ``unusable`` (an
    epoch's logs -> why it cannot be the best, or "") keeps such epochs from the best checkpoint
    and from early stopping's count (:class:`emdl.train.backup.AtomicModelCheckpoint`).

    Workers other than the chief of a multi-worker run checkpoint (and back up) into
    ``worker_tmp/`` beside it, as tf.distribute requires every worker to save but only one copy to
    be kept; the workers may share the run directory. The learning-rate schedule is part of the
    optimizer (cosine decay), so it resumes with the step count (a budget's stretch of it is
    put back from ``backup/``).
    """
    mode = "min" if monitor.endswith("loss") else "max"
    write_dir = run_dir if chief else run_dir / "worker_tmp"
    write_dir.mkdir(parents=True, exist_ok=True)
    distributed = replicas > 1 or workers_in_tf_config() > 1
    callbacks = [AverageAcrossWorkers()] if distributed else []
    callbacks.append(AtomicBackupAndRestore(str(write_dir / BACKUP)))
    if training is not None and training.budget_minutes is not None:
        if workers_in_tf_config() > 1:
            # Each worker would stop by its own clock, at different steps, and the collective
            # ops of the others would wait for it forever.
            raise EmdlError(
                "training.budget_minutes: not supported with several workers (TF_CONFIG); "
                "give training.epochs instead"
            )
        callbacks.append(Budget(training, write_dir / BACKUP / BUDGET_STATE))
    callbacks.append(keras.callbacks.TerminateOnNaN())
    if training is not None and training.ema_momentum > 0:
        # After the backup (which keeps the trained weights and their average apart) and
        # before the checkpoint (which keeps the average): validation and the checkpoint see
        # the average, training goes on with the trained weights, as Ultralytics' ModelEMA.
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks += [
        AtomicModelCheckpoint(
            str(write_dir / BEST_WEIGHTS),
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
            unusable=unusable,
        ),
        keras.callbacks.CSVLogger(str(write_dir / "history.csv"), append=True),
    ]
    if patience:
        callbacks.append(
            UsableEarlyStopping(monitor=monitor, mode=mode, patience=patience, unusable=unusable)
        )
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard")))
    return callbacks
