"""emdl.train.optimizer: the learning rate of a run, step by step: the linear warm-up of
``training.warmup_steps``, then the cosine decay over the rest of the run; and the optimizer
``training.optimizer`` names."""

from __future__ import annotations

import math

import pytest

from emdl.errors import InputError
from emdl.train.config import TrainingConfig, load_config
from emdl.train.optimizer import build_optimizer, decay_steps, learning_rate_schedule

# 2 epochs of 5 steps, 4 of them warm-up: the decay lasts the other 6 steps.
WARM = TrainingConfig(
    epochs=2, steps_per_epoch=5, learning_rate=1e-3, final_learning_rate_fraction=0.1,
    warmup_steps=4,
)  # fmt: skip


def cosine(done: float) -> float:
    """The learning rate after ``done`` of the decay (0 to 1), of WARM."""
    return 1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))


@pytest.mark.parametrize(
    ("step", "rate"),
    [
        (0, 2e-4),  # learning_rate x (s + 1) / (W + 1): the first step already learns
        (1, 4e-4),
        (3, 8e-4),
        (4, 1e-3),  # the peak, where the decay starts
        (5, cosine(1 / 6)),
        (7, 5.5e-4),  # half-way: (0.1 + 0.9 x 0.5) x 1e-3
        (10, 1e-4),  # the last step, and the floor after it
        (50, 1e-4),
    ],
)
def test_warmup_then_cosine_decay(step, rate):
    assert float(learning_rate_schedule(WARM)(step)) == pytest.approx(rate, rel=1e-6)
    assert decay_steps(WARM, 10) == 6


def test_no_warmup_is_the_cosine_over_the_whole_run():
    cold = TrainingConfig(**{**vars(WARM), "warmup_steps": 0})
    schedule = learning_rate_schedule(cold)
    assert [float(schedule(step)) for step in (0, 5, 10)] == pytest.approx([1e-3, 5.5e-4, 1e-4])
    # The optimizer's rate at its step 0, before any training.
    assert float(build_optimizer(WARM).learning_rate) == pytest.approx(2e-4)


def test_too_long_a_warmup_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(
        '{"data": {"labels": ["a.xml"], "images": "."}, '
        '"training": {"epochs": 2, "steps_per_epoch": 5, "warmup_steps": 10}}'
    )
    with pytest.raises(InputError) as error:
        load_config(path)
    assert str(error.value) == (
        f"{path}: training.warmup_steps: expected 0 to 9 (fewer than the run's epochs x "
        "steps_per_epoch = 10 steps), got 10"
    )
    with pytest.raises(ValueError, match="got -1"):
        TrainingConfig(warmup_steps=-1)


def test_sgd_is_nesterov_momentum_with_the_same_schedule_and_decay():
    sgd = build_optimizer(TrainingConfig(**{**vars(WARM), "optimizer": "sgd"}))
    assert type(sgd).__name__ == "SGD"
    assert (sgd.momentum, sgd.nesterov, sgd.weight_decay) == (0.937, True, 1e-4)
    assert float(sgd.learning_rate) == pytest.approx(2e-4)
    assert type(build_optimizer(WARM)).__name__ == "AdamW"


def test_an_unknown_optimizer_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(
        '{"data": {"labels": ["a.xml"], "images": "."}, "training": {"optimizer": "adam"}}'
    )
    with pytest.raises(InputError) as error:
        load_config(path)
    assert str(error.value) == (
        f'{path}: training.optimizer: expected one of "adamw", "sgd", got "adam"'
    )
