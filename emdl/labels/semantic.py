"""Semantic segmentation targets: one class index per pixel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from emdl.annotations import ImageAnnotation
from emdl.rasterize import class_mask, shape_mask


def semantic_mask(
    image: ImageAnnotation,
    classes: Sequence[str],
    *,
    line_width: float = 1.0,
    one_hot: bool = False,
    border_width: int = 0,
) -> np.ndarray:
    """Class-index mask of ``image``: uint8 ``(height, width)``, 0 = background and
    ``classes[i]`` = ``i + 1``, painted as :func:`emdl.rasterize.class_mask` says.

    ``classes`` are label names, usually ``Annotations.label_names`` (the file's label order); a
    shape whose label is not among them is a ValueError. ``line_width`` is in pixels, for polylines
    and points. With ``one_hot`` the result is uint8 ``(height, width, len(classes) + 1)`` with
    channel 0 the background.

    With ``border_width`` > 0, the pixels of an object that lie within ``border_width`` pixels
    (a square window, Chebyshev distance) of another object get the border class
    ``len(classes) + 1`` (:func:`touching_borders`): the target of an instance-aware U-Net,
    which learns where touching objects part.
    """
    mask = class_mask(image, classes, line_width=line_width)
    if border_width > 0:
        mask[touching_borders(instance_labels(image, line_width), border_width)] = len(classes) + 1
    if one_hot:
        return np.eye(len(classes) + 1, dtype=np.uint8)[mask]
    return mask


def object_distance(image: ImageAnnotation, line_width: float = 1.0) -> np.ndarray:
    """float32 ``(height, width)`` in [0, 1]: at each pixel, the largest over the shapes covering
    it of the pixel's distance to that shape's own outline divided by the shape's largest such
    distance; 0 on the background.

    Each object peaks at 1 at its centre whatever its size, and where two objects overlap (as
    cavities at different depths do in projection) the map dips between their centres by about
    half their centre distance over their radius, where the distance transform of their union
    hardly dips at all: the target whose peaks seed the distance U-Net's watershed
    (:func:`emdl.predict.instances.instances_from_distance`). The image edge is not an outline:
    an object cut by it keeps the distances of its visible part to its visible outline.
    """
    distance = np.zeros((image.height, image.width), dtype=np.float32)
    for shape in image.shapes:
        mask = shape_mask(shape, image.height, image.width, line_width=line_width)
        found = ndi.find_objects(mask.astype(np.uint8))
        if not found:
            continue
        rows, cols = found[0]
        # One pixel of margin, clipped at the image edge (not an outline, see above).
        rows = slice(max(rows.start - 1, 0), rows.stop + 1)
        cols = slice(max(cols.start - 1, 0), cols.stop + 1)
        own = ndi.distance_transform_edt(mask[rows, cols])
        np.maximum(distance[rows, cols], own / own.max(), out=distance[rows, cols])
    return distance


def instance_labels(image: ImageAnnotation, line_width: float = 1.0) -> np.ndarray:
    """Object ids int32 ``(height, width)``: 0 background, ``i`` the pixels of the image's
    ``i``-th shape (1-based), painted in the image's order like :func:`class_mask`."""
    labels = np.zeros((image.height, image.width), dtype=np.int32)
    for index, shape in enumerate(image.shapes, start=1):
        labels[shape_mask(shape, image.height, image.width, line_width=line_width)] = index
    return labels


def touching_borders(labels: np.ndarray, width: int) -> np.ndarray:
    """bool ``(H, W)``: the object pixels of ``labels`` (int, 0 background) that have a pixel of
    another object within ``width`` pixels (a ``2 * width + 1`` square window). Where objects
    touch or nearly touch this is a band ``width`` pixels deep on each side; elsewhere nothing,
    so the objects' outlines towards the background stay theirs."""
    if width < 1:
        raise ValueError(f"border width must be at least 1 pixel, got {width}")
    size = 2 * width + 1
    highest = ndi.maximum_filter(labels, size=size, mode="nearest")
    # The lowest object id nearby: the background counts as larger than any id.
    ids = np.where(labels > 0, labels, np.iinfo(np.int32).max)
    lowest = ndi.minimum_filter(ids, size=size, mode="nearest")
    return (labels > 0) & ((highest != labels) | (lowest != labels))
