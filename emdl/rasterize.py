"""Shapes to pixels with skimage.draw: the one rule for which pixels and which box a shape
covers, shared by the label readers (clipping), the target encoders and the label-file writers.

A pixel belongs to a shape when its centre lies inside it (boundary included), so a box from
``x = 0`` to ``x = 10`` covers columns 0-9. Lines and points are drawn ``line_width`` pixels wide
with round ends. A closed shape too small to cover any pixel centre still marks the pixel holding
its centre, so no labeled object vanishes from its mask.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from skimage import draw

from emdl.annotations import (
    Box,
    Ellipse,
    ImageAnnotation,
    Mask,
    Points,
    Polygon,
    Polyline,
    Shape,
)


def check_line_width(line_width: float, where: str = "line width") -> None:
    """ValueError naming ``where`` unless ``line_width`` is a finite number of pixels above 0
    (NaN, infinity, 0 or less would draw nothing, or everything)."""
    number = isinstance(line_width, (int, float)) and not isinstance(line_width, bool)
    if not (number and math.isfinite(line_width) and line_width > 0):
        raise ValueError(f"{where}: expected a positive number of pixels, got {line_width}")


def _to_rows_cols(points: np.ndarray) -> np.ndarray:
    """``(x, y)`` continuous coordinates to skimage's ``(row, col)`` of pixel centres."""
    return np.stack([points[:, 1] - 0.5, points[:, 0] - 0.5], axis=1)


def _fill_polygon(mask: np.ndarray, points: np.ndarray) -> None:
    mask |= draw.polygon2mask(mask.shape, _to_rows_cols(points))


def _draw_line(mask: np.ndarray, points: np.ndarray, line_width: float) -> None:
    height, width = mask.shape
    half = line_width / 2
    rows_cols = _to_rows_cols(points)
    for start, end in itertools.pairwise(rows_cols):
        # The 1-pixel line keeps thin lines connected where the thick polygon misses centres.
        (r0, c0), (r1, c1) = np.floor(start + 0.5).astype(int), np.floor(end + 0.5).astype(int)
        rr, cc = draw.line(r0, c0, r1, c1)
        inside = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
        mask[rr[inside], cc[inside]] = True
        direction = end - start
        length = math.hypot(*direction)
        # Thicker lines are bands; a 1-pixel band on a pixel edge would cover two rows.
        if length > 0 and line_width > 1:
            normal = np.array([-direction[1], direction[0]]) / length * half
            corners = np.stack([start + normal, end + normal, end - normal, start - normal])
            mask |= draw.polygon2mask(mask.shape, corners)
    _draw_points(mask, points, line_width)


def _draw_points(mask: np.ndarray, points: np.ndarray, line_width: float) -> None:
    height, width = mask.shape
    for row, col in _to_rows_cols(points):
        rr, cc = draw.disk((row, col), line_width / 2, shape=mask.shape)
        mask[rr, cc] = True
        r, c = math.floor(row + 0.5), math.floor(col + 0.5)
        if 0 <= r < height and 0 <= c < width:
            mask[r, c] = True


def _paste_mask(mask: np.ndarray, shape: Mask) -> None:
    height, width = mask.shape
    bitmap = shape.to_array()
    top, left = max(shape.top, 0), max(shape.left, 0)
    bottom, right = min(shape.top + shape.height, height), min(shape.left + shape.width, width)
    if bottom > top and right > left:
        mask[top:bottom, left:right] |= bitmap[
            top - shape.top : bottom - shape.top, left - shape.left : right - shape.left
        ]


def shape_mask(shape: Shape, height: int, width: int, *, line_width: float = 1.0) -> np.ndarray:
    """The pixels of ``shape`` in a ``height x width`` image, bool ``(height, width)``.

    ``line_width`` (pixels) is the width of polylines and the diameter of points.
    """
    mask = np.zeros((height, width), dtype=bool)
    if isinstance(shape, Polygon):
        _fill_polygon(mask, np.asarray(shape.points, dtype=np.float64))
    elif isinstance(shape, Box):
        _fill_polygon(mask, np.asarray(shape.corners, dtype=np.float64))
    elif isinstance(shape, Ellipse):
        # skimage turns counter-clockwise in (row, col); CVAT turns clockwise on the screen.
        rr, cc = draw.ellipse(
            shape.cy - 0.5,
            shape.cx - 0.5,
            shape.ry,
            shape.rx,
            shape=mask.shape,
            rotation=-math.radians(shape.rotation),
        )
        mask[rr, cc] = True
    elif isinstance(shape, Polyline):
        _draw_line(mask, np.asarray(shape.points, dtype=np.float64), line_width)
        return mask
    elif isinstance(shape, Points):
        _draw_points(mask, np.asarray(shape.points, dtype=np.float64), line_width)
        return mask
    elif isinstance(shape, Mask):
        _paste_mask(mask, shape)
        return mask
    else:
        raise TypeError(f"cannot rasterize {type(shape).__name__}")
    if not mask.any():
        x0, y0, x1, y1 = shape.bounds
        r, c = math.floor((y0 + y1) / 2), math.floor((x0 + x1) / 2)
        if 0 <= r < height and 0 <= c < width:
            mask[r, c] = True
    return mask


def shape_box(shape: Shape, height: int, width: int, *, line_width: float = 1.0) -> np.ndarray:
    """Box around ``shape`` clipped to the image, float32 ``(4,)`` "xyxy" in pixels. Lines and
    points are widened by ``line_width / 2`` on every side, as they are drawn."""
    x0, y0, x1, y1 = shape.bounds
    if isinstance(shape, (Polyline, Points)):
        pad = line_width / 2
        x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    return np.array(
        [
            min(max(x0, 0), width),
            min(max(y0, 0), height),
            min(max(x1, 0), width),
            min(max(y1, 0), height),
        ],
        dtype=np.float32,
    )


def class_index(label: str, classes: Sequence[str], image: str) -> int:
    """0-based position of ``label`` in ``classes``; a ValueError naming the image if absent."""
    try:
        return list(classes).index(label)
    except ValueError:
        raise ValueError(
            f"image '{image}': label '{label}' is not among the classes {list(classes)}"
        ) from None


def class_mask(
    image: ImageAnnotation, classes: Sequence[str], *, line_width: float = 1.0
) -> np.ndarray:
    """Class indices uint8 ``(height, width)`` of ``image``: 0 background, ``classes[i]`` =
    ``i + 1``. Shapes are painted in the image's order (ascending ``z_order``), later over
    earlier, as CVAT draws them; a label not in ``classes`` is a ValueError."""
    if len(classes) > 255:
        raise ValueError(f"a uint8 mask holds at most 255 classes, got {len(classes)}")
    mask = np.zeros((image.height, image.width), dtype=np.uint8)
    for shape in image.shapes:
        value = class_index(shape.label, classes, image.name) + 1
        mask[shape_mask(shape, image.height, image.width, line_width=line_width)] = value
    return mask


def image_boxes(
    image: ImageAnnotation, classes: Sequence[str], *, line_width: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes float32 ``(N, 4)`` "xyxy" pixels (:func:`shape_box`) and 0-based class indices
    int32 ``(N,)`` of the shapes of ``image``, in its order."""
    xyxy = np.zeros((len(image.shapes), 4), dtype=np.float32)
    for row, shape in enumerate(image.shapes):
        xyxy[row] = shape_box(shape, image.height, image.width, line_width=line_width)
    indices = [class_index(shape.label, classes, image.name) for shape in image.shapes]
    return xyxy, np.array(indices, dtype=np.int32)
