"""Defect statistics: per-defect properties, per-image summaries and a comparison with truth.

Coordinates are continuous pixel coordinates (pixel ``(r, c)`` covers ``[c, c + 1) x
[r, r + 1)``, its centre at ``(c + 0.5, r + 0.5)``), lengths in pixels and areas in square
pixels; a name ending in ``_nm`` / ``_nm2`` / ``_um2`` is in nanometres / square nanometres /
per square micrometre, given when the pixel size is known.

A mask's properties are those of :func:`skimage.measure.regionprops`: ``area`` its pixel count,
``equivalent_diameter`` the diameter of the disc of that area, ``major_axis`` / ``minor_axis``
the full axis lengths of the ellipse with the same second moments, ``eccentricity`` that
ellipse's. ``orientation`` is the angle of the major axis from the x axis (to the right) in
degrees, clockwise on the screen (y points down, as CVAT's ``rotation``), in ``(-90, 90]``.

A box (from a detector) has no outline, so its properties are the box's: ``area`` = width x
height, ``equivalent_diameter`` that of the same area, ``major_axis`` / ``minor_axis`` the
longer / shorter side, ``orientation`` 0 when the box is at least as wide as it is tall else 90,
and ``eccentricity`` ``sqrt(1 - (minor / major)**2)``, as for an ellipse with those axes. Box
sizes overstate a round object's area by ``4 / pi``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy.stats import ks_2samp
from skimage.measure import regionprops

from emdl.predict.instances import Instances

# The length columns that get an ``_nm`` twin when the pixel size is known.
_LENGTHS = ("centroid_x", "centroid_y", "equivalent_diameter", "major_axis", "minor_axis")


@dataclass(frozen=True)
class Defect:
    """One defect's properties in pixels (see the module for their definitions). ``id`` is its
    1-based number in its image, ``label`` its class name, ``score`` the model's confidence in
    [0, 1] (1 for truth)."""

    id: int
    label: str
    score: float
    centroid_x: float
    centroid_y: float
    area: float
    equivalent_diameter: float
    major_axis: float
    minor_axis: float
    orientation: float
    eccentricity: float
    touches_edge: bool

    def row(self, image: str, pixel_size_nm: float | None) -> dict:
        """A ``defects.csv`` row: ``image``, the fields, and the ``_nm`` / ``area_nm2`` columns
        (empty when ``pixel_size_nm`` is None)."""
        values = {"image": image, **asdict(self)}
        for name in _LENGTHS:
            values[f"{name}_nm"] = (
                "" if pixel_size_nm is None else getattr(self, name) * pixel_size_nm
            )
        values["area_nm2"] = "" if pixel_size_nm is None else self.area * pixel_size_nm**2
        return values


DEFECT_COLUMNS = (
    "image",
    *(f.name for f in fields(Defect)),
    *(f"{name}_nm" for name in _LENGTHS),
    "area_nm2",
)


def _orientation_degrees(skimage_orientation: float) -> float:
    # skimage gives the angle from the row axis, counter-clockwise in (row, col) coordinates; the
    # major axis then points along (x, y) = (sin t, cos t), at 90 - t degrees clockwise from x.
    angle = 90.0 - math.degrees(skimage_orientation)
    return angle - 180.0 if angle > 90.0 else angle


def mask_defects(
    labels: np.ndarray,
    names: Sequence[str],
    scores: np.ndarray | None = None,
    touches_edge: np.ndarray | None = None,
) -> list[Defect]:
    """Properties of each object in ``labels`` int ``(H, W)`` (0 background, ``1..N``), in
    order of label; ``names`` ``(N,)`` their class names, ``scores`` float ``(N,)`` (default 1),
    ``touches_edge`` bool ``(N,)`` (default: whether the object reaches the outermost pixels)."""
    defects = []
    for region in regionprops(np.asarray(labels)):
        i = region.label - 1
        if touches_edge is None:
            r0, c0, r1, c1 = region.bbox
            edge = r0 == 0 or c0 == 0 or r1 == labels.shape[0] or c1 == labels.shape[1]
        else:
            edge = touches_edge[i]
        row, col = region.centroid
        defects.append(
            Defect(
                id=int(region.label),
                label=names[i],
                score=1.0 if scores is None else float(scores[i]),
                centroid_x=float(col) + 0.5,
                centroid_y=float(row) + 0.5,
                area=float(region.area),
                equivalent_diameter=float(region.equivalent_diameter_area),
                major_axis=float(region.axis_major_length),
                minor_axis=float(region.axis_minor_length),
                orientation=_orientation_degrees(region.orientation),
                eccentricity=float(region.eccentricity),
                touches_edge=bool(edge),
            )
        )
    return defects


def box_defect(
    box: Sequence[float], label: str, *, id: int, score: float = 1.0, touches_edge: bool = False
) -> Defect:
    """The properties of a ``box`` ``(x0, y0, x1, y1)`` ("xyxy", pixels), as the module says."""
    x0, y0, x1, y1 = (float(v) for v in box)
    width, height = max(x1 - x0, 0.0), max(y1 - y0, 0.0)
    major, minor = max(width, height), min(width, height)
    return Defect(
        id=id,
        label=label,
        score=float(score),
        centroid_x=(x0 + x1) / 2,
        centroid_y=(y0 + y1) / 2,
        area=width * height,
        equivalent_diameter=math.sqrt(4 * width * height / math.pi),
        major_axis=major,
        minor_axis=minor,
        orientation=0.0 if width >= height else 90.0,
        eccentricity=math.sqrt(1 - (minor / major) ** 2) if major > 0 else 0.0,
        touches_edge=bool(touches_edge),
    )


def instance_defects(instances: Instances, classes: Sequence[str]) -> list[Defect]:
    """Properties of predicted ``instances``, class indices named by ``classes``, in the order of
    the instances (ids ``1..N``)."""
    names = [classes[c] for c in instances.classes]
    if instances.labels is not None:
        return mask_defects(instances.labels, names, instances.scores, instances.touches_edge)
    return [
        box_defect(box, name, id=i + 1, score=score, touches_edge=edge)
        for i, (box, name, score, edge) in enumerate(
            zip(instances.boxes, names, instances.scores, instances.touches_edge, strict=True)
        )
    ]


SUMMARY_COLUMNS = (
    "image",
    "width",
    "height",
    "pixel_size_nm",
    "count",
    "touching_edge",
    "density_per_um2",
    "areal_fraction",
    "mean_diameter",
    "median_diameter",
    "std_diameter",
    "mean_diameter_nm",
    "median_diameter_nm",
    "std_diameter_nm",
)


def _diameters(defects: Iterable[Defect]) -> np.ndarray:
    """Equivalent diameters of the defects not cut by the image edge (a cut one's is too
    small)."""
    return np.array([d.equivalent_diameter for d in defects if not d.touches_edge], np.float64)


def summarize(
    image: str,
    defects: Sequence[Defect],
    width: int,
    height: int,
    pixel_size_nm: float | None = None,
) -> dict:
    """One ``summary.csv`` row (keys :data:`SUMMARY_COLUMNS`) of an image ``width x height``
    pixels.

    ``count`` is every defect, those cut by the edge too (``touching_edge`` says how many);
    ``density_per_um2`` is ``count`` per square micrometre of image (empty without a pixel size);
    ``areal_fraction`` the summed defect area over the image area (overlapping boxes count
    twice). The diameter statistics (equivalent diameter, pixels and nm; the standard deviation
    with ``ddof=1``) leave out defects touching the edge, whose size is cut; they are empty when
    no defect is left (the standard deviation: fewer than two).
    """
    diameters = _diameters(defects)
    stats = {
        "mean_diameter": float(diameters.mean()) if len(diameters) else "",
        "median_diameter": float(np.median(diameters)) if len(diameters) else "",
        "std_diameter": float(diameters.std(ddof=1)) if len(diameters) > 1 else "",
    }
    row = {
        "image": image,
        "width": int(width),
        "height": int(height),
        "pixel_size_nm": "" if pixel_size_nm is None else float(pixel_size_nm),
        "count": len(defects),
        "touching_edge": sum(d.touches_edge for d in defects),
        "density_per_um2": "",
        "areal_fraction": sum(d.area for d in defects) / (width * height),
        **stats,
    }
    for name, value in stats.items():
        row[f"{name}_nm"] = "" if pixel_size_nm is None or value == "" else value * pixel_size_nm
    if pixel_size_nm is not None:
        image_um2 = width * height * (pixel_size_nm / 1000) ** 2
        row["density_per_um2"] = len(defects) / image_um2
    return row


COMPARISON_COLUMNS = (
    "image",
    "count_predicted",
    "count_truth",
    "count_error",
    "mean_diameter_predicted",
    "mean_diameter_truth",
    "mean_diameter_error",
    "ks_statistic",
)


def _mean(values: np.ndarray) -> float | str:
    return float(values.mean()) if len(values) else ""


def _difference(a: float | str, b: float | str) -> float | str:
    return "" if a == "" or b == "" else a - b


def compare_image(image: str, predicted: Sequence[Defect], truth: Sequence[Defect]) -> dict:
    """One ``comparison.csv`` row (keys :data:`COMPARISON_COLUMNS`): ``count_error`` is
    predicted minus true count (all defects); the diameter figures (pixels) are of the defects
    not touching the edge, the errors predicted minus true, and ``ks_statistic`` the two-sample
    Kolmogorov-Smirnov statistic of the two diameter samples (empty when either is empty)."""
    ours, theirs = _diameters(predicted), _diameters(truth)
    mean_ours, mean_theirs = _mean(ours), _mean(theirs)
    return {
        "image": image,
        "count_predicted": len(predicted),
        "count_truth": len(truth),
        "count_error": len(predicted) - len(truth),
        "mean_diameter_predicted": mean_ours,
        "mean_diameter_truth": mean_theirs,
        "mean_diameter_error": _difference(mean_ours, mean_theirs),
        "ks_statistic": (
            float(ks_2samp(ours, theirs).statistic) if len(ours) and len(theirs) else ""
        ),
    }


def compare_sets(predicted: Sequence[Defect], truth: Sequence[Defect]) -> dict:
    """The comparison of all images pooled: as :func:`compare_image` (image ``"all"``), plus
    ``ks_pvalue`` of the pooled diameter samples."""
    row = compare_image("all", predicted, truth)
    ours, theirs = _diameters(predicted), _diameters(truth)
    row["ks_pvalue"] = float(ks_2samp(ours, theirs).pvalue) if len(ours) and len(theirs) else ""
    return row
