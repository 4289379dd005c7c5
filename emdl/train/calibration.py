"""Post-processing calibrated on validation images: the threshold and the smallest defect area
that turn a run's outputs into defects, and the kind's own settings of how objects part (the
U-Net's split depth or peak depth, :meth:`~emdl.train.kinds.base.ModelKind.calibration_settings`),
chosen to make the counts and sizes right.

Each setting of :func:`candidates` with each of the kind's settings is scored on the validation
images by the pooled relative count error plus the pooled relative error of the mean equivalent
diameter (defects not cut by the image edge, :func:`emdl.analysis.statistics.compare_sets`); the
lowest wins (ties: the earlier candidate, i.e. the lower threshold and area, the config's own
kind setting). The model runs once per image: its batch outputs are remembered while the
settings are tried. The kind's chosen setting is stored as ``"model"`` (changes to the run's
model section), which :func:`calibrated_config` applies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emdl.analysis.statistics import compare_sets, instance_defects
from emdl.analysis.truth import truth_defects
from emdl.data import LabeledImage
from emdl.io.image import read_image
from emdl.train.config import RunConfig

CALIBRATION = "calibration.json"
MIN_AREA = 10.0  # square pixels: the smallest defect kept when a run has no calibration
AREAS = (0.0, MIN_AREA, 25.0, 50.0)  # square pixels


class _Remembered:
    """A model whose ``predict_on_batch`` answers a batch it has seen from memory."""

    def __init__(self, model) -> None:
        self.model, self.memory = model, {}

    def predict_on_batch(self, tiles: np.ndarray):
        key = hashlib.sha1(np.ascontiguousarray(tiles).tobytes()).hexdigest()
        if key not in self.memory:
            self.memory[key] = self.model.predict_on_batch(tiles)
        return self.memory[key]


def candidates(default_threshold: float) -> list[tuple[float, float]]:
    """``(threshold, min_area)`` pairs tried: thresholds 0.3 to 0.8 by 0.1 (and the kind's
    default), areas :data:`AREAS`."""
    thresholds = sorted({round(t, 2) for t in np.arange(0.3, 0.81, 0.1)} | {default_threshold})
    return [(t, a) for t in thresholds for a in AREAS]


def objective(comparison: dict) -> float:
    """Relative count error plus relative mean-diameter error of a pooled comparison (inf
    when nothing was found or nothing is true)."""
    true, diameter = comparison["count_truth"], comparison["mean_diameter_truth"]
    if not true or comparison["mean_diameter_error"] == "" or not diameter:
        return float("inf")
    return abs(comparison["count_error"]) / true + abs(comparison["mean_diameter_error"]) / diameter


def calibrate(
    model,
    records: Sequence[LabeledImage],
    classes: Sequence[str],
    config: RunConfig,
    metrics: dict | None = None,
) -> dict:
    """The best ``threshold`` and ``min_area`` of ``model`` on ``records``, with the errors
    they give (``count_error``, ``mean_diameter_error``, both relative, signed) and those of the
    kind's defaults (``default``; ``metrics``, the run's scores, may set the default threshold),
    on ``images`` validation images; ``calibrated`` False when no setting found anything to
    measure (the defaults are kept)."""
    kind = config.model_kind
    remembered = _Remembered(model)
    default = kind.default_threshold(config, metrics)
    changes = kind.calibration_settings(config)
    grid = [(t, a, index) for index in range(len(changes)) for t, a in candidates(default)]
    images = [read_image(record.path) for record in records]
    found_by_setting: dict[tuple, list] = {setting: [] for setting in grid}
    truth: list = []
    for record, image in zip(records, images, strict=True):
        for threshold, min_area, index in grid:
            found = kind.instances(
                remembered,
                image,
                config.with_model(**changes[index]),
                threshold=threshold,
                min_area=min_area,
            )
            found_by_setting[threshold, min_area, index] += instance_defects(found, list(classes))
        as_boxes = found.labels is None
        truth += truth_defects(record.annotation, as_boxes=as_boxes)
        remembered.memory.clear()  # one image's tiles at a time
    scores = {setting: compare_sets(found, truth) for setting, found in found_by_setting.items()}
    best = min(grid, key=lambda setting: objective(scores[setting]))
    found_nothing = not np.isfinite(objective(scores[best]))
    if found_nothing:  # no setting gives a count and a size to compare: keep the defaults
        best = (default, MIN_AREA, 0)

    def errors(setting) -> dict:
        row = scores[setting]
        true, diameter = row["count_truth"], row["mean_diameter_truth"]
        return {
            "count_error": row["count_error"] / true if true else None,
            "mean_diameter_error": (
                row["mean_diameter_error"] / diameter
                if diameter and row["mean_diameter_error"] != ""
                else None
            ),
        }

    return {
        "threshold": float(best[0]),
        "min_area": float(best[1]),
        "model": changes[best[2]],
        **errors(best),
        "default": {
            "threshold": default,
            "min_area": MIN_AREA,
            "model": changes[0],
            **errors((default, MIN_AREA, 0)),
        },
        "images": len(records),
        "calibrated": not found_nothing,
    }


def write_calibration(run_dir: str | os.PathLike, calibration: dict) -> None:
    (Path(run_dir) / CALIBRATION).write_text(json.dumps(calibration, indent=2) + "\n")


def read_calibration(run_dir: str | os.PathLike) -> dict | None:
    """The run's calibration, or None when it has none (or it cannot be read)."""
    try:
        values = json.loads((Path(run_dir) / CALIBRATION).read_text())
        return {"threshold": float(values["threshold"]), "min_area": float(values["min_area"])} | {
            key: value for key, value in values.items() if key not in ("threshold", "min_area")
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


def postprocessing(run_dir: str | os.PathLike, config: RunConfig) -> tuple[float, float]:
    """The ``(threshold, min_area)`` a finished run predicts with unless told: its calibration,
    else its kind's default threshold (given its ``metrics.json``, which holds a detector's
    F1-best score) and :data:`MIN_AREA`."""
    calibration = read_calibration(run_dir)
    if calibration:
        return calibration["threshold"], calibration["min_area"]
    try:
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        metrics = None
    return config.model_kind.default_threshold(config, metrics), MIN_AREA


def calibrated_config(run_dir: str | os.PathLike, config: RunConfig) -> RunConfig:
    """``config`` with the model settings its run's calibration chose (the U-Net's split or
    peak depth); ``config`` itself when the run has no calibration or the calibration none."""
    calibration = read_calibration(run_dir)
    changes = (calibration or {}).get("model") or {}
    if not isinstance(changes, dict):
        return config
    known = {field.name for field in dataclasses.fields(config.model)}
    return config.with_model(**{key: value for key, value in changes.items() if key in known})


def calibration_line(calibration: dict | None) -> str:
    """One line on a run's calibration, for people."""
    if calibration is None:
        return "no calibration: the default post-processing"
    if not calibration.get("calibrated", True):
        return (
            f"not calibrated: no setting found defects to measure on the "
            f"{calibration.get('images')} validation images; the default post-processing"
        )
    count, diameter = calibration.get("count_error"), calibration.get("mean_diameter_error")
    figures = ""
    if count is not None and diameter is not None:
        figures = (
            f" (count error {100 * count:+.1f} %, mean diameter error {100 * diameter:+.1f} % "
            f"on {calibration.get('images')} validation images)"
        )
    model = "".join(
        f", {key.replace('_', ' ')} {'its rule' if value is None else f'{value:g}'}"
        for key, value in (calibration.get("model") or {}).items()
    )
    return (
        f"calibrated: threshold {calibration['threshold']:.2f}, smallest defect "
        f"{calibration['min_area']:.0f} px{model}{figures}"
    )
