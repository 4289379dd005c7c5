"""Defect statistics: per-defect properties, per-image summaries and a comparison with truth.

Coordinates are continuous pixel coordinates (pixel ``(r, c)`` covers ``[c, c + 1) x
[r, r + 1)``, its centre at ``(c + 0.5, r + 0.5)``), lengths in pixels and areas in square
pixels; a name ending in ``_nm`` / ``_nm2`` / ``_um2`` / ``_m3`` is in nanometres / square
nanometres / per square micrometre / per cubic metre, given when the pixel size (for ``_m3`` also
the foil thickness) is known.

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
from scipy.stats import chi2, ks_2samp
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
    "thickness_nm",
    "count",
    "touching_edge",
    "density_per_um2",
    "density_ci_low_per_um2",
    "density_ci_high_per_um2",
    "density_per_m3",
    "density_ci_low_per_m3",
    "density_ci_high_per_m3",
    "areal_fraction",
    "swelling",
    "mean_diameter",
    "mean_diameter_ci_low",
    "mean_diameter_ci_high",
    "median_diameter",
    "std_diameter",
    "mean_diameter_nm",
    "mean_diameter_ci_low_nm",
    "mean_diameter_ci_high_nm",
    "median_diameter_nm",
    "std_diameter_nm",
)

# The density columns, filled when the pixel size (and for m^-3 the thickness) is known.
_DENSITIES = tuple(
    f"density{part}_per_{unit}" for unit in ("um2", "m3") for part in ("", "_ci_low", "_ci_high")
)

# The confidence level of every interval in ``summary.csv``, and the bootstrap's settings: a fixed
# seed, so that the same defects always give the same interval.
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def _diameters(defects: Iterable[Defect]) -> np.ndarray:
    """Equivalent diameters of the defects not cut by the image edge (a cut one's is too
    small)."""
    return np.array([d.equivalent_diameter for d in defects if not d.touches_edge], np.float64)


def bootstrap_mean_interval(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of ``values`` (any unit; the interval is in
    the same): ``resamples`` samples of ``len(values)`` values drawn with replacement by
    ``numpy.random.default_rng(seed)``, and the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles of their means (NumPy's linear interpolation). The same
    values and seed give the same interval. Raises ValueError for no values."""
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("a bootstrap interval needs at least one value")
    rng = np.random.default_rng(seed)
    # Resamples are drawn in chunks of about a million values, so memory stays bounded.
    chunk = max(1, 1_000_000 // len(values))
    means = np.concatenate(
        [
            values[rng.integers(0, len(values), (min(chunk, resamples - i), len(values)))].mean(1)
            for i in range(0, resamples, chunk)
        ]
    )
    alpha = 1 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def poisson_interval(count: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact (Garwood) interval of the mean of a Poisson law from one observed ``count``:
    ``chi2.ppf(alpha / 2, 2 k) / 2`` to ``chi2.ppf(1 - alpha / 2, 2 (k + 1)) / 2`` with
    ``alpha = 1 - confidence`` (the lower end 0 for ``k = 0``), e.g. 4.795 to 18.39 for 10 at
    95 %. The ends are the means under which a count of at least / at most ``k`` has
    probability ``alpha / 2``."""
    if count < 0:
        raise ValueError(f"a count must be >= 0, got {count}")
    alpha = 1 - confidence
    low = float(chi2.ppf(alpha / 2, 2 * count)) / 2 if count > 0 else 0.0
    return low, float(chi2.ppf(1 - alpha / 2, 2 * (count + 1))) / 2


def sphere_volume_nm3(defects: Iterable[Defect], pixel_size_nm: float) -> float:
    """The summed volume in nm^3 of the ``defects`` as spheres of their equivalent diameters,
    ``sum(pi / 6 * (d_i * pixel_size_nm) ** 3)``, those cut by the image edge with the diameter
    of their visible part."""
    return sum(math.pi / 6 * (d.equivalent_diameter * pixel_size_nm) ** 3 for d in defects)


def swelling(defect_volume_nm3: float, volume_nm3: float) -> float | str:
    """Swelling ``dV / V = v / (volume - v)``: the defects' volume ``v`` over the matrix volume
    left when it is taken out of the imaged ``volume`` (both nm^3), a fraction (0.01 = 1 %);
    "" when the defects fill the volume or more (the foil is too thin for them)."""
    matrix = volume_nm3 - defect_volume_nm3
    return defect_volume_nm3 / matrix if matrix > 0 else ""


def summarize(
    image: str,
    defects: Sequence[Defect],
    width: int,
    height: int,
    pixel_size_nm: float | None = None,
    thickness_nm: float | None = None,
) -> dict:
    """One ``summary.csv`` row (keys :data:`SUMMARY_COLUMNS`) of an image ``width x height``
    pixels of a foil ``thickness_nm`` thick.

    ``count`` is every defect, those cut by the edge too (``touching_edge`` says how many);
    ``density_per_um2`` is ``count`` per square micrometre of image (empty without a pixel size);
    ``areal_fraction`` the summed defect area over the image area (overlapping boxes count
    twice). The diameter statistics (equivalent diameter, pixels and nm; the standard deviation
    with ``ddof=1``) leave out defects touching the edge, whose size is cut; they are empty when
    no defect is left (the standard deviation: fewer than two).

    With the thickness (and the pixel size), ``density_per_m3`` is ``count`` over the imaged
    volume, image area x thickness, in m^-3, and ``swelling`` is :func:`swelling` of the defects
    as spheres of their equivalent diameters (:func:`sphere_volume_nm3`, edge-cut ones with
    their visible part's diameter) in that volume: ``sum(pi/6 d_i^3) / (A t - sum(pi/6 d_i^3))``
    with ``d_i`` in nm, ``A`` the image area in nm^2 and ``t`` the thickness in nm. It is
    computed over every class; it means swelling for cavities (for precipitates it is their
    volume over the matrix's). Both are empty without the thickness or the pixel size.

    The 95 % intervals (:data:`CONFIDENCE`): ``mean_diameter_ci_low`` / ``_high`` (pixels, and
    ``_nm``) the percentile bootstrap of the mean diameter over the image's whole defects
    (:func:`bootstrap_mean_interval`, empty for fewer than two); ``density_ci_low_*`` /
    ``density_ci_high_*`` the exact Poisson interval of ``count`` (:func:`poisson_interval`; one
    image's count is a single number, which cannot be bootstrapped) over the image area or
    volume.
    """
    diameters = _diameters(defects)
    low, high = bootstrap_mean_interval(diameters) if len(diameters) > 1 else ("", "")
    stats = {
        "mean_diameter": float(diameters.mean()) if len(diameters) else "",
        "mean_diameter_ci_low": low,
        "mean_diameter_ci_high": high,
        "median_diameter": float(np.median(diameters)) if len(diameters) else "",
        "std_diameter": float(diameters.std(ddof=1)) if len(diameters) > 1 else "",
    }
    row = {
        "image": image,
        "width": int(width),
        "height": int(height),
        "pixel_size_nm": "" if pixel_size_nm is None else float(pixel_size_nm),
        "thickness_nm": "" if thickness_nm is None else float(thickness_nm),
        "count": len(defects),
        "touching_edge": sum(d.touches_edge for d in defects),
        **dict.fromkeys(_DENSITIES, ""),
        "areal_fraction": sum(d.area for d in defects) / (width * height),
        "swelling": "",
        **stats,
    }
    for name, value in stats.items():
        row[f"{name}_nm"] = "" if pixel_size_nm is None or value == "" else value * pixel_size_nm
    if pixel_size_nm is None:
        return row
    count_low, count_high = poisson_interval(len(defects))
    area_nm2 = width * height * pixel_size_nm**2
    for unit, size in [("um2", area_nm2 / 1e6)] + (
        [("m3", area_nm2 * thickness_nm / 1e27)] if thickness_nm is not None else []
    ):
        row[f"density_per_{unit}"] = len(defects) / size
        row[f"density_ci_low_per_{unit}"] = count_low / size
        row[f"density_ci_high_per_{unit}"] = count_high / size
    if thickness_nm is not None:
        row["swelling"] = swelling(
            sphere_volume_nm3(defects, pixel_size_nm), area_nm2 * thickness_nm
        )
    return row


COMPARISON_COLUMNS = (
    "image",
    "count_predicted",
    "count_truth",
    "count_error",
    "mean_diameter_predicted",
    "mean_diameter_truth",
    "mean_diameter_error",
    "mean_diameter_predicted_nm",
    "mean_diameter_truth_nm",
    "mean_diameter_error_nm",
    "ks_statistic",
    "ks_pvalue",
)


def _mean(values: np.ndarray | None) -> float | str:
    return float(values.mean()) if values is not None and len(values) else ""


def _difference(a: float | str, b: float | str) -> float | str:
    return "" if a == "" or b == "" else a - b


def _diameters_nm(
    defects: Sequence[Defect], pixel_size_nm: float | Sequence[float | None] | None
) -> np.ndarray | None:
    """Equivalent diameters in nm of the defects not cut by the edge, ``pixel_size_nm`` one for
    all or one per defect; None when a pixel size is unknown."""
    if pixel_size_nm is None or isinstance(pixel_size_nm, int | float):
        sizes = [pixel_size_nm] * len(defects)
    else:
        sizes = list(pixel_size_nm)
        if len(sizes) != len(defects):
            raise ValueError(f"{len(sizes)} pixel sizes for {len(defects)} defects")
    if None in sizes:
        return None
    return np.array(
        [
            d.equivalent_diameter * s
            for d, s in zip(defects, sizes, strict=True)
            if not d.touches_edge
        ],
        np.float64,
    )


def _comparison(
    image: str,
    predicted: Sequence[Defect],
    truth: Sequence[Defect],
    ours_nm: np.ndarray | None,
    theirs_nm: np.ndarray | None,
    ks_in_nm: bool,
) -> dict:
    ours, theirs = _diameters(predicted), _diameters(truth)
    mean_ours, mean_theirs = _mean(ours), _mean(theirs)
    nm_ours, nm_theirs = _mean(ours_nm), _mean(theirs_nm)
    in_nm = ks_in_nm and ours_nm is not None and theirs_nm is not None
    a, b = (ours_nm, theirs_nm) if in_nm else (ours, theirs)
    ks = ks_2samp(a, b) if len(a) and len(b) else None
    return {
        "image": image,
        "count_predicted": len(predicted),
        "count_truth": len(truth),
        "count_error": len(predicted) - len(truth),
        "mean_diameter_predicted": mean_ours,
        "mean_diameter_truth": mean_theirs,
        "mean_diameter_error": _difference(mean_ours, mean_theirs),
        "mean_diameter_predicted_nm": nm_ours,
        "mean_diameter_truth_nm": nm_theirs,
        "mean_diameter_error_nm": _difference(nm_ours, nm_theirs),
        "ks_statistic": "" if ks is None else float(ks.statistic),
        "ks_pvalue": "" if ks is None else float(ks.pvalue),
    }


def compare_image(
    image: str,
    predicted: Sequence[Defect],
    truth: Sequence[Defect],
    pixel_size_nm: float | None = None,
) -> dict:
    """One ``comparison.csv`` row (keys :data:`COMPARISON_COLUMNS`): ``count_error`` is
    predicted minus true count (all defects); the diameter figures (pixels, and nm with
    ``pixel_size_nm``, nm per pixel; else those are empty) are of the defects not touching the
    edge, the errors predicted minus true, and ``ks_statistic`` / ``ks_pvalue`` the two-sample
    Kolmogorov-Smirnov statistic and p-value (:func:`scipy.stats.ks_2samp`, two-sided) of the
    two diameter samples (empty when either is empty)."""
    return _comparison(
        image,
        predicted,
        truth,
        _diameters_nm(predicted, pixel_size_nm),
        _diameters_nm(truth, pixel_size_nm),
        ks_in_nm=False,  # one pixel size: the same statistic in pixels as in nm
    )


def compare_sets(
    predicted: Sequence[Defect],
    truth: Sequence[Defect],
    pixel_size_nm: float | tuple[Sequence[float | None], Sequence[float | None]] | None = None,
) -> dict:
    """The comparison of all images pooled: as :func:`compare_image` (image ``"all"``).
    ``pixel_size_nm`` is nm per pixel, one for every defect, or a pair of sequences, one pixel
    size per predicted and per true defect, for images of different pixel sizes; the nm
    columns are empty when any is None. With the pixel sizes known the Kolmogorov-Smirnov test
    compares the diameters in nm, else in pixels."""
    if pixel_size_nm is None or isinstance(pixel_size_nm, int | float):
        sizes = (pixel_size_nm, pixel_size_nm)
    else:
        sizes = pixel_size_nm
    return _comparison(
        "all",
        predicted,
        truth,
        _diameters_nm(predicted, sizes[0]),
        _diameters_nm(truth, sizes[1]),
        ks_in_nm=True,
    )
