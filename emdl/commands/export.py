"""The job behind ``emdl export``: a run's SavedModel in TF Serving's layout (and, through
:mod:`emdl.cvat.serverless`, as a CVAT serverless function).

``DIR/NAME/VERSION/`` holds the SavedModel (its signatures: :mod:`emdl.export.saved_model`) and
``assets.extra/emdl.json`` (kind, classes and the run's default post-processing, which TF
Serving ignores but a client needs to turn outputs into defects); ``DIR/models.config`` lists
every model under ``DIR``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from emdl.commands.predict import load_predictor
from emdl.errors import InputError
from emdl.export.serving_layout import check_name, parse_version, write_version

RUN_INFO = "emdl.json"  # in the version's assets.extra/
log = logging.getLogger(__name__)


@dataclass
class ExportReport:
    """What ``emdl export`` wrote: the version folder and the models.config beside it, and
    whether the run itself had to be finished first."""

    version_dir: Path
    config_file: Path
    finished_run: bool

    def summary(self) -> str:
        finished = "finished the run, then " if self.finished_run else ""
        return f"{finished}exported {self.version_dir} (listed in {self.config_file})"


def finish_run(run_dir: str | os.PathLike) -> bool:
    """Complete a run whose training ended before its later stages (evaluation, calibration,
    plots, ``saved_model/``); True when there was something to do. A run whose training did not
    end is refused with the command that resumes it."""
    from emdl.train.config import load_config
    from emdl.train.run import TRAINED, train_run

    run_dir = Path(run_dir)
    if (run_dir / "metrics.json").is_file():
        return False
    if not (run_dir / "config.json").is_file():
        raise InputError(run_dir, "not a run directory: no config.json")
    if not (run_dir / TRAINED).is_file():
        raise InputError(
            run_dir,
            "training has not ended; resume it with "
            f"emdl train {run_dir / 'config.json'} --out {run_dir}",
        )
    log.info(f"{run_dir}: finishing the run (evaluation, calibration, plots, saved_model/) ...")
    train_run(load_config(run_dir / "config.json"), run_dir, verbose=0)
    return True


def export_for_serving(
    run_dir: str | os.PathLike,
    serving_dir: str | os.PathLike,
    *,
    name: str | None = None,
    version: str | int | None = None,
) -> ExportReport:
    """Write the run's SavedModel as ``serving_dir/NAME/VERSION`` and rewrite
    ``serving_dir/models.config``. ``name`` defaults to the run directory's name, ``version``
    to one more than the highest under ``serving_dir/NAME``. A run whose training ended before
    its export is finished first (:func:`finish_run`)."""
    from emdl.train.calibration import postprocessing

    run_dir = Path(run_dir)
    name = check_name(name if name is not None else run_dir.resolve().name)
    number = None if version is None else parse_version(version)
    serving_dir = Path(serving_dir)
    if serving_dir.exists() and not serving_dir.is_dir():
        raise InputError(serving_dir, "is a file, not a serving folder")
    finished = finish_run(run_dir)
    config, model = load_predictor(run_dir)
    threshold, min_area = postprocessing(run_dir, config)
    info = {
        "kind": config.kind,
        "classes": list(config.classes),
        "threshold": threshold,
        "min_area": min_area,
        "run": str(run_dir.resolve()),
    }

    def write(path: Path) -> None:
        config.model_kind.export(model, path, config)
        (path / "assets.extra").mkdir()
        (path / "assets.extra" / RUN_INFO).write_text(json.dumps(info, indent=2) + "\n")

    log.info(f"exporting {serving_dir / name} ...")
    version_dir = write_version(write, serving_dir, name, number)
    return ExportReport(version_dir, serving_dir / "models.config", finished)
