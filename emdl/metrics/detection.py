"""Detection scores: COCO average precision, and precision/recall/F1 and count errors at the
score threshold that maximizes F1.

Boxes are "xyxy" in pixels throughout. AP comes from pycocotools so the numbers are comparable
with published COCO-style results; the thresholded scores use the same greedy matching as COCO
(detections in descending score, each to the unmatched truth of highest IoU >= the threshold).
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from emdl.boxes import as_boxes, box_area, box_iou


def match_detections(
    pred_boxes: np.ndarray,
    pred_scores: np.ndarray,
    true_boxes: np.ndarray,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """Greedy true-positive flags of one image and one class.

    Detections are taken in descending score (stable, so equal scores keep input order) and each
    matches the still unmatched truth of highest IoU, if that IoU >= ``iou_threshold``.

    Parameters
    ----------
    pred_boxes : array_like, float ``(N, 4)``, "xyxy"
    pred_scores : array_like, float ``(N,)``; need not be sorted.
    true_boxes : array_like, float ``(M, 4)``, "xyxy"
    iou_threshold : float

    Returns
    -------
    numpy.ndarray
        bool ``(N,)`` in the input order of the detections.
    """
    pred_boxes, true_boxes = as_boxes(pred_boxes, "pred_boxes"), as_boxes(true_boxes, "true_boxes")
    pred_scores = np.asarray(pred_scores, np.float64).reshape(-1)
    if len(pred_scores) != len(pred_boxes):
        raise ValueError(f"{len(pred_scores)} scores for {len(pred_boxes)} boxes")
    return _matches(box_iou(pred_boxes, true_boxes), pred_scores, iou_threshold) >= 0


def _matches(iou: np.ndarray, pred_scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """:func:`match_detections` on the detections' ``(N, M)`` IoU with the truth, as int64
    ``(N,)``: the index of the truth each detection matched, -1 for none."""
    free = np.ones(iou.shape[1], bool)
    matched = np.full(iou.shape[0], -1, np.int64)
    for row in np.argsort(-pred_scores, kind="stable"):
        candidates = np.where(free & (iou[row] >= iou_threshold), iou[row], -1.0)
        if candidates.size and candidates.max() >= 0:
            best = int(candidates.argmax())
            free[best], matched[row] = False, best
    return matched


def detection_errors(
    images: Iterable[tuple[str, dict, dict]],
    classes: Sequence[str],
    score_threshold: float,
    *,
    loose_iou: float = 0.3,
    size_groups: int = 4,
) -> dict:
    """Where a detector's errors are, at ``score_threshold``: which labeled objects it misses,
    by size; how many of its detections have no labeled object near them; whether its boxes are
    placed and sized right.

    ``images`` as :func:`score_detections` takes them (boxes "xyxy" pixels); detections with a
    score >= ``score_threshold`` count. Matching is :func:`match_detections`' within image and
    class.

    Returns
    -------
    dict
        Plain Python numbers, JSON-ready:

        - ``missed_by_size``: the labeled objects in ``size_groups`` groups of (as near as
          possible) equal numbers by size, the square root of the box area in image pixels, the
          smallest first; per group ``{"smallest_px", "largest_px", "objects", "missed"}``,
          ``missed`` the objects no detection matches at IoU 0.5.
        - ``detections``, ``unlabeled``: the detections kept, and those whose IoU with every
          labeled object of their class is below ``loose_iou`` (false detections of objects not
          labeled or not there, rather than misplaced boxes).
        - ``f1_50``, ``f1_loose``: F1 at IoU 0.5 and at ``loose_iou`` (the gap is what better
          placed boxes could gain).
        - ``size_ratio_median``: over the detections matched at IoU 0.5, the median of the
          square root of the detected over the labeled box area; 0.0 without any.

    Raises
    ------
    ValueError
        As :func:`score_detections`, or when ``size_groups`` < 1.
    """
    if size_groups < 1:
        raise ValueError(f"size_groups must be >= 1, not {size_groups}")
    sizes, found, kept, unlabeled, ratios, loose_hits, hits = [], [], 0, 0, [], 0, 0
    for name, predicted, truth in images:
        boxes, labels, scores, true_boxes, true_labels = _arrays(name, predicted, truth, classes)
        keep = scores >= score_threshold
        boxes, labels, scores = boxes[keep], labels[keep], scores[keep]
        kept += len(boxes)
        image_found = np.zeros(len(true_boxes), bool)
        for k in range(len(classes)):
            mine, theirs = np.flatnonzero(labels == k), np.flatnonzero(true_labels == k)
            iou = box_iou(boxes[mine], true_boxes[theirs])
            matched = _matches(iou, scores[mine], 0.5)
            image_found[theirs[matched[matched >= 0]]] = True
            hits += int((matched >= 0).sum())
            loose_hits += int((_matches(iou, scores[mine], loose_iou) >= 0).sum())
            unlabeled += int((iou.max(axis=1, initial=0.0) < loose_iou).sum())
            pairs = matched >= 0
            if pairs.any():
                area = box_area(boxes[mine][pairs]) / box_area(true_boxes[theirs][matched[pairs]])
                ratios.extend(np.sqrt(area))
        sizes.extend(np.sqrt(box_area(true_boxes)))
        found.extend(image_found)
    sizes, found = np.asarray(sizes, np.float64), np.asarray(found, bool)
    order = np.argsort(sizes, kind="stable")
    groups = []
    for part in np.array_split(order, size_groups):
        if len(part):
            groups.append({
                "smallest_px": float(sizes[part].min()),
                "largest_px": float(sizes[part].max()),
                "objects": len(part),
                "missed": int((~found[part]).sum()),
            })  # fmt: skip
    objects = len(sizes)
    return {
        "missed_by_size": groups,
        "detections": kept,
        "unlabeled": unlabeled,
        "f1_50": 2 * hits / (kept + objects) if kept + objects else 0.0,
        "f1_loose": 2 * loose_hits / (kept + objects) if kept + objects else 0.0,
        "size_ratio_median": float(np.median(ratios)) if ratios else 0.0,
    }


def score_detections(images: Iterable[tuple[str, dict, dict]], classes: Sequence[str]) -> dict:
    """Score ``(name, predicted, truth)`` detections of ``classes``, pooled over all images.

    ``predicted``: ``"boxes"`` float ``(N, 4)`` "xyxy" pixels, ``"classes"`` int ``(N,)`` 0-based
    indices into ``classes``, ``"scores"`` float ``(N,)``; ``truth``: ``"boxes"`` ``(M, 4)`` and
    ``"classes"`` ``(M,)``.

    Returns
    -------
    dict
        Plain Python numbers, JSON-ready:

        - ``ap50``, ``ap50_95``: pycocotools AP (101-point) at IoU 0.5 and averaged over IoU
          0.50:0.05:0.95, all areas, no cap on detections per image, mean over the classes that
          have truth; 0.0 when no class has any.
        - ``precision50``, ``recall50``, ``f1_50``, ``score_threshold``: detections with score >=
          the threshold, matched at IoU >= 0.5 within image and class, pooled. The threshold is the
          distinct detection score with the highest F1, the lowest such score on ties (keeping more
          detections costs nothing there). Without detections all four are 0.0; a ratio with a
          zero denominator is 0.0.
        - ``count_error``, ``count_bias``: mean over images of |detected - true| and of
          detected - true, counting detections at the threshold; 0.0 without images.
        - ``images``: per image ``{"name", "true", "detected", "tp"}`` at the threshold.
        - ``detections``, ``objects``: totals (detections of any score).

    Raises
    ------
    ValueError
        When boxes are not ``(N, 4)``, lengths differ or a class index is out of range.
    """
    records = []  # (name, boxes, classes, scores, true boxes, true classes, tp flags)
    for name, predicted, truth in images:
        boxes, labels, scores, true_boxes, true_labels = _arrays(name, predicted, truth, classes)
        tp = np.zeros(len(boxes), bool)
        for k in range(len(classes)):
            mine, theirs = labels == k, true_labels == k
            tp[mine] = match_detections(boxes[mine], scores[mine], true_boxes[theirs])
        records.append((name, boxes, labels, scores, true_boxes, true_labels, tp))
    coco_images = [{"id": i + 1} for i in range(len(records))]
    ap50, ap50_95 = _coco_ap(coco_images, *_box_annotations(records), len(classes))
    scores = np.concatenate([r[3] for r in records]) if records else np.zeros(0)
    tp = np.concatenate([r[6] for r in records]) if records else np.zeros(0, bool)
    objects = sum(len(r[4]) for r in records)
    precision = recall = f1 = threshold = 0.0
    # Matching in descending score means a detection's flag depends only on higher scores, so
    # the flags of one matching hold at every threshold and the sweep needs no re-matching.
    if len(scores):
        order = np.argsort(-scores, kind="stable")
        sorted_scores, hits = scores[order], np.cumsum(tp[order])
        # Only the last detection of a run of equal scores is a threshold one can set.
        ends = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
        f1s = 2 * hits[ends] / (ends + 1 + objects)
        best = ends[len(ends) - 1 - int(np.argmax(f1s[::-1]))]  # last maximum: lowest score
        threshold, f1 = float(sorted_scores[best]), float(2 * hits[best] / (best + 1 + objects))
        precision = float(hits[best] / (best + 1))
        recall = float(hits[best] / objects) if objects else 0.0
    per_image = []
    for name, _, _, image_scores, true_boxes, _, image_tp in records:
        kept = image_scores >= threshold
        counts = {"true": len(true_boxes), "detected": int(kept.sum())}
        per_image.append({"name": name, **counts, "tp": int(image_tp[kept].sum())})
    errors = np.array([p["detected"] - p["true"] for p in per_image], np.float64)
    return {
        "ap50": ap50,
        "ap50_95": ap50_95,
        "precision50": precision,
        "recall50": recall,
        "f1_50": f1,
        "score_threshold": threshold,
        "count_error": float(np.abs(errors).mean()) if len(errors) else 0.0,
        "count_bias": float(errors.mean()) if len(errors) else 0.0,
        "images": per_image,
        "detections": len(scores),
        "objects": objects,
    }


def _coco_ap(
    images: list[dict],
    truth: list[dict],
    found: list[dict],
    num_classes: int,
    iou_type: str = "bbox",
) -> tuple[float, float]:
    """AP at IoU 0.5 and mean AP over 0.50:0.95 from pycocotools, built in memory.

    ``images``: COCO image entries (``"id"`` from 1; with ``"height"`` and ``"width"`` for
    ``iou_type="segm"``, which pycocotools reads). ``truth``, ``found``: COCO annotations without
    ids (``"image_id"``, ``"category_id"`` 1-based, ``"area"``, ``"iscrowd"`` on truth, ``"score"``
    on found, and ``"bbox"`` or ``"segmentation"`` for ``iou_type``); ids are set here.
    """
    info = {
        "images": images,
        "categories": [{"id": k + 1, "name": str(k)} for k in range(num_classes)],
    }
    # Annotation ids start at 1: COCOeval stores matched truth ids and reads id 0 as unmatched.
    for number, annotation in enumerate(truth + found):
        annotation["id"] = number + 1
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports progress on stdout
        coco_truth, coco_found = COCO(), COCO()
        coco_truth.dataset = {**info, "annotations": truth}
        coco_found.dataset = {**info, "annotations": found}
        coco_truth.createIndex()
        coco_found.createIndex()
        evaluation = COCOeval(coco_truth, coco_found, iou_type)
        evaluation.params.areaRng, evaluation.params.areaRngLbl = [[0, 1e10]], ["all"]
        # The default cap of 100 detections per image would cut dense loop images.
        most = max(Counter(a["image_id"] for a in found).values(), default=0)
        evaluation.params.maxDets = [max(most, 100)]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # (IoU thresholds, recalls, classes)
    present = (precision > -1).all(axis=(0, 1))  # COCO leaves -1 for classes without truth
    if not present.any():
        return 0.0, 0.0
    per_threshold = precision[:, :, present].mean(axis=(1, 2))
    return float(per_threshold[0]), float(per_threshold.mean())


def _box_annotations(records: list) -> tuple[list[dict], list[dict]]:
    """COCO box annotations (truth, found) of score_detections' records, without ids."""
    truth, found = [], []
    for i, (_, boxes, labels, scores, true_boxes, true_labels, _) in enumerate(records):
        for box, label in zip(true_boxes, true_labels, strict=True):
            truth.append(_annotation(i, box, label))
        for box, label, score in zip(boxes, labels, scores, strict=True):
            found.append({**_annotation(i, box, label), "score": float(score)})
    return truth, found


def _annotation(image: int, box: np.ndarray, label: int) -> dict:
    x0, y0, x1, y1 = (float(v) for v in box)
    return {
        "image_id": image + 1,
        "category_id": int(label) + 1,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": (x1 - x0) * (y1 - y0),
        "iscrowd": 0,
    }


def _arrays(name: str, predicted: dict, truth: dict, classes: Sequence[str]) -> tuple:
    """``(boxes, classes, scores, true boxes, true classes)`` of one image as checked arrays."""
    boxes, labels = as_boxes(predicted["boxes"], name), _classes(predicted, classes, name)
    scores = np.asarray(predicted["scores"], np.float64).reshape(-1)
    true_boxes, true_labels = as_boxes(truth["boxes"], name), _classes(truth, classes, name)
    if not len(scores) == len(labels) == len(boxes) or len(true_labels) != len(true_boxes):
        raise ValueError(f"{name}: boxes, classes and scores differ in length")
    return boxes, labels, scores, true_boxes, true_labels


def _classes(labels: dict, classes: Sequence[str], name: str) -> np.ndarray:
    values = np.asarray(labels["classes"]).reshape(-1)
    indices = values.astype(np.int64)
    if (indices != values).any() or (indices < 0).any() or (indices >= len(classes)).any():
        raise ValueError(f"{name}: classes must be integer indices into {list(classes)}")
    return indices
