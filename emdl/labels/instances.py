"""Detection and instance targets: one box, class and mask per shape."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emdl.annotations import ImageAnnotation
from emdl.rasterize import image_boxes, shape_mask


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


def box_targets(
    image: ImageAnnotation,
    classes: Sequence[str],
    *,
    bounding_box_format: str = "xyxy",
    line_width: float = 1.0,
) -> dict[str, np.ndarray]:
    """Detection targets of ``image``: ``{"boxes": float32 (N, 4) in bounding_box_format,
    "classes": int32 (N,)}``, one row per shape in the image's order; class ``i`` is
    ``classes[i]`` (0-based, no background class, as keras-cv expects)."""
    xyxy, indices = image_boxes(image, classes, line_width=line_width)
    return {
        "boxes": convert_boxes(
            xyxy, "xyxy", bounding_box_format, height=image.height, width=image.width
        ),
        "classes": indices,
    }


def instance_targets(
    image: ImageAnnotation,
    classes: Sequence[str],
    *,
    bounding_box_format: str = "xyxy",
    line_width: float = 1.0,
) -> dict[str, np.ndarray]:
    """Mask R-CNN targets of ``image``: :func:`box_targets` plus ``"masks"``, uint8 0/1
    ``(N, height, width)``, the full (unoccluded) pixels of each shape."""
    targets = box_targets(
        image, classes, bounding_box_format=bounding_box_format, line_width=line_width
    )
    masks = np.zeros((len(image.shapes), image.height, image.width), dtype=np.uint8)
    for index, shape in enumerate(image.shapes):
        masks[index] = shape_mask(shape, image.height, image.width, line_width=line_width)
    targets["masks"] = masks
    return targets
