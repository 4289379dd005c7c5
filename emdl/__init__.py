"""emdl: deep learning for electron micrographs of radiation damage.

``emdl.load_run(run_dir)`` gives a trained run to predict, measure and evaluate with
(:mod:`emdl.api`); ``emdl.load_model(path)`` loads a run's ``model.keras``. Importing ``emdl``
itself stays free of TensorFlow, so that the command line starts at once.

Importing ``emdl`` sets ``TF_ENABLE_ONEDNN_OPTS=1`` unless it is set already: TensorFlow turns
its oneDNN kernels on by itself only on CPUs with AVX-512's neural-network instructions, and
without them a training step took 2.1 (Mask R-CNN) to 3.0 (the detector) times as long on a
2-core AMD EPYC with AVX2 (``benchmarks/onednn.py``; README, "oneDNN's kernels"). TensorFlow reads
the variable once, when it loads: imported before ``emdl``, it keeps its own choice.
"""

import os

__version__ = "0.1.0"

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def load_run(run_dir):
    """:func:`emdl.api.load_run` (imported on first use: it loads TensorFlow)."""
    from emdl.api import load_run as load

    return load(run_dir)


def load_model(path):
    """The Keras model saved whole in ``path`` (a run's ``model.keras``), with its weights; a
    U-Net comes back compiled as trained, the detector and Mask R-CNN uncompiled (their
    ``compile`` takes emdl's own arguments, which Keras does not store): enough to predict.

    Keras finds emdl's classes (models, losses, metrics) only once their modules are imported;
    this imports them (and TensorFlow) first, then calls ``keras.saving.load_model``."""
    import keras

    from emdl.train.kinds import KINDS, model_kind

    for name in KINDS:  # each kind's module imports the models, losses and metrics it compiles
        model_kind(name)
    return keras.saving.load_model(path)
