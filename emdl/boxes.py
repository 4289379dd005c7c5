"""Box geometry in NumPy, the one rule for box areas, intersections and IoU that scoring
(:mod:`emdl.metrics.detection`) and merging tiles (:mod:`emdl.predict.detect`) share.

Boxes are float ``(N, 4)`` "xyxy" in pixels; a box's area is ``(x1 - x0) * (y1 - y0)`` with no
+1 on widths (as modern pycocotools), and an inverted side counts as 0.
"""

from __future__ import annotations

import numpy as np


def as_boxes(boxes, name: str) -> np.ndarray:
    """``boxes`` as float64 ``(N, 4)`` (an empty input becomes ``(0, 4)``); a ValueError naming
    ``name`` for any other shape."""
    boxes = np.asarray(boxes, np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name}: boxes must be (N, 4) xyxy, got shape {boxes.shape}")
    return boxes


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas ``(N,)`` of "xyxy" ``boxes`` ``(N, 4)``, square pixels."""
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def box_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection areas ``(N, M)`` of every box of ``a`` ``(N, 4)`` with every box of ``b``
    ``(M, 4)``, "xyxy"."""
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.prod(np.clip(high - low, 0, None), axis=-1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` with every box of ``b``.

    Parameters
    ----------
    a, b : array_like, ``(N, 4)`` and ``(M, 4)``
        Boxes "xyxy" in pixels; no +1 on widths, as modern pycocotools.

    Returns
    -------
    numpy.ndarray
        float64 ``(N, M)``; 0 where the union is empty (two degenerate boxes).
    """
    a, b = as_boxes(a, "a"), as_boxes(b, "b")
    inter = box_intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
