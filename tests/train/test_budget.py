"""emdl.train.budget: a run of ``training.budget_minutes`` re-plans its epochs and its cosine decay
after every epoch, stops after the batch that spends the budget, and resumes from its backup
with the time and the plan it had; on a fake clock, so every number is exact."""

from __future__ import annotations

import contextlib
import json

import keras
import numpy as np
import pytest

from emdl.errors import EmdlError, InputError
from emdl.train.budget import BUDGET_STATE, Budget
from emdl.train.callbacks import run_callbacks
from emdl.train.config import TrainingConfig, load_config
from emdl.train.optimizer import build_optimizer

# 4 steps an epoch, a budget of 2 minutes, at most 100 epochs (the cap never binds here).
TRAINING = TrainingConfig(epochs=100, steps_per_epoch=4, learning_rate=0.1, budget_minutes=2.0)
X, Y = np.ones((8, 2), np.float32), np.ones((8, 1), np.float32)


class Clock:
    """A fake clock: ``seconds[k]`` pass during the k-th batch (0-based, counted over this
    session), then ``default`` each."""

    def __init__(self, seconds=(), default=10.0, start=0.0):
        self.now, self.seconds, self.default, self.batches = start, list(seconds), default, 0

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        step = self.seconds[self.batches] if self.batches < len(self.seconds) else self.default
        self.now += step
        self.batches += 1


class Ticks(keras.callbacks.Callback):
    """Runs before the budget: each batch takes its time on the fake clock."""

    def __init__(self, clock: Clock):
        super().__init__()
        self.clock = clock

    def on_train_batch_end(self, batch, logs=None):
        self.clock.tick()


class Plans(keras.callbacks.Callback):
    """Runs after the budget: what it planned after each epoch, and the decay the first step of
    the session trained with."""

    def __init__(self, budget: Budget):
        super().__init__()
        self.budget, self.seen, self.first_decay = budget, [], None

    def on_train_batch_begin(self, batch, logs=None):
        if self.first_decay is None:
            self.first_decay = float(self.model.optimizer._learning_rate.decay_steps.numpy())

    def on_epoch_end(self, epoch, logs=None):
        decay = float(self.model.optimizer._learning_rate.decay_steps.numpy())
        self.seen.append((self.budget.planned_epochs, self.budget.planned_steps, decay))


def tiny_model(training: TrainingConfig) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=build_optimizer(training), loss="mse")
    return model


def fit(model, callbacks, training=TRAINING):
    model.fit(
        X,
        Y,
        batch_size=2,
        epochs=training.epochs,
        steps_per_epoch=training.steps_per_epoch,
        callbacks=callbacks,
        verbose=0,
    )


# The first batch takes 30 s (tracing), the others 10 s. Epoch 1 ends at 60 s: mean 60 s, 60 s
# left -> 1 + ceil(60 / 60) = 2 epochs, 4 + floor(60 / 60 x 4) = 8 steps. Epoch 2 ends at
# 100 s: mean 50 s, 20 s left -> 2 + ceil(20 / 50) = 3 epochs, 8 + floor(20 / 50 x 4) = 9 steps.
# Epoch 3: step 10 ends at 120 s, spending the budget; training stops there.
PLANS = [(2, 8, 8.0), (3, 9, 9.0), (3, 10, 10.0)]


def test_epochs_are_replanned_and_training_stops_after_the_batch_that_spends_the_budget():
    model, clock = tiny_model(TRAINING), Clock([30.0])
    budget = Budget(TRAINING, clock=clock)
    plans = Plans(budget)
    fit(model, [Ticks(clock), budget, plans])
    assert plans.first_decay == 400.0  # the config's 100 x 4 until an epoch is timed
    assert plans.seen == PLANS
    assert int(model.optimizer.iterations) == 10 and clock.batches == 10
    assert (budget.epochs_done, budget.seconds_spent) == (3, 120.0)
    # A plain number again once training ended (the optimizer's config is saved as JSON).
    assert model.optimizer._learning_rate.decay_steps == 10


def test_the_cap_and_the_warmup_shorten_the_plan():
    training = TrainingConfig(**{**vars(TRAINING), "epochs": 2, "warmup_steps": 3})
    model, clock = tiny_model(training), Clock([30.0])
    budget = Budget(training, clock=clock)
    plans = Plans(budget)
    fit(model, [Ticks(clock), budget, plans], training)
    # As above, but at most 2 epochs (8 steps); the decay lasts the steps after the warm-up.
    assert plans.seen == [(2, 8, 5.0), (2, 8, 5.0)]
    assert (int(model.optimizer.iterations), budget.seconds_spent) == (8, 100.0)


def test_a_resumed_run_keeps_the_time_and_the_plan_of_the_epochs_its_backup_kept(tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations) == 6:  # in epoch 2, after its backup
                raise KeyboardInterrupt

    def session(clock, more=()):
        callbacks = run_callbacks(tmp_path, monitor="loss", patience=0, training=TRAINING)
        budget = next(c for c in callbacks if isinstance(c, Budget))
        budget.clock = clock
        plans = Plans(budget)
        model = tiny_model(TRAINING)
        with pytest.raises(KeyboardInterrupt) if more else contextlib.nullcontext():
            fit(model, [Ticks(clock), *callbacks, plans, *more])
        return model, budget, plans

    _, budget, plans = session(Clock([30.0]), [Interrupt()])
    assert plans.seen == PLANS[:1]
    state = json.loads((tmp_path / "backup" / BUDGET_STATE).read_text())
    assert state == {"epochs": 1, "seconds": 60.0, "decay_steps": 8}

    # Restarted much later: the hour in between and the 20 s of the cut epoch do not count.
    model, budget, plans = session(Clock(start=5000.0))
    assert plans.first_decay == 8.0  # the plan before the interruption, from the first step
    assert plans.seen == PLANS[1:]  # epochs 2 and 3 planned as in the uninterrupted run
    assert int(model.optimizer.iterations) == 10
    assert (budget.epochs_done, budget.seconds_spent) == (3, 120.0)
    assert not (tmp_path / "backup").exists()  # removed with the backup when training ended


def test_a_cut_epoch_is_checkpointed_with_the_averaged_weights(tmp_path):
    """The run's own callbacks, the budget on the fake clock: epoch 3 is cut after its second
    step (10 steps in all). At each epoch's end, cut or not, the model holds the moving average
    of the trained weights (what the checkpoint saves); each epoch trains on from the trained
    weights, not from the average."""
    training = TrainingConfig(**{**vars(TRAINING), "ema_momentum": 0.5})
    model, clock = tiny_model(training), Clock([30.0])
    callbacks = run_callbacks(tmp_path, monitor="loss", patience=0, training=training)
    (budget,) = [c for c in callbacks if isinstance(c, Budget)]
    budget.clock = clock
    trained, average, at_end, at_start = [], [], {}, {}

    class Probe(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                at_start[len(at_start)] = self.model.get_weights()

        def on_train_batch_end(self, batch, logs=None):
            trained.append(self.model.get_weights())
            step = [w.copy() for w in trained[-1]]
            if average:  # Keras' average: the first step's weights, then m x a + (1 - m) x w
                step = [0.5 * a + 0.5 * w for a, w in zip(average[-1], step, strict=True)]
            average.append(step)

        def on_epoch_end(self, epoch, logs=None):
            at_end[epoch] = (len(trained), self.model.get_weights())

    fit(model, [Ticks(clock), *callbacks, Probe()], training)
    assert [steps for steps, _ in at_end.values()] == [4, 8, 10]
    for steps, weights in at_end.values():
        np.testing.assert_allclose(np.concatenate([w.ravel() for w in weights]),
                                   np.concatenate([a.ravel() for a in average[steps - 1]]),
                                   rtol=1e-6)  # fmt: skip
        assert not np.allclose(weights[0], trained[steps - 1][0])
    for epoch in (1, 2):  # trained on from the last step's trained weights (swapped back by
        # Keras' add-and-subtract, exact to float32 rounding)
        np.testing.assert_allclose(at_start[epoch][0], trained[4 * epoch - 1][0], rtol=1e-6)


def test_the_decay_it_sets_reaches_the_traced_training_step():
    """After the first epoch the decay is made to end at step 1 (learning rate 0 from then on,
    final fraction 0): the weights must stop changing, which they would not if the traced step
    had kept the decay it was built with."""
    training = TrainingConfig(
        **{**vars(TRAINING), "budget_minutes": 60.0, "final_learning_rate_fraction": 0.0}
    )
    training = TrainingConfig(**{**vars(training), "epochs": 2})
    model, clock = tiny_model(training), Clock()
    budget = Budget(training, clock=clock)
    kept = {}

    class EndDecay(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.model.optimizer._learning_rate.decay_steps.assign(1.0)
                kept["weights"] = [w.copy() for w in self.model.get_weights()]

    model.fit(
        X, 5 * Y, batch_size=2, epochs=2, steps_per_epoch=4, callbacks=[Ticks(clock), budget,
        EndDecay()], verbose=0,
    )  # fmt: skip
    assert int(model.optimizer.iterations) == 8
    assert abs(float(kept["weights"][1][0])) > 0.1  # epoch 1 trained its bias away from 0
    for before, after in zip(kept["weights"], model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


def test_no_budget_no_callback_and_no_budget_across_workers(tmp_path, monkeypatch):
    plain = TrainingConfig(epochs=2, steps_per_epoch=4)
    for training in (plain, None):
        callbacks = run_callbacks(tmp_path, monitor="loss", patience=0, training=training)
        assert not any(isinstance(c, Budget) for c in callbacks)
    with pytest.raises(ValueError, match="budget_minutes is not set"):
        Budget(plain)
    cluster = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    with pytest.raises(EmdlError, match="not supported with several workers"):
        run_callbacks(tmp_path, monitor="loss", patience=0, training=TRAINING)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "training.budget_minutes: expected a positive number of minutes (null: train for "
         "the epochs given), got 0"),
        ("-5", "got -5"),
        ('"60"', 'training.budget_minutes: expected a finite number or null, got "60"'),
    ],
)  # fmt: skip
def test_a_bad_budget_is_one_line_naming_the_file(tmp_path, value, problem):
    path = tmp_path / "run.json"
    data = '"data": {"labels": ["a.xml"], "images": "."}'
    path.write_text(f'{{{data}, "training": {{"budget_minutes": {value}}}}}')
    with pytest.raises(InputError) as error:
        load_config(path)
    assert str(error.value).startswith(str(path)) and problem in str(error.value)
    assert "\n" not in str(error.value)
    path.write_text(f'{{{data}, "training": {{"budget_minutes": 1.5}}}}')
    assert load_config(path).training.budget_minutes == 1.5


@pytest.mark.slow
def test_a_real_run_for_a_budget_ends_complete(labeled_folder, tmp_path):
    """A tiny U-Net run of 0.6 s: its first (traced) batch spends the budget; the run still
    validates that epoch, keeps its best weights and saves model.keras (the decay a plain
    number again)."""
    from emdl.train.run import load_run, train_run
    from tests.conftest import box_image, box_xml, tiny_config

    folder = labeled_folder(
        {name: (box_image(64), box_xml(name, 64)) for name in ("a.png", "b.png")}
    )
    config = tiny_config(*folder, epochs=50, budget_minutes=0.01)
    train_run(config, tmp_path / "run", verbose=0)
    rows = (tmp_path / "run" / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 2  # the header and the one epoch the first batch ended
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["training"]["budget_minutes"] == 0.01
    load_run(tmp_path / "run")
    import emdl

    assert emdl.load_model(tmp_path / "run" / "model.keras") is not None
