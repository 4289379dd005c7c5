"""The defects of a synthetic foil: what each does to the exit wave and its exact label.

Every object paints onto a :class:`Field` of the exit wave: ``phase`` (rad, added to the
matrix's) and ``attenuation`` (the amplitude's exponent, so the wave is
``exp(i phase - attenuation)``). Positions and sizes are in nm in the image's frame (x to the
right and y down from the image's top-left corner, z into the foil from its top surface); labels
are emdl annotation shapes in pixels (see :mod:`emdl.annotations`), before clipping to the image.

- :class:`Cavity` (bubble, void): a sphere of radius ``r`` without matrix, whose projected
  chord ``2 sqrt(r^2 - rho^2)`` lowers the projected potential by ``V0 x chord`` (V0 the mean
  inner potential), a phase of ``-sigma V0 chord``, and the absorption with it (a phase object
  with a little amplitude contrast).
- :class:`Precipitate`: a sphere of another phase: potential ``dV x chord`` and an extra
  absorption ``mu x chord`` (an absorbing disc), with optional moire fringes.
- :class:`Loop`: a circular dislocation loop of radius ``R`` whose normal is tilted ``theta``
  from the beam projects to an ellipse of radii ``R`` and ``R cos theta``; its strain field
  scatters electrons out of the aperture: a dark ring of Gaussian profile (width ``w``) along
  the ellipse. Edge-on (``R cos theta < w``) it is a short dark line.
- :class:`Dot`: a black dot (a loop too small to resolve): a dark Gaussian spot.
- :class:`Line`: a dislocation line: a dark smooth curve of Gaussian profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emdl.annotations import Polygon, Polyline, Shape
from emdl.synth.geometry import distance_to_points, ellipse_curve, ellipse_polygon

# How far (in profile widths) a Gaussian profile is painted; exp(-4.5^2 / 2) < 4e-5.
_REACH = 4.5


@dataclass
class Field:
    """The exit wave's phase and attenuation on a grid of ``pixel_nm`` pixels that reaches
    ``margin`` pixels beyond the image on every side (so that the periodic FFT does not wrap):
    field pixel ``(row, col)`` is image pixel ``(row - margin, col - margin)``. Both arrays are
    float64 ``(H, W)``; ``sigma`` is the interaction constant in rad / (V nm) and
    ``absorption_ratio`` the matrix's imaginary to real potential."""

    phase: np.ndarray
    attenuation: np.ndarray
    pixel_nm: float
    margin: int
    sigma: float
    mean_inner_potential_v: float
    absorption_ratio: float

    def window(self, x_nm: float, y_nm: float, reach_nm: float) -> tuple[slice, slice] | None:
        """The field's rows and columns within ``reach_nm`` of the point, or None if none."""
        p, m = self.pixel_nm, self.margin
        height, width = self.phase.shape
        r0 = max(math.floor((y_nm - reach_nm) / p) + m, 0)
        r1 = min(math.ceil((y_nm + reach_nm) / p) + m + 1, height)
        c0 = max(math.floor((x_nm - reach_nm) / p) + m, 0)
        c1 = min(math.ceil((x_nm + reach_nm) / p) + m + 1, width)
        if r0 >= r1 or c0 >= c1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def centres_nm(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """Pixel centres ``(y (R, 1), x (1, C))`` in nm in the image's frame."""
        p, m = self.pixel_nm, self.margin
        y = (np.arange(rows.start, rows.stop) - m + 0.5)[:, np.newaxis] * p
        x = (np.arange(cols.start, cols.stop) - m + 0.5)[np.newaxis, :] * p
        return y, x

    def image_pixels(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """The window's rows and columns as image pixel indices (1-D int arrays)."""
        m = self.margin
        return np.arange(rows.start, rows.stop) - m, np.arange(cols.start, cols.stop) - m


def _chord(field: Field, x: float, y: float, radius: float):
    """The window around a sphere and its chord lengths in nm there (0 outside the disc)."""
    window = field.window(x, y, radius)
    if window is None:
        return None, None
    yy, xx = field.centres_nm(*window)
    rho2 = (xx - x) ** 2 + (yy - y) ** 2
    return window, 2 * np.sqrt(np.clip(radius**2 - rho2, 0, None))


def _disc_label(x: float, y: float, radius: float, pixel_nm: float, label: str) -> Polygon:
    points = ellipse_polygon(x / pixel_nm, y / pixel_nm, radius / pixel_nm, radius / pixel_nm)
    return Polygon(label=label, points=tuple(map(tuple, points.tolist())))


@dataclass(frozen=True)
class Cavity:
    """A spherical cavity (bubble or void): centre ``(x_nm, y_nm)``, depth ``z_nm`` below the
    top surface, radius ``radius_nm``; ``fill`` is the fraction of the matrix's potential left
    inside (0: empty; a dense gas bubble has a little)."""

    x_nm: float
    y_nm: float
    z_nm: float
    radius_nm: float
    label: str = "bubble"
    fill: float = 0.0

    def paint(self, field: Field) -> None:
        window, chord = _chord(field, self.x_nm, self.y_nm, self.radius_nm)
        if window is None:
            return
        missing = (1 - self.fill) * field.mean_inner_potential_v * chord  # V nm
        field.phase[window] -= field.sigma * missing
        field.attenuation[window] -= field.sigma * field.absorption_ratio * missing

    def shapes(self, pixel_nm: float) -> list[Shape]:
        """A polygon of the projected disc, of area ``pi r^2`` (pixels)."""
        return [_disc_label(self.x_nm, self.y_nm, self.radius_nm, pixel_nm, self.label)]


@dataclass(frozen=True)
class Precipitate:
    """A spherical precipitate: centre, radius, its potential above the matrix's
    ``delta_potential_v`` (V), its extra amplitude absorption per nm of chord
    ``absorption_per_nm``, and moire fringes of ``moire_period_nm`` (0: none) at
    ``moire_angle_deg`` clockwise from x, of amplitude ``moire_depth`` (attenuation)."""

    x_nm: float
    y_nm: float
    z_nm: float
    radius_nm: float
    label: str = "precipitate"
    delta_potential_v: float = 5.0
    absorption_per_nm: float = 0.04
    moire_period_nm: float = 0.0
    moire_angle_deg: float = 0.0
    moire_depth: float = 0.15

    def paint(self, field: Field) -> None:
        window, chord = _chord(field, self.x_nm, self.y_nm, self.radius_nm)
        if window is None:
            return
        field.phase[window] += field.sigma * self.delta_potential_v * chord
        attenuation = self.absorption_per_nm * chord
        if self.moire_period_nm > 0:
            yy, xx = field.centres_nm(*window)
            angle = math.radians(self.moire_angle_deg)
            along = (xx - self.x_nm) * math.cos(angle) + (yy - self.y_nm) * math.sin(angle)
            fringes = 0.5 * (1 + np.cos(2 * math.pi * along / self.moire_period_nm))
            attenuation = attenuation + self.moire_depth * fringes * (chord > 0)
        field.attenuation[window] += attenuation

    def shapes(self, pixel_nm: float) -> list[Shape]:
        return [_disc_label(self.x_nm, self.y_nm, self.radius_nm, pixel_nm, self.label)]


def _paint_profile(field: Field, curve_nm: np.ndarray, width_nm: float, depth: float) -> None:
    """Attenuation ``depth exp(-d^2 / (2 w^2))`` at distance ``d`` from the densely sampled
    ``curve_nm`` float ``(N, 2)`` (x, y in nm)."""
    reach = _REACH * width_nm
    low, high = curve_nm.min(axis=0), curve_nm.max(axis=0)
    centre, half = (low + high) / 2, (high - low) / 2
    window = field.window(centre[0], centre[1], float(half.max()) + reach)
    if window is None:
        return
    rows, cols = field.image_pixels(*window)
    p = field.pixel_nm
    distance = distance_to_points(curve_nm / p, rows, cols, reach / p) * p
    field.attenuation[window] += depth * np.exp(-0.5 * (distance / width_nm) ** 2)


@dataclass(frozen=True)
class Loop:
    """A circular dislocation loop: centre, depth, radius ``radius_nm``, its normal tilted
    ``tilt_deg`` from the beam, the projected ellipse's long axis ``azimuth_deg`` clockwise from
    x; strain contrast of Gaussian half-width ``width_nm`` and peak attenuation ``depth``."""

    x_nm: float
    y_nm: float
    z_nm: float
    radius_nm: float
    tilt_deg: float
    azimuth_deg: float
    label: str = "loop"
    width_nm: float = 0.8
    depth: float = 0.5

    @property
    def minor_radius_nm(self) -> float:
        """The projected ellipse's short radius ``R cos theta``, nm."""
        return self.radius_nm * abs(math.cos(math.radians(self.tilt_deg)))

    def paint(self, field: Field) -> None:
        curve = ellipse_curve(
            self.x_nm,
            self.y_nm,
            self.radius_nm,
            self.minor_radius_nm,
            self.azimuth_deg,
            spacing=field.pixel_nm / 4,
        )
        _paint_profile(field, curve, self.width_nm, self.depth)

    def shapes(self, pixel_nm: float) -> list[Shape]:
        """A polygon of the projected ellipse, its short radius at least ``width_nm`` so that an
        edge-on loop (a line) has an area."""
        minor = max(self.minor_radius_nm, self.width_nm)
        points = ellipse_polygon(
            self.x_nm / pixel_nm,
            self.y_nm / pixel_nm,
            self.radius_nm / pixel_nm,
            minor / pixel_nm,
            self.azimuth_deg,
        )
        return [Polygon(label=self.label, points=tuple(map(tuple, points.tolist())))]


@dataclass(frozen=True)
class Dot:
    """A black dot: centre, depth, radius ``radius_nm``; a Gaussian dark spot of standard
    deviation ``radius_nm / 2`` and peak attenuation ``depth``."""

    x_nm: float
    y_nm: float
    z_nm: float
    radius_nm: float
    label: str = "black_dot"
    depth: float = 0.5

    def paint(self, field: Field) -> None:
        s = self.radius_nm / 2
        window = field.window(self.x_nm, self.y_nm, _REACH * s)
        if window is None:
            return
        yy, xx = field.centres_nm(*window)
        rho2 = (xx - self.x_nm) ** 2 + (yy - self.y_nm) ** 2
        field.attenuation[window] += self.depth * np.exp(-0.5 * rho2 / s**2)

    def shapes(self, pixel_nm: float) -> list[Shape]:
        return [_disc_label(self.x_nm, self.y_nm, self.radius_nm, pixel_nm, self.label)]


@dataclass(frozen=True)
class Line:
    """A dislocation line: a smooth curve through ``points_nm`` (``((x, y), ...)`` nm, densely
    sampled), of Gaussian half-width ``width_nm`` and peak attenuation ``depth``."""

    points_nm: tuple[tuple[float, float], ...]
    label: str = "dislocation"
    width_nm: float = 1.0
    depth: float = 0.4

    def paint(self, field: Field) -> None:
        _paint_profile(field, np.asarray(self.points_nm), self.width_nm, self.depth)

    def shapes(self, pixel_nm: float) -> list[Shape]:
        """A polyline along the curve, about a vertex per 2 pixels."""
        points = np.asarray(self.points_nm) / pixel_nm
        lengths = np.linalg.norm(np.diff(points, axis=0), axis=1)
        along = np.concatenate([[0.0], np.cumsum(lengths)])
        keep = np.unique(np.searchsorted(along, np.arange(0, along[-1], 2.0)))
        keep = np.unique(np.concatenate([keep, [len(points) - 1]]))
        return [Polyline(label=self.label, points=tuple(map(tuple, points[keep].tolist())))]


Defect = Cavity | Precipitate | Loop | Dot | Line
