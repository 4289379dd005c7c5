"""The tf.distribute strategy that fits the hardware."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import tensorflow as tf


def workers_in_tf_config() -> int:
    """How many workers (chief included) ``$TF_CONFIG`` names; 0 without one."""
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose ``reduce`` takes what Keras 3's ``fit`` hands it
    (keras-team/keras#20585): a nest of per-replica values (the first ``(x, y)`` batch, reduced
    once for its shapes) and scalars with ``axis=0`` (the step's loss and metrics)."""

    def reduce(self, reduce_op, value, axis=None):
        def reduce_one(one):
            scalar = self.experimental_local_results(one)[0].shape.rank == 0
            return super(_MultiWorkerMirroredStrategy, self).reduce(
                reduce_op, one, axis=None if scalar else axis
            )

        return tf.nest.map_structure(reduce_one, value)


def choose_strategy(mixed_precision: bool | str = "auto") -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy when ``$TF_CONFIG`` names several workers, MirroredStrategy over
    all visible GPUs when there are any (``CUDA_VISIBLE_DEVICES`` chooses which), else the default
    strategy (this CPU). Sets Keras' global dtype policy: ``mixed_float16`` when
    ``mixed_precision`` is True, or "auto" and there are GPUs; ``float32`` otherwise. Call it
    before building any model."""
    if workers_in_tf_config() > 1:
        # Created before anything lists devices: that starts TensorFlow's context, after which
        # collective ops can no longer be configured.
        strategy = _MultiWorkerMirroredStrategy()
        gpus = tf.config.list_logical_devices("GPU")
    else:
        gpus = tf.config.list_logical_devices("GPU")
        strategy = (
            tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
            if gpus
            else tf.distribute.get_strategy()
        )
    mixed = bool(gpus) if mixed_precision == "auto" else bool(mixed_precision)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    return strategy


def onednn_enabled() -> bool:
    """Whether this process's TensorFlow runs oneDNN's kernels (``TF_ENABLE_ONEDNN_OPTS``, read
    once when TensorFlow loaded; ``import emdl`` sets it to 1 unless it was set)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def xla_preferred(cpuinfo: str = "/proc/cpuinfo", onednn: bool | None = None) -> bool:
    """Whether the detector's training step runs faster compiled by XLA here: on a CPU without
    AVX-512 (no GPU) whose TensorFlow runs its own (Eigen) kernels, not oneDNN's. Measured by
    ``benchmarks/detector_step.py`` on 2-core machines: with Eigen, XLA took 0.54 of the plain
    step's time on an AMD EPYC with AVX2 (1643 against 3061 ms); with oneDNN (on by itself
    with AVX-512, and set by ``import emdl`` elsewhere), 1.11 of it on a CPU with AVX-512 (729
    against 655 ms) and 0.94 on an AVX2 EPYC (1020 against 1089 ms), too little for an XLA hour
    that scored worse. ``onednn``: whether oneDNN is on (None: :func:`onednn_enabled`).
    ``cpuinfo`` is read for the CPU's flags; unreadable, False."""
    if tf.config.list_physical_devices("GPU"):
        return False
    if onednn is None:
        onednn = onednn_enabled()
    if onednn:
        return False
    try:
        flags = next(
            line for line in Path(cpuinfo).read_text().splitlines() if line.startswith("flags")
        )
    except (OSError, StopIteration):
        return False
    return "avx512f" not in flags.split()


def is_chief() -> bool:
    """Whether this process writes the run directory: the chief, or worker 0 without a chief."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = config.get("task", {})
    if not task:
        return True
    has_chief = bool(config.get("cluster", {}).get("chief"))
    return task.get("type") == "chief" or (not has_chief and task.get("index", 0) == 0)
