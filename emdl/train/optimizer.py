"""The optimizer a run trains with, and its learning-rate schedule."""

from __future__ import annotations

import keras

from emdl.train.config import TrainingConfig


def decay_steps(training: TrainingConfig, steps: int) -> int:
    """How many steps the cosine decay lasts in a run of ``steps`` optimizer steps in all: those
    after the warm-up, at least 1 (Keras' CosineDecay counts its ``decay_steps`` from the end of
    its warm-up)."""
    return max(steps - training.warmup_steps, 1)


def learning_rate_schedule(
    training: TrainingConfig,
) -> keras.optimizers.schedules.CosineDecay:
    """The learning rate at step ``s`` (0-based, the optimizer's ``iterations``): with ``W =
    warmup_steps`` above 0, ``learning_rate x (s + 1) / (W + 1)`` for ``s < W`` (a linear
    warm-up whose first step already learns), then a cosine from ``learning_rate`` at step ``W``
    down to ``final_learning_rate_fraction x learning_rate`` at the run's last step
    (``epochs x steps_per_epoch``; :mod:`emdl.train.budget` stretches it to the steps that fit in
    a budget), and that floor after it."""
    warmup = training.warmup_steps
    return keras.optimizers.schedules.CosineDecay(
        # Keras' warm-up goes linearly from this value at step 0 to warmup_target at step W.
        training.learning_rate / (warmup + 1) if warmup else training.learning_rate,
        decay_steps=decay_steps(training, training.epochs * training.steps_per_epoch),
        alpha=training.final_learning_rate_fraction,
        warmup_target=training.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def build_optimizer(training: TrainingConfig) -> keras.optimizers.Optimizer:
    """``training.optimizer`` with :func:`learning_rate_schedule` and decoupled weight decay
    (``weight_decay`` x the learning rate, each step): AdamW, or SGD with Nesterov momentum 0.937
    (Ultralytics' SGD). When ``ema_momentum`` is set, a moving average of the weights is kept
    beside them: training goes on with the trained weights, and
    :func:`emdl.train.callbacks.run_callbacks` swaps the average in for validation and the
    checkpoints (so it is what is evaluated, kept and exported)."""
    ema = training.ema_momentum > 0
    common = {
        "learning_rate": learning_rate_schedule(training),
        "weight_decay": training.weight_decay,
        "use_ema": ema,
        "ema_momentum": training.ema_momentum if ema else 0.99,
    }
    if training.optimizer == "sgd":
        return keras.optimizers.SGD(momentum=0.937, nesterov=True, **common)
    return keras.optimizers.AdamW(**common)
