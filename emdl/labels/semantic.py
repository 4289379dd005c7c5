"""Semantic segmentation targets: one class index per pixel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emdl.annotations import ImageAnnotation
from emdl.labels.rasterize import shape_mask


def class_index(label: str, classes: Sequence[str], image: str) -> int:
    """0-based position of ``label`` in ``classes``; a ValueError naming the image if absent."""
    try:
        return list(classes).index(label)
    except ValueError:
        raise ValueError(
            f"image '{image}': label '{label}' is not among the classes {list(classes)}"
        ) from None


def semantic_mask(
    image: ImageAnnotation,
    classes: Sequence[str],
    *,
    line_width: float = 1.0,
    one_hot: bool = False,
) -> np.ndarray:
    """Class-index mask of ``image``: uint8 ``(height, width)``, 0 = background and
    ``classes[i]`` = ``i + 1``. Shapes are painted in the image's order (ascending ``z_order``), so
    later ones cover earlier ones, as CVAT draws them.

    ``classes`` are label names, usually ``Annotations.label_names`` (the file's label order); a
    shape whose label is not among them is a ValueError. ``line_width`` is in pixels, for polylines
    and points. With ``one_hot`` the result is uint8 ``(height, width, len(classes) + 1)`` with
    channel 0 the background.
    """
    if len(classes) > 255:
        raise ValueError(f"a uint8 mask holds at most 255 classes, got {len(classes)}")
    mask = np.zeros((image.height, image.width), dtype=np.uint8)
    for shape in image.shapes:
        value = class_index(shape.label, classes, image.name) + 1
        mask[shape_mask(shape, image.height, image.width, line_width=line_width)] = value
    if one_hot:
        return np.eye(len(classes) + 1, dtype=np.uint8)[mask]
    return mask
