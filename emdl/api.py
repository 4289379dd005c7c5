"""emdl from Python: a trained run as one object.

    import emdl

    run = emdl.load_run("runs/unet_bubbles")
    found = run.predict(image)  # Instances of any image (any size, any dtype), tiled
    rows = run.measure(image, pixel_size_nm=0.5)  # one defects.csv row per defect
    scores = run.evaluate(["labels.xml"], "images/")

The thresholds are the run's (its ``calibration.json``, else its kind's defaults) unless given.
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
from emdl.commands.predict import load_predictor
from emdl.io.image import unit_gray
from emdl.predict.instances import Instances
from emdl.train.calibration import postprocessing
from emdl.train.config import RunConfig


@dataclass
class Run:
    """A finished run: its directory, config (``config.model_kind`` its kind) and model."""

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
        default_t, default_area = self.thresholds()
        config = self.config.with_model(tta=True) if tta else self.config
        return config.model_kind.instances(
            self.model,
            unit_gray(image),
            config,
            threshold=default_t if threshold is None else threshold,
            min_area=default_area if min_area is None else min_area,
        )

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
        """The run's scores on labeled images (as ``emdl evaluate``)."""
        return evaluate_run(self.run_dir, labels, images_dir, missing=missing, tta=tta)[1]


def load_run(run_dir: str | os.PathLike) -> Run:
    """The finished run in ``run_dir``; an InputError naming it when it is not one, or when it
    is unfinished (no ``metrics.json``: the message gives the command that resumes it)."""
    config, model = load_predictor(run_dir)
    return Run(Path(run_dir), config, model)
