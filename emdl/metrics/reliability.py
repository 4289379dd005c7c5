"""Does the uncertainty mean something? How often predicted defects are wrong, by how many of the
eight flips and quarter turns of the image found them (:mod:`emdl.predict.uncertainty`).

Each predicted defect of a labeled image is matched to the truth greedily, by descending score,
to the still unmatched labeled object of highest IoU if that is at least 0.5 (pixel IoU for masks,
box IoU for boxes; classes not compared: a defect is right when it is where a labeled one is).
A defect that matches none is wrong (a false positive). The table has one row per number of
agreeing views, 1 (only the prediction itself) to 8 (every view): a calibrated uncertainty has
error rates falling as the views agree more. The labeled objects no defect matched (missed) are
counted beside it; the views' unexplained defects often point at them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from emdl.annotations import ImageAnnotation
from emdl.boxes import box_iou
from emdl.data.sources import LabeledImage
from emdl.io.image import read_image
from emdl.predict.instances import Instances
from emdl.predict.tta import VIEWS
from emdl.predict.uncertainty import IOU_THRESHOLD, Agreement, view_agreement
from emdl.rasterize import image_boxes, shape_mask


def _truth_iou(found: Agreement, truth: ImageAnnotation, classes: Sequence[str]) -> np.ndarray:
    """IoU float64 ``(N, M)`` of the N predicted defects with the M labeled objects of
    ``classes``: pixel IoU when the prediction has masks, else box IoU."""
    instances = found.instances
    if instances.labels is None:
        boxes, _ = image_boxes(truth, classes)
        return box_iou(instances.boxes, np.asarray(boxes, np.float64).reshape(-1, 4))
    shapes = [s for s in truth.shapes if s.label in classes]
    count = len(instances)
    areas = np.bincount(instances.labels.ravel(), minlength=count + 1)[1:]
    iou = np.zeros((count, len(shapes)))
    for j, shape in enumerate(shapes):
        mask = shape_mask(shape, truth.height, truth.width)
        inter = np.bincount(instances.labels[mask], minlength=count + 1)[1:]
        union = areas + mask.sum() - inter
        iou[:, j] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return iou


def correct_defects(iou: np.ndarray, scores: np.ndarray, iou_threshold: float = IOU_THRESHOLD):
    """bool ``(N,)``: which predicted defects match a labeled object (greedy by descending
    score, stable, each to the free object of highest IoU >= ``iou_threshold``), and the number
    of labeled objects left unmatched."""
    free = np.ones(iou.shape[1], bool)
    hits = np.zeros(iou.shape[0], bool)
    for row in np.argsort(-np.asarray(scores, np.float64), kind="stable"):
        candidates = np.where(free & (iou[row] >= iou_threshold), iou[row], -1.0)
        if candidates.size and candidates.max() >= 0:
            best = int(candidates.argmax())
            free[best], hits[row] = False, True
    return hits, int(free.sum())


def reliability_table(
    images: Iterable[tuple[Agreement, ImageAnnotation]], classes: Sequence[str]
) -> dict:
    """The reliability of ``(agreement, truth)`` pairs of labeled images (see the module):
    ``{"rows": [{"views": k, "objects", "wrong", "error_rate"}] for k = 1..8, "objects",
    "wrong", "missed"}``; ``error_rate`` is None for a row without objects."""
    objects = np.zeros(VIEWS + 1, int)
    wrong = np.zeros(VIEWS + 1, int)
    missed = 0
    for found, truth in images:
        hits, left = correct_defects(_truth_iou(found, truth, classes), found.instances.scores)
        views = np.rint(found.agreement * VIEWS).astype(int)
        np.add.at(objects, views, 1)
        np.add.at(wrong, views, (~hits).astype(int))
        missed += left
    rows = [
        {
            "views": k,
            "objects": int(objects[k]),
            "wrong": int(wrong[k]),
            "error_rate": float(wrong[k] / objects[k]) if objects[k] else None,
        }
        for k in range(1, VIEWS + 1)
    ]
    return {
        "rows": rows,
        "objects": int(objects.sum()),
        "wrong": int(wrong.sum()),
        "missed": missed,
    }


def reliability_line(table: dict) -> str:
    """The table in one line, the rows with objects: ``8 of 8 views: 1 of 40 wrong; ...``."""
    parts = [
        f"{r['views']} of 8 views: {r['wrong']} of {r['objects']} wrong"
        for r in reversed(table["rows"])
        if r["objects"]
    ]
    found = "; ".join(parts) if parts else "no predicted defects"
    return f"reliability: {found}; {table['missed']} labeled defects missed"


def labeled_reliability(
    predict: Callable[[np.ndarray], Instances],
    records: Sequence[LabeledImage],
    classes: Sequence[str],
) -> dict:
    """:func:`reliability_table` of ``predict`` (an image float32 ``(H, W)`` in [0, 1] to its
    defects) on labeled ``records``, read one at a time; 8 predictions per image."""
    pairs = ((view_agreement(predict, read_image(r.path)), r.annotation) for r in records)
    return reliability_table(pairs, classes)
