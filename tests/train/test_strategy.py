"""emdl.train.strategy: the dtype policy that training.mixed_precision picks."""

from __future__ import annotations

import keras
import pytest

from emdl.train.config import TrainingConfig
from emdl.train.strategy import choose_strategy


@pytest.mark.parametrize(
    "setting, policy", [("auto", "float32"), (True, "mixed_float16"), (False, "float32")]
)
def test_mixed_precision_on_this_cpu(setting, policy):
    try:
        strategy = choose_strategy(setting)
        assert keras.mixed_precision.global_policy().name == policy
        assert strategy.num_replicas_in_sync == 1
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("value", ["on", 1, None])
def test_other_mixed_precision_settings_are_refused(value):
    with pytest.raises(
        ValueError, match='training.mixed_precision: expected true, false or "auto"'
    ):
        TrainingConfig(mixed_precision=value)
