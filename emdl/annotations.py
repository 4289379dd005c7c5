"""Plain typed objects for labeled micrographs: labels, shapes, images and whole label files.

Coordinates are continuous pixel coordinates as CVAT and COCO use them: x to the right, y down, the
pixel in row ``r`` and column ``c`` covers ``[c, c + 1) x [r, r + 1)`` and its centre is at
``(c + 0.5, r + 0.5)``. Angles are in degrees, clockwise on the screen (CVAT's ``rotation``).
Shapes are frozen and compare by value, so a round trip through a file can be checked with ``==``.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from emdl.errors import LabelWarning

Point = tuple[float, float]


@dataclass(frozen=True)
class Label:
    """A label declared in a label file's ``<meta>``: name, colour (``#rrggbb``) and CVAT type."""

    name: str
    color: str = ""
    type: str = "any"


@dataclass(frozen=True, kw_only=True)
class Shape(ABC):
    """What every shape has. Subclasses add the geometry; ``type`` is CVAT's element name."""

    type: ClassVar[str] = ""
    label: str
    occluded: bool = False
    z_order: int = 0
    source: str = "manual"
    attributes: tuple[tuple[str, str], ...] = ()
    group_id: int | None = None

    @property
    @abstractmethod
    def bounds(self) -> tuple[float, float, float, float]:
        """Extent ``(x_min, y_min, x_max, y_max)`` in pixels (float, "xyxy")."""

    @property
    def area(self) -> float:
        """Enclosed area in square pixels; 0 for lines and points."""
        return 0.0


def _points_bounds(points: tuple[Point, ...]) -> tuple[float, float, float, float]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


@dataclass(frozen=True, kw_only=True)
class Polygon(Shape):
    """A closed polygon; ``points`` are ``(x, y)`` vertices in pixels."""

    type: ClassVar[str] = "polygon"
    points: tuple[Point, ...]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return _points_bounds(self.points)

    @property
    def area(self) -> float:
        xy = np.asarray(self.points, dtype=np.float64)
        x, y = xy[:, 0], xy[:, 1]
        return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


@dataclass(frozen=True, kw_only=True)
class Polyline(Shape):
    """An open line through ``points`` (``(x, y)`` in pixels), e.g. a dislocation line."""

    type: ClassVar[str] = "polyline"
    points: tuple[Point, ...]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return _points_bounds(self.points)


@dataclass(frozen=True, kw_only=True)
class Points(Shape):
    """One or more loose points, ``(x, y)`` in pixels."""

    type: ClassVar[str] = "points"
    points: tuple[Point, ...]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return _points_bounds(self.points)


def _rotated_corners(
    cx: float, cy: float, half_w: float, half_h: float, rotation: float
) -> tuple[Point, ...]:
    """Corners of a ``2 half_w x 2 half_h`` rectangle centred at ``(cx, cy)``, turned clockwise."""
    cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    corners = ((-half_w, -half_h), (half_w, -half_h), (half_w, half_h), (-half_w, half_h))
    return tuple((cx + dx * cos - dy * sin, cy + dx * sin + dy * cos) for dx, dy in corners)


@dataclass(frozen=True, kw_only=True)
class Box(Shape):
    """An axis-aligned box ``(xtl, ytl)``-``(xbr, ybr)`` in pixels, turned by ``rotation`` degrees
    clockwise about its centre."""

    type: ClassVar[str] = "box"
    xtl: float
    ytl: float
    xbr: float
    ybr: float
    rotation: float = 0.0

    @property
    def corners(self) -> tuple[Point, ...]:
        """The four corners ``(x, y)`` after rotation, clockwise from the top left."""
        return _rotated_corners(
            (self.xtl + self.xbr) / 2,
            (self.ytl + self.ybr) / 2,
            (self.xbr - self.xtl) / 2,
            (self.ybr - self.ytl) / 2,
            self.rotation,
        )

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        if self.rotation % 360 == 0:
            return (self.xtl, self.ytl, self.xbr, self.ybr)
        return _points_bounds(self.corners)

    @property
    def area(self) -> float:
        return max(self.xbr - self.xtl, 0.0) * max(self.ybr - self.ytl, 0.0)


@dataclass(frozen=True, kw_only=True)
class Ellipse(Shape):
    """An ellipse centred at ``(cx, cy)`` with radii ``rx`` (along x before rotation) and ``ry``,
    turned by ``rotation`` degrees clockwise; all in pixels."""

    type: ClassVar[str] = "ellipse"
    cx: float
    cy: float
    rx: float
    ry: float
    rotation: float = 0.0

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        cos, sin = math.cos(math.radians(self.rotation)), math.sin(math.radians(self.rotation))
        half_w = math.hypot(self.rx * cos, self.ry * sin)
        half_h = math.hypot(self.rx * sin, self.ry * cos)
        return (self.cx - half_w, self.cy - half_h, self.cx + half_w, self.cy + half_h)

    @property
    def area(self) -> float:
        return math.pi * self.rx * self.ry


@dataclass(frozen=True, kw_only=True)
class Mask(Shape):
    """A bitmap in the pixel rectangle with top-left pixel ``(left, top)`` and size
    ``width x height``, stored as CVAT's run-length code: row-major run lengths over that rectangle,
    starting with a run of zeros (possibly of length 0)."""

    type: ClassVar[str] = "mask"
    left: int
    top: int
    width: int
    height: int
    rle: tuple[int, ...]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (
            float(self.left),
            float(self.top),
            float(self.left + self.width),
            float(self.top + self.height),
        )

    @property
    def area(self) -> float:
        return float(sum(self.rle[1::2]))

    def to_array(self) -> np.ndarray:
        """The bitmap of the rectangle, bool ``(height, width)``.

        Raises:
            ValueError: the runs do not cover the ``width x height`` rectangle exactly (checked
                before anything is allocated, so runs declaring far more pixels allocate nothing).
        """
        width, height, runs = self.width, self.height, self.rle
        if min(width, height, min(runs, default=0)) < 0 or sum(runs) != width * height:
            raise ValueError(f"mask runs do not cover its {width} x {height} rectangle")
        values = np.arange(len(runs)) % 2 == 1
        flat = np.repeat(values, runs)
        return flat.reshape(height, width)

    @classmethod
    def from_array(
        cls, bitmap: np.ndarray, *, left: int = 0, top: int = 0, crop: bool = True, **shape_fields
    ) -> Mask:
        """A mask from a 2-D array (non-zero = inside) whose top-left pixel is ``(left, top)``.

        With ``crop`` the rectangle shrinks to the set pixels, as CVAT stores it; an empty bitmap
        gives a 0 x 0 mask.
        """
        bitmap = np.asarray(bitmap).astype(bool)
        if bitmap.ndim != 2:
            raise ValueError(f"a mask bitmap must be 2-D, got shape {bitmap.shape}")
        if crop:
            rows, cols = np.nonzero(bitmap)
            if rows.size == 0:
                return cls(left=left, top=top, width=0, height=0, rle=(), **shape_fields)
            r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
            bitmap, left, top = bitmap[r0:r1, c0:c1], left + int(c0), top + int(r0)
        flat = bitmap.ravel()
        change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
        edges = np.concatenate(([0], change, [flat.size]))
        runs = np.diff(edges).tolist()
        if flat.size and flat[0]:
            runs = [0, *runs]
        height, width = bitmap.shape
        return cls(left=left, top=top, width=width, height=height, rle=tuple(runs), **shape_fields)


SHAPE_TYPES: dict[str, type[Shape]] = {
    cls.type: cls for cls in (Polygon, Ellipse, Box, Polyline, Points, Mask)
}


@dataclass(frozen=True)
class Tag:
    """An image-level tag (CVAT ``<tag>``)."""

    label: str
    source: str = "manual"
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass
class ImageAnnotation:
    """One labeled image: its name as the label file gives it (it may hold sub-folders), its size in
    pixels, and its shapes in the order CVAT draws them (ascending ``z_order``, then file order)."""

    name: str
    width: int
    height: int
    shapes: list[Shape] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    id: int | None = None
    subset: str | None = None


@dataclass
class ReadReport:
    """What reading a label file skipped or changed, for the one-line summary.

    ``skipped`` counts skipped shapes by reason (``"polygon with fewer than 3 points"``, ...);
    ``clipped`` counts shapes with coordinates outside their image.
    """

    skipped: Counter[str] = field(default_factory=Counter)
    clipped: int = 0

    def skip(self, source: str, image: str, shape_type: str, index: int, reason: str) -> None:
        """Count a skipped shape; warn ``source: image 'a.png', polygon #3: <reason>; skipped``."""
        self.skipped[reason] += 1
        warnings.warn(
            f"{source}: image '{image}', {shape_type} #{index}: {reason}; skipped",
            LabelWarning,
            stacklevel=3,
        )


@dataclass
class Annotations:
    """A whole label file: its labels in the file's order and its images in the file's order."""

    labels: list[Label]
    images: list[ImageAnnotation]
    source: str = ""
    report: ReadReport = field(default_factory=ReadReport)

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    def shape_counts(self) -> Counter[str]:
        """Number of shapes per CVAT shape type over all images."""
        return Counter(shape.type for image in self.images for shape in image.shapes)
