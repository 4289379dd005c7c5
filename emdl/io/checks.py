"""Checks shared by every label reader: shapes that cannot be used, and clipping to the image."""

from __future__ import annotations

import dataclasses

import numpy as np

from emdl.annotations import Box, Mask, Polygon, Polyline, Shape
from emdl.rasterize import shape_mask

_MIN_POINTS = {Polygon: 3, Polyline: 2}


def clip_shape(shape: Shape, width: int, height: int) -> tuple[Shape, bool]:
    """Clip ``shape`` to the ``width x height`` image; return the clipped shape and whether it
    reached outside the image.

    Vertices, points and unrotated boxes are clamped to ``[0, width] x [0, height]`` and masks are
    cropped; ellipses and rotated boxes keep their geometry (rasterizing clips them) but count.
    """
    if hasattr(shape, "points") and not shape.points:
        return shape, False  # nothing to clip; shape_problem rejects it
    x0, y0, x1, y1 = shape.bounds
    outside = x0 < 0 or y0 < 0 or x1 > width or y1 > height
    if not outside:
        return shape, False
    if hasattr(shape, "points"):
        xy = np.asarray(shape.points, dtype=np.float64)
        xy[:, 0] = np.clip(xy[:, 0], 0, width)
        xy[:, 1] = np.clip(xy[:, 1], 0, height)
        return dataclasses.replace(shape, points=tuple(map(tuple, xy.tolist()))), True
    if isinstance(shape, Box) and shape.rotation % 360 == 0:
        return dataclasses.replace(
            shape,
            xtl=min(max(shape.xtl, 0.0), width),
            ytl=min(max(shape.ytl, 0.0), height),
            xbr=min(max(shape.xbr, 0.0), width),
            ybr=min(max(shape.ybr, 0.0), height),
        ), True
    if isinstance(shape, Mask):
        # Rasterizing pastes the part inside the image; from_array crops it back to a rectangle.
        fields = {f.name: getattr(shape, f.name) for f in dataclasses.fields(Shape)}
        return Mask.from_array(shape_mask(shape, height, width), **fields), True
    return shape, True


def shape_problem(shape: Shape) -> str | None:
    """Why ``shape`` cannot be used (too few points, zero area), or None when it is fine."""
    min_points = _MIN_POINTS.get(type(shape))
    if min_points is not None and len(shape.points) < min_points:
        return f"{shape.type} with fewer than {min_points} points"
    if hasattr(shape, "points") and len(shape.points) == 0:
        return f"{shape.type} with no points"
    if not hasattr(shape, "points") and shape.area <= 0:
        return f"zero-area {shape.type}"
    if isinstance(shape, Polygon) and shape.area <= 0:
        return "zero-area polygon"
    return None
