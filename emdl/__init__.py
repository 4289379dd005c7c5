"""emdl: deep learning for electron micrographs of radiation damage.

``emdl.load_run(run_dir)`` gives a trained run to predict, measure and evaluate with
(:mod:`emdl.api`).
"""

__version__ = "0.1.0"


def load_run(run_dir):
    """:func:`emdl.api.load_run` (imported on first use: it loads TensorFlow)."""
    from emdl.api import load_run as load

    return load(run_dir)
