"""Training for a wall-clock budget (``training.budget_minutes``), as Ultralytics' ``time=`` does.

:class:`Budget` is one of a run's callbacks (:func:`emdl.train.callbacks.run_callbacks`) when the
config sets a budget. After every epoch it re-plans the run from the mean time of an epoch so far
(training and validation, in seconds of the injected ``clock``):

- ``R`` = budget - time spent, ``m`` = mean epoch time; the run is planned to end after
  ``E + ceil(R / m)`` epochs (``E`` those done), and training stops after that many: the last
  of them is the one the budget runs out in;
- the cosine decay of the learning rate (:func:`emdl.train.optimizer.learning_rate_schedule`) is
  stretched to end at the step the budget is expected to run out at: ``iterations +
  floor(R / m x steps_per_epoch)`` steps in all (the optimizer's ``iterations`` so far), less
  the warm-up (:func:`emdl.train.optimizer.decay_steps`);
- after any batch that spends the budget, training stops at once (Keras still validates that
  cut epoch and calls its epoch end, so checkpoints see it, the moving average of the weights
  swapped in as at any epoch's end).

``training.epochs`` caps the plan (one log line says when it binds). Before the first epoch has
been timed the decay is the config's (``epochs x steps_per_epoch`` steps).

Resuming from ``backup/``: the budget is the training time summed over the sessions of a run.
After each epoch the callback writes ``backup/budget.json`` (``{"epochs", "seconds",
"decay_steps"}``, written whole; removed with ``backup/`` when training ends). A resumed run
(Keras restarts it at the epoch the backup kept, with the optimizer's step count restored, so the
schedule goes on from that step) takes the seconds of those epochs from it and puts the decay back
to the length planned before the interruption, before its first step. The time between the
interruption and the restart, and that of the epoch cut by it (trained again), are not counted.
Without the file (a backup older than the budget) the epochs before are counted at the mean
time of the first epoch timed after the restart.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from emdl.io.atomic import write_text
from emdl.train.config import TrainingConfig
from emdl.train.optimizer import decay_steps

log = logging.getLogger(__name__)
BUDGET_STATE = "budget.json"  # in backup/: the budget spent by the epochs the backup kept


class Budget(keras.callbacks.Callback):
    """Trains for ``training.budget_minutes`` of ``clock`` time (see the module docstring),
    keeping its state in ``state_path`` (None: a run that cannot resume keeps none).

    After training: ``epochs_done`` (in all, resumed sessions included), ``seconds_spent``
    (their training time), ``planned_epochs`` (the last plan; None before any epoch ended) and
    ``planned_steps`` (the steps the decay was last stretched to, warm-up included).
    """

    def __init__(
        self,
        training: TrainingConfig,
        state_path: str | Path | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        if training.budget_minutes is None:
            raise ValueError("Budget: training.budget_minutes is not set")
        self.training = training
        self.seconds = training.budget_minutes * 60
        self.state_path = Path(state_path) if state_path is not None else None
        self.clock = clock
        self.epochs_done = 0
        self.seconds_spent = 0.0
        self.planned_epochs: int | None = None
        self.planned_steps = training.epochs * training.steps_per_epoch
        self._told_cap = False

    def on_train_begin(self, logs=None):
        schedule = self.model.optimizer._learning_rate  # Keras keeps no public handle
        if not isinstance(schedule, keras.optimizers.schedules.CosineDecay):
            raise TypeError(f"Budget: expected a CosineDecay learning rate, got {schedule!r}")
        # A variable, read by the traced training step, so that re-planning reaches it; kept on
        # the schedule, so that a later fit of the same model (whose traced step captured it)
        # still sees it.
        variable = getattr(schedule, "_budget_decay_steps", None)
        if variable is None:
            with self.model.distribute_strategy.scope():
                variable = tf.Variable(0.0, trainable=False, name="budget_decay_steps")
            schedule._budget_decay_steps = variable
        variable.assign(float(schedule.decay_steps))
        schedule.decay_steps = variable
        self._schedule = schedule
        self._first_epoch: int | None = None
        self._before: float | None = 0.0  # seconds of the epochs before this session
        self._start = self.clock()

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is not None:
            return
        # The first epoch of this session: 0, or where BackupAndRestore resumed the run.
        self._first_epoch = self.epochs_done = epoch
        if epoch == 0:
            return
        state = self._read_state()
        if state is None:
            self._before = None  # estimated when the first epoch here has been timed
            return
        # The backup and this file are written one after the other at each epoch's end: should
        # a crash fall between them, scale the seconds to the epochs the backup kept.
        self._before = state["seconds"] * epoch / state["epochs"]
        self._set_decay(state["decay_steps"])

    def on_train_batch_end(self, batch, logs=None):
        if self._spent() >= self.seconds and not self.model.stop_training:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = epoch + 1
        here = self.epochs_done - self._first_epoch
        if self._before is None:
            self._before = (self.clock() - self._start) * self._first_epoch / here
        spent = self.seconds_spent = self._spent()
        mean = spent / self.epochs_done
        left = max(self.seconds - spent, 0.0)
        cap = self.training.epochs
        planned = self.epochs_done + math.ceil(left / mean)
        if planned > cap and not self._told_cap:
            log.info(f"budget: {planned} epochs would fit, but training.epochs caps them at {cap}")
            self._told_cap = True
        if self.planned_epochs is None:
            log.info(
                f"budget: {mean:.1f} s an epoch so far; about {planned} epochs fit in "
                f"{self.training.budget_minutes:g} min"
            )
        self.planned_epochs = min(planned, cap)
        steps = int(self.model.optimizer.iterations)
        steps += math.floor(left / mean * self.training.steps_per_epoch)
        self._set_decay(min(steps, cap * self.training.steps_per_epoch))
        if self.epochs_done >= self.planned_epochs:
            self.model.stop_training = True
        if self.state_path is not None:
            state = {
                "epochs": self.epochs_done,
                "seconds": spent,
                "decay_steps": self.planned_steps,
            }
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.state_path, json.dumps(state) + "\n")

    def on_train_end(self, logs=None):
        self.seconds_spent = self._spent()
        # A plain number again, so that the optimizer's config (saved with model.keras) is JSON.
        self._schedule.decay_steps = decay_steps(self.training, self.planned_steps)

    def _spent(self) -> float:
        return (self._before or 0.0) + self.clock() - self._start

    def _set_decay(self, steps: int) -> None:
        """Stretch the cosine decay so that it ends after ``steps`` steps in all."""
        self.planned_steps = int(steps)
        self._schedule.decay_steps.assign(float(decay_steps(self.training, self.planned_steps)))

    def _read_state(self) -> dict | None:
        if self.state_path is None or not self.state_path.is_file():
            return None
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            if not (state["epochs"] >= 1 and state["seconds"] >= 0 and state["decay_steps"] >= 1):
                raise ValueError(f"bad values {state}")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                f"{self.state_path}: unreadable ({exc}); the epochs before the restart count at "
                "the mean time of the first epoch after it"
            )
            return None
        return state
