"""The job behind ``emdl rank``: which unlabeled images to label next.

Each image is predicted in its eight flips and quarter turns and gets the uncertainty of
:mod:`emdl.predict.uncertainty` (how much the views disagree about its defects). Images are then
picked greedily: each pick is the image of highest priority, its uncertainty minus ``diversity``
times its largest similarity to an image already picked, so that near-copies of a picked image
wait for their turn. The similarity of two images is the overlap of their intensity histograms
(:func:`intensity_features`, :func:`similarity`): 1 for images with the same histogram, 0 for
images that share no intensity.

``out`` (CSV) gets one row per image in that order (:data:`COLUMNS`); ``cvat`` (optional) the
predictions of the first ``top`` images as CVAT for images 1.1 XML, to upload as
pre-annotations; ``maps`` (optional, a folder) an uncertainty map per image
(:func:`emdl.analysis.figures.uncertainty_pixels`: each defect green to red by its
uncertainty), named ``NNNN_<image file>.png`` by the image's place in the input. None of these
files may exist already.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from emdl.analysis.figures import write_uncertainty_map
from emdl.annotations import ImageAnnotation
from emdl.api import Run, load_run
from emdl.commands.predict import image_paths
from emdl.errors import InputError
from emdl.export.cvat_predictions import instance_shapes, write_predictions
from emdl.io.atomic import open_atomic
from emdl.io.image import read_micrograph
from emdl.io.outputs import check_output_folder
from emdl.predict.uncertainty import view_agreement

DIVERSITY = 0.5  # weight of the similarity to the images already picked
FEATURE_BINS = 32
COLUMNS = (
    "rank",
    "image",
    "uncertainty",
    "objects",
    "mean_object_uncertainty",
    "unexplained",
    "similarity",
    "priority",
    "map",
)
"""``rank`` 1-based; ``uncertainty`` the image's (in [0, 1]); ``objects`` the defects predicted;
``mean_object_uncertainty`` their mean (empty without defects); ``unexplained`` the views'
defects matching none, per view; ``similarity`` the largest similarity to an image ranked
before (0 for the first); ``priority`` = uncertainty - diversity x similarity when picked;
``map`` the uncertainty map's file name in ``maps`` (empty without)."""


def intensity_features(image: np.ndarray, bins: int = FEATURE_BINS) -> np.ndarray:
    """float64 ``(bins,)`` histogram of ``image`` (float in [0, 1]) over [0, 1], summing to 1."""
    counts, _ = np.histogram(np.clip(image, 0, 1), bins=bins, range=(0.0, 1.0))
    return counts / max(counts.sum(), 1)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection of two :func:`intensity_features`: in [0, 1], 1 when equal."""
    return float(np.minimum(a, b).sum())


def diverse_order(
    uncertainty: Sequence[float], features: Sequence[np.ndarray], diversity: float = DIVERSITY
) -> list[tuple[int, float, float]]:
    """Greedy order of images by priority: ``(index, similarity, priority)`` per pick, where
    similarity is the largest to the images picked before (0 for the first) and priority =
    ``uncertainty[index] - diversity * similarity`` (ties: the earlier index first)."""
    remaining = list(range(len(uncertainty)))
    closest = np.zeros(len(uncertainty))
    order = []
    while remaining:
        priority = [uncertainty[i] - diversity * closest[i] for i in remaining]
        pick = remaining.pop(int(np.argmax(priority)))
        order.append((pick, float(closest[pick]), float(max(priority))))
        for i in remaining:
            closest[i] = max(closest[i], similarity(features[i], features[pick]))
    return order


def _refuse_existing(path: str | os.PathLike | None) -> None:
    if path is not None and Path(path).exists():
        raise InputError(path, "already exists; give a new file name")


def rank_run(
    run: Run,
    paths: Sequence[Path],
    out: str | os.PathLike,
    *,
    top: int | None = None,
    cvat: str | os.PathLike | None = None,
    diversity: float = DIVERSITY,
    maps: str | os.PathLike | None = None,
    progress: TextIO | None = None,
) -> list[dict]:
    """Rank the images at ``paths`` with ``run`` (anything with ``predict(image) -> Instances``
    and ``classes``) and write ``out``, ``cvat`` and ``maps`` (see the module); returns the CSV
    rows."""
    map_names = [f"{i:04d}_{path.name}.png" for i, path in enumerate(paths, start=1)]
    if maps is not None:
        check_output_folder(maps, [Path(maps) / name for name in map_names], inputs=paths)
        Path(maps).mkdir(parents=True, exist_ok=True)
    names: set[str] = set()
    rows, features, shapes = [], [], []
    for done, path in enumerate(paths, start=1):
        if progress is not None:
            progress.write(f"[{done}/{len(paths)}] {path.name}\n")
        image = read_micrograph(path).image
        found = view_agreement(run.predict, image)
        name = path.name if path.name not in names else str(path)
        names.add(name)
        uncertain = found.object_uncertainty
        if maps is not None:
            write_uncertainty_map(
                Path(maps) / map_names[done - 1], image, found.instances, uncertain
            )
        rows.append(
            {
                "image": name,
                "uncertainty": found.image_uncertainty,
                "objects": len(uncertain),
                "mean_object_uncertainty": float(uncertain.mean()) if len(uncertain) else "",
                "unexplained": found.unexplained,
                "map": map_names[done - 1] if maps is not None else "",
            }
        )
        features.append(intensity_features(image))
        height, width = image.shape
        shapes.append(
            ImageAnnotation(name, width, height, instance_shapes(found.instances, run.classes))
        )
    order = diverse_order([r["uncertainty"] for r in rows], features, diversity)
    ranked = [
        {**rows[i], "rank": k, "similarity": sim, "priority": priority}
        for k, (i, sim, priority) in enumerate(order, start=1)
    ]
    with open_atomic(out, "w", newline="") as file:
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        writer.writerows(ranked)
    if cvat is not None:
        chosen = [shapes[i] for i, _, _ in order[: len(order) if top is None else top]]
        write_predictions(chosen, run.classes, cvat)
    return ranked


def rank_images(
    run_dir: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    top: int | None = None,
    cvat: str | os.PathLike | None = None,
    diversity: float = DIVERSITY,
    maps: str | os.PathLike | None = None,
    progress: TextIO | None = None,
) -> list[dict]:
    """:func:`rank_run` with the finished run in ``run_dir`` on the images of ``inputs`` (files
    and folders, as ``emdl predict``). Bad settings, paths, an existing ``out`` or ``cvat`` and a
    bad run are refused before anything is predicted (existing maps too)."""
    if top is not None and top < 1:
        raise ValueError(f"--top must be at least 1, got {top}")
    if not diversity >= 0:
        raise ValueError(f"the diversity weight must be >= 0, got {diversity}")
    _refuse_existing(out)
    _refuse_existing(cvat)
    paths = image_paths(inputs)
    run = load_run(run_dir)
    return rank_run(
        run, paths, out, top=top, cvat=cvat, diversity=diversity, maps=maps, progress=progress
    )
