"""Plane geometry for the labels and the contrast of the objects: ellipse polygons of the exact
area, polygons and polylines clipped to the image, smooth curves and distances to them.

Coordinates are ``(x, y)`` in pixels, x to the right, y down, as emdl's annotations use them;
angles in degrees, clockwise on the screen (CVAT's ``rotation``).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import ndimage
from scipy.interpolate import make_interp_spline
from scipy.spatial import cKDTree


def polygon_vertices(radius_px: float) -> int:
    """Vertices of a label polygon of a round object of ``radius_px``: one about every 1.5
    pixels of its outline, 24 to 256."""
    return int(np.clip(math.ceil(2 * math.pi * radius_px / 1.5), 24, 256))


def ellipse_polygon(
    cx: float, cy: float, rx: float, ry: float, rotation: float = 0.0, vertices: int = 0
) -> np.ndarray:
    """float64 ``(N, 2)`` vertices ``(x, y)`` of a polygon with the area of the ellipse centred
    at ``(cx, cy)`` with radii ``rx``, ``ry`` turned ``rotation`` degrees clockwise: the
    inscribed ``N``-gon scaled by ``sqrt(2 pi / (N sin(2 pi / N)))``, so its area is exactly
    ``pi rx ry`` (``vertices`` 0: :func:`polygon_vertices` of the larger radius)."""
    n = vertices or polygon_vertices(max(rx, ry))
    scale = math.sqrt(2 * math.pi / (n * math.sin(2 * math.pi / n)))
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    u, v = rx * scale * np.cos(t), ry * scale * np.sin(t)
    cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    return np.stack([cx + u * cos - v * sin, cy + u * sin + v * cos], axis=1)


def ellipse_curve(
    cx: float, cy: float, rx: float, ry: float, rotation: float, spacing: float
) -> np.ndarray:
    """float64 ``(N, 2)`` points ``(x, y)`` on the ellipse itself (not area-corrected), at most
    ``spacing`` apart."""
    n = max(16, math.ceil(2 * math.pi * max(rx, ry) / spacing))
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    u, v = rx * np.cos(t), ry * np.sin(t)
    cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    return np.stack([cx + u * cos - v * sin, cy + u * sin + v * cos], axis=1)


def clip_polygon(points: np.ndarray, width: float, height: float) -> np.ndarray:
    """The part of the polygon ``points`` float ``(N, 2)`` inside ``[0, width] x [0, height]``
    (Sutherland-Hodgman; exact for any polygon against the convex rectangle), float64
    ``(M, 2)``, ``M = 0`` when nothing is inside. Vertices inside are kept as they are."""
    polygon = np.asarray(points, np.float64)
    # Each edge of the rectangle: axis, limit, whether inside is below the limit.
    for axis, limit, below in (
        (0, 0.0, False),
        (0, width, True),
        (1, 0.0, False),
        (1, height, True),
    ):
        if len(polygon) == 0:
            break
        value = polygon[:, axis]
        inside = value <= limit if below else value >= limit
        if inside.all():
            continue
        following = np.roll(polygon, -1, axis=0)
        out: list[np.ndarray] = []
        for point, after, point_in, after_in in zip(
            polygon, following, inside, np.roll(inside, -1), strict=True
        ):
            if point_in:
                out.append(point)
            if point_in != after_in:
                t = (limit - point[axis]) / (after[axis] - point[axis])
                crossing = point + t * (after - point)
                crossing[axis] = limit
                out.append(crossing)
        polygon = np.array(out).reshape(-1, 2)
    return _without_repeats(polygon)


def _without_repeats(points: np.ndarray) -> np.ndarray:
    if len(points) < 2:
        return points
    keep = np.any(points != np.roll(points, 1, axis=0), axis=1)
    return points[keep]


def clip_polyline(points: np.ndarray, width: float, height: float) -> list[np.ndarray]:
    """The pieces of the open polyline ``points`` float ``(N, 2)`` inside
    ``[0, width] x [0, height]`` (a line that leaves and comes back is two pieces), each float64
    ``(M, 2)`` with ``M >= 2``; segments are cut where they cross the border (Liang-Barsky)."""
    points = np.asarray(points, np.float64)
    pieces: list[list[np.ndarray]] = []
    current: list[np.ndarray] = []
    for start, end in itertools.pairwise(points):
        clipped = _clip_segment(start, end, width, height)
        if clipped is None:
            if current:
                pieces.append(current)
                current = []
            continue
        a, b = clipped
        if current and np.array_equal(current[-1], a):
            current.append(b)
        else:
            if current:
                pieces.append(current)
            current = [a, b]
        if not np.array_equal(b, end):  # the segment leaves the image
            pieces.append(current)
            current = []
    if current:
        pieces.append(current)
    return [np.array(piece) for piece in pieces if len(piece) >= 2]


def _clip_segment(
    start: np.ndarray, end: np.ndarray, width: float, height: float
) -> tuple[np.ndarray, np.ndarray] | None:
    delta = end - start
    low, high = 0.0, 1.0
    for p, q in (
        (-delta[0], start[0]),
        (delta[0], width - start[0]),
        (-delta[1], start[1]),
        (delta[1], height - start[1]),
    ):
        if p == 0:
            if q < 0:
                return None
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return None
    a = start if low == 0 else start + low * delta
    b = end if high == 1 else start + high * delta
    a, b = np.clip(a, 0, [width, height]), np.clip(b, 0, [width, height])
    return (a, b) if not np.array_equal(a, b) else None


def smooth_curve(control: np.ndarray, spacing: float) -> np.ndarray:
    """A smooth curve float64 ``(N, 2)`` through the control points ``(K, 2)`` (a cubic spline,
    quadratic for 3 points, in the chord length), sampled at most ``spacing`` apart."""
    control = np.asarray(control, np.float64)
    lengths = np.linalg.norm(np.diff(control, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(lengths)])
    spline = make_interp_spline(s, control, k=min(3, len(control) - 1))
    samples = np.linspace(0, s[-1], max(2, math.ceil(s[-1] / spacing * 1.5) + 1))
    return spline(samples)


def distance_to_points(
    curve: np.ndarray, rows: np.ndarray, cols: np.ndarray, reach: float
) -> np.ndarray:
    """Distance float64 ``(len(rows), len(cols))`` of the pixel centres ``(cols + 0.5,
    rows + 0.5)`` (``rows``, ``cols`` consecutive 1-D int arrays) to the nearest of the densely
    sampled ``curve`` points float ``(N, 2)`` ``(x, y)``; ``inf`` beyond ``reach``."""
    distance = np.full((len(rows), len(cols)), np.inf)
    # Only the pixels near the curve are measured: those within reach of a pixel it crosses.
    hit = np.zeros(distance.shape, bool)
    r = np.floor(curve[:, 1]).astype(int) - rows[0]
    c = np.floor(curve[:, 0]).astype(int) - cols[0]
    inside = (r >= 0) & (r < len(rows)) & (c >= 0) & (c < len(cols))
    hit[r[inside], c[inside]] = True
    if not hit.any():
        return distance
    near = ndimage.distance_transform_edt(~hit) <= reach + 1.5
    yy, xx = np.nonzero(near)
    found, _ = cKDTree(curve).query(
        np.stack([xx + cols[0] + 0.5, yy + rows[0] + 0.5], axis=1), distance_upper_bound=reach
    )
    distance[yy, xx] = found
    return distance
