"""Defects of a labeled image, measured like predictions so that the two can be compared."""

from __future__ import annotations

import numpy as np

from emdl.analysis.statistics import Defect, box_defect, mask_defects
from emdl.annotations import Box, ImageAnnotation, Points, Polyline
from emdl.rasterize import shape_box, shape_mask


def truth_defects(annotation: ImageAnnotation, *, as_boxes: bool = False) -> list[Defect]:
    """One :class:`Defect` per shape with an area in ``annotation`` (polylines and points have
    none and are left out), ids ``1..N`` in the image's shape order.

    Unturned boxes are measured as boxes, other shapes from their rasterized pixels, as a U-Net's
    masks are; with ``as_boxes`` every shape is measured as the box around it (clipped to the
    image), as a detector's predictions are.
    """
    height, width = annotation.height, annotation.width
    defects = []
    for shape in annotation.shapes:
        if isinstance(shape, (Polyline, Points)):
            continue
        number = len(defects) + 1
        if as_boxes or (isinstance(shape, Box) and shape.rotation % 360 == 0):
            x0, y0, x1, y1 = shape_box(shape, height, width)
            edge = x0 < 1 or y0 < 1 or x1 > width - 1 or y1 > height - 1
            defects.append(box_defect((x0, y0, x1, y1), shape.label, id=number, touches_edge=edge))
            continue
        mask = shape_mask(shape, height, width).astype(np.int32)
        (defect,) = mask_defects(mask, [shape.label])
        defects.append(Defect(**{**defect.__dict__, "id": number}))
    return defects
