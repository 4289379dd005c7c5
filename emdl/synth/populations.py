"""Populations of defects: how many of a kind a foil holds (a number density), their sizes (a
lognormal distribution by default) and where they are (uniform in the foil's volume, with or
without overlap).

A population of ``density`` per m^3 in a field of ``A`` nm^2 of a foil ``t`` nm thick has a
Poisson number of members of mean ``density x A t x 1e-27``. Dislocation lines have a
dislocation density (m of line per m^3, i.e. m^-2): their projected length in the field is about
``density x A t x 1e-18`` nm, in lines crossing the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emdl.synth.geometry import smooth_curve
from emdl.synth.objects import Cavity, Defect, Dot, Line, Loop, Precipitate

DEFECTS = ("cavity", "precipitate", "loop", "dot", "line")
OVERLAPS = ("volume", "projection", "any")


@dataclass(frozen=True)
class Population:
    """One kind of defect in the foil.

    Attributes:
        defect: ``"cavity"``, ``"precipitate"``, ``"loop"``, ``"dot"`` or ``"line"``.
        label: the label name its shapes get.
        density: number density, m^-3 (lines: dislocation density, m^-2).
        median_diameter_nm: median of the lognormal diameter distribution, nm.
        sigma_log: standard deviation of the diameters' natural logarithm (0: all the median).
        min_diameter_nm, max_diameter_nm: diameters are drawn again outside these, nm (spheres
            are also kept within the foil's thickness).
        overlap: ``"volume"`` (spheres do not intersect; projections may overlap),
            ``"projection"`` (the projected outlines do not overlap: separate instances) or
            ``"any"``.
        contrast: strain or absorption contrast, the peak amplitude attenuation (loops, dots,
            lines), or the extra absorption per nm of chord (precipitates).
        width_nm: half-width of the strain contrast of loops and lines, nm.
        potential_v: a precipitate's potential above the matrix's, V (cavities are empty).
        moire_period_nm: precipitates' moire fringe period, nm (0: none).
    """

    defect: str
    label: str
    density: float
    median_diameter_nm: float = 10.0
    sigma_log: float = 0.3
    min_diameter_nm: float = 1.0
    max_diameter_nm: float = 40.0
    overlap: str = "volume"
    contrast: float = 0.5
    width_nm: float = 0.8
    potential_v: float = 0.0
    moire_period_nm: float = 0.0

    def __post_init__(self) -> None:
        if self.defect not in DEFECTS:
            raise ValueError(f"population defect must be one of {DEFECTS}, got {self.defect!r}")
        if self.overlap not in OVERLAPS:
            raise ValueError(f"population overlap must be one of {OVERLAPS}, got {self.overlap!r}")
        if self.density < 0 or self.median_diameter_nm <= 0 or self.sigma_log < 0:
            raise ValueError(f"population {self.label!r}: density, sizes must be positive")


def diameters(
    rng: np.random.Generator, population: Population, count: int, largest_nm: float
) -> np.ndarray:
    """``count`` diameters in nm, float64, lognormal about the median, each within the
    population's range and at most ``largest_nm`` (redrawn, not clipped, so the tails keep the
    distribution's shape inside the range)."""
    high = min(population.max_diameter_nm, largest_nm)
    low = min(population.min_diameter_nm, high)
    out = np.empty(0)
    for _ in range(100):
        if len(out) >= count:
            break
        draw = rng.lognormal(math.log(population.median_diameter_nm), population.sigma_log, count)
        out = np.concatenate([out, draw[(draw >= low) & (draw <= high)]])
    if len(out) < count:
        out = np.concatenate(
            [out, np.full(count - len(out), np.clip(population.median_diameter_nm, low, high))]
        )
    return out[:count]


def sample(
    rng: np.random.Generator,
    population: Population,
    extent_nm: tuple[float, float, float, float],
    thickness_nm: float,
) -> list[Defect]:
    """The population's members in the field ``extent_nm`` ``(x0, y0, x1, y1)`` (nm, image
    frame) of a foil ``thickness_nm`` thick, largest first."""
    x0, y0, x1, y1 = extent_nm
    area = (x1 - x0) * (y1 - y0)
    if population.defect == "line":
        return _lines(rng, population, extent_nm, thickness_nm)
    count = rng.poisson(population.density * area * thickness_nm * 1e-27)
    spheres = population.defect in ("cavity", "precipitate")
    sizes = np.sort(diameters(rng, population, count, thickness_nm if spheres else np.inf))[::-1]
    radii = sizes / 2
    placed: list[tuple[float, float, float, float]] = []
    centres = np.empty((0, 3))
    kept_radii = np.empty(0)
    for radius in radii:
        for _ in range(50):
            depth = radius if not spheres else min(radius, thickness_nm / 2)
            point = np.array(
                [
                    rng.uniform(x0, x1),
                    rng.uniform(y0, y1),
                    rng.uniform(depth, max(thickness_nm - depth, depth)),
                ]
            )
            if _free(point, radius, centres, kept_radii, population.overlap):
                placed.append((*point, radius))
                centres = np.vstack([centres, point])
                kept_radii = np.append(kept_radii, radius)
                break
    return [_member(rng, population, x, y, z, r) for x, y, z, r in placed]


def _free(
    point: np.ndarray, radius: float, centres: np.ndarray, radii: np.ndarray, overlap: str
) -> bool:
    if overlap == "any" or not len(centres):
        return True
    axes = 3 if overlap == "volume" else 2
    distance = np.linalg.norm(centres[:, :axes] - point[:axes], axis=1)
    return bool(np.all(distance >= radii + radius))


def _member(
    rng: np.random.Generator, population: Population, x: float, y: float, z: float, r: float
) -> Defect:
    label = population.label
    if population.defect == "cavity":
        return Cavity(x, y, z, r, label=label)
    if population.defect == "precipitate":
        moire = population.moire_period_nm
        return Precipitate(
            x,
            y,
            z,
            r,
            label=label,
            delta_potential_v=population.potential_v,
            absorption_per_nm=population.contrast,
            moire_period_nm=moire,
            moire_angle_deg=float(rng.uniform(0, 180)) if moire else 0.0,
        )
    if population.defect == "loop":
        # Loop normals uniform on the sphere: the cosine of the tilt is uniform in [0, 1].
        tilt = math.degrees(math.acos(rng.uniform(0, 1)))
        return Loop(
            x,
            y,
            z,
            r,
            tilt_deg=tilt,
            azimuth_deg=float(rng.uniform(0, 180)),
            label=label,
            width_nm=population.width_nm,
            depth=population.contrast,
        )
    return Dot(x, y, z, r, label=label, depth=population.contrast)


def _lines(
    rng: np.random.Generator,
    population: Population,
    extent_nm: tuple[float, float, float, float],
    thickness_nm: float,
) -> list[Defect]:
    """Smooth lines across the field, as many as the dislocation density asks, each a spline
    through 5 points along a random chord of the field, bent sideways."""
    x0, y0, x1, y1 = extent_nm
    side = max(x1 - x0, y1 - y0)
    length_nm = population.density * (x1 - x0) * (y1 - y0) * thickness_nm * 1e-18
    count = rng.poisson(length_nm / side)
    lines: list[Defect] = []
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    for _ in range(count):
        through = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        angle = rng.uniform(0, math.pi)
        direction = np.array([math.cos(angle), math.sin(angle)])
        normal = np.array([-direction[1], direction[0]])
        # Long enough to cross the whole field from any point in it.
        half = np.linalg.norm(through - centre) + side
        along = np.linspace(-half, half, 5)
        bend = rng.normal(0, 0.08 * side, 5)
        control = through + along[:, None] * direction + bend[:, None] * normal
        curve = smooth_curve(control, spacing=0.05)
        inside = (
            (curve[:, 0] >= x0) & (curve[:, 0] <= x1) & (curve[:, 1] >= y0) & (curve[:, 1] <= y1)
        )
        if inside.sum() < 2:
            continue
        first, last = np.flatnonzero(inside)[[0, -1]]
        points = tuple(map(tuple, curve[first : last + 1].tolist()))
        lines.append(
            Line(
                points,
                label=population.label,
                width_nm=population.width_nm,
                depth=population.contrast,
            )
        )
    return lines
