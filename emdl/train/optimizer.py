"""The optimizer every run trains with."""

from __future__ import annotations

import keras

from emdl.train.config import TrainingConfig


def adamw(training: TrainingConfig) -> keras.optimizers.AdamW:
    """AdamW with a cosine decay over the whole run and, when ``ema_momentum`` is set, a moving
    average of the weights."""
    schedule = keras.optimizers.schedules.CosineDecay(
        training.learning_rate,
        decay_steps=training.epochs * training.steps_per_epoch,
        alpha=training.final_learning_rate_fraction,
    )
    ema = training.ema_momentum > 0
    return keras.optimizers.AdamW(
        schedule,
        weight_decay=training.weight_decay,
        use_ema=ema,
        ema_momentum=training.ema_momentum if ema else 0.99,
        # The averaged weights replace the trained ones every epoch, so validation, the best
        # checkpoint and the rest of training all use them.
        ema_overwrite_frequency=training.steps_per_epoch if ema else None,
    )
