"""Semantic segmentation targets: one class index per pixel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emdl.annotations import ImageAnnotation
from emdl.rasterize import class_mask


def semantic_mask(
    image: ImageAnnotation,
    classes: Sequence[str],
    *,
    line_width: float = 1.0,
    one_hot: bool = False,
) -> np.ndarray:
    """Class-index mask of ``image``: uint8 ``(height, width)``, 0 = background and
    ``classes[i]`` = ``i + 1``, painted as :func:`emdl.rasterize.class_mask` says.

    ``classes`` are label names, usually ``Annotations.label_names`` (the file's label order); a
    shape whose label is not among them is a ValueError. ``line_width`` is in pixels, for polylines
    and points. With ``one_hot`` the result is uint8 ``(height, width, len(classes) + 1)`` with
    channel 0 the background.
    """
    mask = class_mask(image, classes, line_width=line_width)
    if one_hot:
        return np.eye(len(classes) + 1, dtype=np.uint8)[mask]
    return mask
