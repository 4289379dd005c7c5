"""Scores of whole predicted masks against whole truth masks, pooled over images."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def score_masks(
    pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], classes: Sequence[str]
) -> dict:
    """Score ``(name, predicted, truth)`` class-index masks (0 background, ``i + 1`` =
    ``classes[i]``).

    Returns ``iou`` and ``dice`` (foreground; for several classes their mean), per class
    ``iou_<class>`` and ``dice_<class>``, ``pixel_accuracy``, all pooled over every pixel of every
    image, and ``images``: per image ``{"name", "iou", "dice"}``.
    """
    n = len(classes)
    counts = np.zeros((n, 3), np.int64)  # per class: TP, FP, FN
    right = total = 0
    images = []
    for name, predicted, truth in pairs:
        predicted, truth = np.asarray(predicted), np.asarray(truth)
        if predicted.shape != truth.shape:
            raise ValueError(f"{name}: prediction {predicted.shape} and truth {truth.shape} differ")
        per_image = np.zeros((n, 3), np.int64)
        for index in range(n):
            p, t = predicted == index + 1, truth == index + 1
            per_image[index] = [(p & t).sum(), (p & ~t).sum(), (~p & t).sum()]
        counts += per_image
        right += int((predicted == truth).sum())
        total += truth.size
        iou, dice = _scores(per_image)
        images.append({"name": name, "iou": float(iou.mean()), "dice": float(dice.mean())})
    iou, dice = _scores(counts)
    result = {"iou": float(iou.mean()), "dice": float(dice.mean())}
    for index, name in enumerate(classes):
        result[f"iou_{name}"] = float(iou[index])
        result[f"dice_{name}"] = float(dice[index])
    result["pixel_accuracy"] = right / total if total else 0.0
    result["images"] = images
    return result


def _scores(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tp, fp, fn = counts.T.astype(np.float64)
    union, both = tp + fp + fn, 2 * tp + fp + fn
    iou = np.where(union > 0, tp / np.maximum(union, 1), 1.0)
    dice = np.where(both > 0, 2 * tp / np.maximum(both, 1), 1.0)
    return iou, dice
