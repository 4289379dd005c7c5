"""Detection and instance targets: one box, class and mask per shape."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emdl.annotations import ImageAnnotation, Points, Polyline, Shape
from emdl.labels.rasterize import shape_mask
from emdl.labels.semantic import class_index


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


def convert_boxes(
    boxes: np.ndarray, source: str, target: str, *, height: int, width: int
) -> np.ndarray:
    """Convert float32 ``(N, 4)`` boxes between keras-cv's named formats ("xyxy", "xywh",
    "center_xywh", "rel_xyxy", "yxyx", ...) with ``keras.utils.bounding_boxes``."""
    if source == target:
        return boxes
    from keras.utils import bounding_boxes  # imported here: it loads TensorFlow

    converted = bounding_boxes.convert_format(boxes, source, target, height=height, width=width)
    return np.asarray(converted, dtype=np.float32).reshape(-1, 4)


def boxes(
    image: ImageAnnotation,
    classes: Sequence[str],
    *,
    bounding_box_format: str = "xyxy",
    line_width: float = 1.0,
) -> dict[str, np.ndarray]:
    """Detection targets of ``image``: ``{"boxes": float32 (N, 4) in bounding_box_format,
    "classes": int32 (N,)}``, one row per shape in the image's order; class ``i`` is
    ``classes[i]`` (0-based, no background class, as keras-cv expects)."""
    xyxy = np.zeros((len(image.shapes), 4), dtype=np.float32)
    for row, shape in enumerate(image.shapes):
        xyxy[row] = shape_box(shape, image.height, image.width, line_width=line_width)
    indices = [class_index(shape.label, classes, image.name) for shape in image.shapes]
    return {
        "boxes": convert_boxes(
            xyxy, "xyxy", bounding_box_format, height=image.height, width=image.width
        ),
        "classes": np.array(indices, dtype=np.int32),
    }


def instances(
    image: ImageAnnotation,
    classes: Sequence[str],
    *,
    bounding_box_format: str = "xyxy",
    line_width: float = 1.0,
) -> dict[str, np.ndarray]:
    """Mask R-CNN targets of ``image``: :func:`boxes` plus ``"masks"``, uint8 0/1
    ``(N, height, width)``, the full (unoccluded) pixels of each shape."""
    targets = boxes(image, classes, bounding_box_format=bounding_box_format, line_width=line_width)
    masks = np.zeros((len(image.shapes), image.height, image.width), dtype=np.uint8)
    for index, shape in enumerate(image.shapes):
        masks[index] = shape_mask(shape, image.height, image.width, line_width=line_width)
    targets["masks"] = masks
    return targets
