"""emdl.train.strategy: the dtype policy that training.mixed_precision picks, and the CPU rule
for XLA (which depends on whether TensorFlow runs oneDNN's kernels)."""

from __future__ import annotations

import keras
import pytest

from emdl.train.config import TrainingConfig
from emdl.train.strategy import choose_strategy, onednn_enabled
from emdl.train.strategy import xla_preferred as real_xla_preferred  # before conftest's patch


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


@pytest.mark.parametrize(
    ("flags", "preferred"),
    [
        ("flags\t\t: fpu sse2 avx2 fma\n", True),
        ("flags\t\t: fpu sse2 avx2 fma avx512f avx512bw\n", False),
        ("flags\t\t: fpu avx512_bf16\n", True),  # not AVX-512 Foundation
        ("model name\t: no flags line\n", False),
    ],
)
def test_xla_is_preferred_on_a_cpu_without_avx512(tmp_path, flags, preferred):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\n" + flags)
    assert real_xla_preferred(str(cpuinfo), onednn=False) is preferred
    # With oneDNN's kernels the plain step is about as fast: never XLA.
    assert real_xla_preferred(str(cpuinfo), onednn=True) is False


def test_an_unreadable_cpuinfo_prefers_no_xla(tmp_path):
    assert real_xla_preferred(str(tmp_path / "missing"), onednn=False) is False


def test_onednn_is_asked_of_tensorflow(tmp_path):
    from tensorflow.python.util import _pywrap_util_port

    # The suite imports emdl first, which turns oneDNN on unless $TF_ENABLE_ONEDNN_OPTS says no.
    onednn = bool(_pywrap_util_port.IsMklEnabled())
    assert onednn_enabled() is onednn
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    assert real_xla_preferred(str(cpuinfo)) is (not onednn)
