"""Checks shared by every label reader: shapes that cannot be used, clipping to the image, the
number of pixels an image or mask may declare, label names, and how the text is encoded."""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import unicodedata
from collections.abc import Iterator
from os import PathLike

import numpy as np

from emdl.annotations import Box, Mask, Polygon, Polyline, Shape
from emdl.errors import InputError
from emdl.rasterize import shape_mask

_MIN_POINTS = {Polygon: 3, Polyline: 2}

MAX_PIXELS = 2**30
"""Most pixels (width x height) an image or a mask in a label file may declare: a 32768 x 32768
micrograph fits. Checked before anything of that size is allocated; the readers' ``max_pixels=``
raises it, and so does :func:`pixel_limit` (the command line's ``--max-pixels``) for every
reader called without it."""
_limit = MAX_PIXELS


def default_pixel_limit() -> int:
    """The limit a reader called without ``max_pixels=`` applies (:data:`MAX_PIXELS`, or what
    :func:`pixel_limit` set)."""
    return _limit


@contextlib.contextmanager
def pixel_limit(max_pixels: int) -> Iterator[None]:
    """Within the block, readers called without ``max_pixels=`` allow ``max_pixels`` pixels.
    A plain module setting, not a context variable, so that reader threads see it too."""
    global _limit
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels: expected a positive integer, got {max_pixels!r}")
    before, _limit = _limit, max_pixels
    try:
        yield
    finally:
        _limit = before


# Byte order marks, UTF-32 before UTF-16 (whose little-endian mark begins UTF-32's).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def pixels_problem(what: str, width: int, height: int, max_pixels: int) -> str | None:
    """``"<what> declares W x H pixels, more than the limit of N (...)"`` when
    ``width * height`` is more than ``max_pixels``, else None."""
    if width * height <= max_pixels:
        return None
    limit = str(max_pixels)
    if max_pixels > 0 and max_pixels & (max_pixels - 1) == 0:
        limit += f" (2^{max_pixels.bit_length() - 1})"
    return (
        f"{what} declares {width} x {height} pixels, more than the limit of {limit} "
        "(emdl --max-pixels N raises it)"
    )


def label_problem(name: str) -> str | None:
    """Why ``name`` cannot be a label name (it holds a control character such as a newline), or
    None when it is fine."""
    for char in name:
        if unicodedata.category(char) == "Cc":
            return f"label {name!r} has a control character (U+{ord(char):04X}) in its name"
    return None


def text_encoding(head: bytes) -> str:
    """The codec of a text file that begins with ``head`` (its first 4 bytes or more): from its
    byte order mark, else from the zero bytes around a first ASCII character (UTF-16 or UTF-32
    without a mark, as XML and JSON allow), else ``"utf-8"``."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    if len(head) >= 4 and head[1:4] == b"\0\0\0" and head[0]:
        return "utf-32-le"
    if len(head) >= 4 and head[:3] == b"\0\0\0" and head[3]:
        return "utf-32-be"
    if len(head) >= 2 and head[1] == 0 and head[0]:
        return "utf-16-le"
    if len(head) >= 2 and head[0] == 0 and head[1]:
        return "utf-16-be"
    return "utf-8"


def decode_text(path: str | PathLike, data: bytes, codec: str | None = None) -> str:
    """``data`` as text in ``codec`` (default :func:`text_encoding`), without a byte order mark.

    Raises:
        InputError: the bytes are not valid in that encoding; the message says to save as UTF-8.
    """
    codec = codec or text_encoding(data)
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        name = codec.upper().removesuffix("-SIG")
        raise InputError(
            path,
            f"not valid {name} text ({error.reason} at byte {error.start}); save it as UTF-8",
        ) from None


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
