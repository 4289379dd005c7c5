"""emdl from Python: a trained run as one object.

    import emdl

    run = emdl.load_run("runs/unet_bubbles")
    found = run.predict(image)  # Instances of any image (any size, any dtype), tiled
    rows = run.measure(image, pixel_size_nm=0.5)  # one defects.csv row per defect
    scores = run.evaluate(["labels.xml"], "images/")

The thresholds are the run's (its ``calibration.json``, else its kind's defaults) unless given.
Several runs of one kind and classes predict together as one (their outputs combined tile by
tile, :mod:`emdl.predict.ensemble`), with the first run's settings and thresholds:

    ensemble = emdl.api.load_ensemble(["runs/a", "runs/b"])
    agreed = ensemble.uncertainty(image)  # .instances, and the fraction of the runs finding each
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from emdl.analysis.statistics import instance_defects
from emdl.commands.evaluate import evaluate_run
from emdl.commands.predict import load_predictor, load_predictors
from emdl.io.image import unit_gray
from emdl.predict.ensemble import Ensemble, member_agreement
from emdl.predict.instances import Instances
from emdl.predict.uncertainty import Agreement, view_agreement
from emdl.train.calibration import postprocessing
from emdl.train.config import RunConfig


@dataclass
class Run:
    """A finished run: its directory, config (``config.model_kind`` its kind) and model (an
    :class:`~emdl.predict.ensemble.Ensemble` for :func:`load_ensemble`, with the first run's
    directory and config)."""

    run_dir: Path
    config: RunConfig
    model: keras.Model

    @property
    def classes(self) -> list[str]:
        """The run's class names; class ``i`` of its instances is ``classes[i]``."""
        return list(self.config.classes) or ["defect"]

    def thresholds(self) -> tuple[float, float]:
        """The default ``(threshold, min_area)``: the run's calibration, else its kind's
        default threshold and 10 square pixels."""
        return postprocessing(self.run_dir, self.config)

    def predict(
        self,
        image: np.ndarray,
        *,
        threshold: float | None = None,
        min_area: float | None = None,
        tta: bool = False,
    ) -> Instances:
        """The defects of ``image`` (``(H, W)`` or ``(H, W, 3|4)``, any dtype and size; scaled
        to [0, 1] as files are), predicted in tiles as ``emdl predict`` does."""
        return self._finder(threshold, min_area, tta)(unit_gray(image), self.model)

    def uncertainty(
        self,
        image: np.ndarray,
        *,
        threshold: float | None = None,
        min_area: float | None = None,
        tta: bool = False,
    ) -> Agreement:
        """:meth:`predict` with how sure the run is of each defect (``emdl predict
        --uncertainty``): the agreement of the image's eight flips and turns
        (:func:`emdl.predict.uncertainty.view_agreement`), or for an ensemble the fraction of
        its runs finding each defect (:func:`emdl.predict.ensemble.member_agreement`)."""
        find, image = self._finder(threshold, min_area, tta), unit_gray(image)
        if isinstance(self.model, Ensemble):
            own = [lambda x, member=member: find(x, member) for member in self.model.members]
            return member_agreement(lambda x: find(x, self.model), own, image)
        return view_agreement(lambda x: find(x, self.model), image)

    def _finder(self, threshold: float | None, min_area: float | None, tta: bool):
        """``find(image, model) -> Instances`` with these settings (None: the run's)."""
        default_t, default_area = self.thresholds()
        config = self.config.with_model(tta=True) if tta else self.config
        settings = {
            "threshold": default_t if threshold is None else threshold,
            "min_area": default_area if min_area is None else min_area,
        }

        def find(image: np.ndarray, model) -> Instances:
            return config.model_kind.instances(model, image, config, **settings)

        return find

    def measure(
        self, image: np.ndarray, *, pixel_size_nm: float | None = None, name: str = "image", **kw
    ) -> list[dict]:
        """One row per defect of ``image`` with the columns of ``defects.csv`` (pixels, and nm
        with ``pixel_size_nm``); ``kw`` as :meth:`predict`."""
        defects = instance_defects(self.predict(image, **kw), self.classes)
        return [defect.row(name, pixel_size_nm) for defect in defects]

    def evaluate(
        self,
        labels: Sequence[str | os.PathLike],
        images_dir: str | os.PathLike,
        *,
        missing: str = "error",
        tta: bool = False,
    ) -> dict:
        """The run's scores on labeled images (as ``emdl evaluate``; not for an ensemble)."""
        if isinstance(self.model, Ensemble):
            raise ValueError("an ensemble cannot be evaluated as one; evaluate its runs")
        return evaluate_run(self.run_dir, labels, images_dir, missing=missing, tta=tta)[1]


def load_run(run_dir: str | os.PathLike) -> Run:
    """The finished run in ``run_dir``; an InputError naming it when it is not one, or when it
    is unfinished (no ``metrics.json``: the message gives the command that resumes it)."""
    config, model = load_predictor(run_dir)
    return Run(Path(run_dir), config, model)


def load_ensemble(run_dirs: Sequence[str | os.PathLike]) -> Run:
    """The finished runs in ``run_dirs`` as one :class:`Run` (``emdl predict RUN1 RUN2 ...``):
    its model an :class:`~emdl.predict.ensemble.Ensemble`, its directory and config the first
    run's; an InputError naming a run that is not usable or not of the first's kind, classes
    and output (:func:`emdl.commands.predict.load_predictors`). One run gives :func:`load_run`'s."""
    if not run_dirs:
        raise ValueError("an ensemble needs at least one run directory")
    config, model = load_predictors(list(run_dirs))
    return Run(Path(run_dirs[0]), config, model)
