"""emdl: deep learning for electron micrographs of radiation damage.

``emdl.load_run(run_dir)`` gives a trained run to predict, measure and evaluate with
(:mod:`emdl.api`); ``emdl.load_model(path)`` loads a run's ``model.keras``. Importing ``emdl``
itself stays free of TensorFlow, so that the command line starts at once.
"""

__version__ = "0.1.0"


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
