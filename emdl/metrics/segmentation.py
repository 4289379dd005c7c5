"""Segmentation scores: foreground IoU (Jaccard) and Dice per class, and pixel accuracy.

The lecture's IoU is the foreground Jaccard index of the mask thresholded at 0.5:
``|P & T| / |P | T|``. The Keras metrics accumulate pixel counts over everything they see, so a
score over many crops equals the score of one big image; the NumPy functions score whole masks.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def iou_score(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Jaccard index of two boolean masks of one shape; 1.0 when both are empty."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    union = np.logical_or(predicted, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(predicted, truth).sum() / union)


def dice_score(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient of two boolean masks of one shape; 1.0 when both are empty."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    total = predicted.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(predicted, truth).sum() / total)


class _PixelCounts(keras.metrics.Metric):
    """Accumulates true/false positives and negatives of ``class_id`` over all pixels seen.

    ``y_true``: class indices ``(B, H, W, 1)``; ``y_pred``: probabilities, ``(B, H, W, 1)``
    sigmoid (foreground where > ``threshold``) or ``(B, H, W, C)`` softmax (the arg-max class).
    ``probabilities``: how many leading channels of ``y_pred`` are those (None: all; a distance
    U-Net's last channel is not).
    """

    score_name = "counts"

    def __init__(
        self,
        class_id: int = 1,
        threshold: float = 0.5,
        name=None,
        probabilities: int | None = None,
        **kwargs,
    ):
        default = self.score_name if class_id == 1 else f"{self.score_name}_{class_id}"
        super().__init__(name=name or default, **kwargs)
        self.class_id, self.threshold = class_id, threshold
        self.probabilities = probabilities
        self.counts = self.add_variable(shape=(4,), initializer="zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.probabilities is not None:
            y_pred = y_pred[..., : self.probabilities]
        self._update(y_true, y_pred)

    def _classes(self, y_pred):
        if y_pred.shape[-1] == 1:
            return ops.cast(y_pred[..., 0] > self.threshold, "int32")
        return ops.cast(ops.argmax(y_pred, axis=-1), "int32")

    def _update(self, y_true, y_pred):
        truth = ops.cast(y_true[..., 0], "int32")
        predicted = self._classes(y_pred)
        if y_pred.shape[-1] == 1:
            truth = ops.cast(truth > 0, "int32")
        t, p = truth == self.class_id, predicted == self.class_id
        count = lambda mask: ops.sum(ops.cast(mask, "float32"))  # noqa: E731
        self.counts.assign_add(
            ops.stack([count(t & p), count(~t & p), count(t & ~p), count(~t & ~p)])
        )

    def reset_state(self):
        self.counts.assign(ops.zeros((4,)))

    def get_config(self):
        return {
            **super().get_config(),
            "class_id": self.class_id,
            "threshold": self.threshold,
            "probabilities": self.probabilities,
        }


@keras.saving.register_keras_serializable(package="emdl")
class ForegroundIoU(_PixelCounts):
    """IoU (Jaccard) of ``class_id``: TP / (TP + FP + FN) over all pixels seen."""

    score_name = "iou"

    def result(self):
        tp, fp, fn, _ = ops.unstack(self.counts)
        return ops.divide_no_nan(tp, tp + fp + fn)


@keras.saving.register_keras_serializable(package="emdl")
class ForegroundDice(_PixelCounts):
    """Dice of ``class_id``: 2 TP / (2 TP + FP + FN) over all pixels seen."""

    score_name = "dice"

    def result(self):
        tp, fp, fn, _ = ops.unstack(self.counts)
        return ops.divide_no_nan(2 * tp, 2 * tp + fp + fn)


@keras.saving.register_keras_serializable(package="emdl")
class PixelAccuracy(_PixelCounts):
    """Share of pixels whose predicted class is right (for one class: foreground or not)."""

    score_name = "pixel_accuracy"

    def _update(self, y_true, y_pred):
        truth = ops.cast(y_true[..., 0], "int32")
        if y_pred.shape[-1] == 1:
            truth = ops.cast(truth > 0, "int32")
        right = ops.sum(ops.cast(truth == self._classes(y_pred), "float32"))
        total = ops.cast(ops.size(truth), "float32")
        self.counts.assign_add(ops.stack([right, total - right, 0.0, 0.0]))

    def result(self):
        right, wrong, _, _ = ops.unstack(self.counts)
        return ops.divide_no_nan(right, right + wrong)
