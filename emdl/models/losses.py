"""Segmentation losses that compose: weighted sums of cross-entropy, Dice and focal terms."""

from __future__ import annotations

import keras
from keras import ops

TERMS = ("cross_entropy", "dice", "focal")


def _targets(y_true, classes: int):
    """Class indices ``(B, H, W, 1)`` to the model's output layout, float32."""
    if classes == 1:
        return ops.cast(y_true > 0, "float32")
    return ops.one_hot(ops.cast(y_true[..., 0], "int32"), classes + 1)


def soft_dice(target, probabilities, smooth: float = 1.0):
    """1 - Dice of the foreground channels, summed over the whole batch (a crop without objects
    then does not dominate), as a scalar."""
    if probabilities.shape[-1] > 1:  # channel 0 is the background of a softmax output
        target, probabilities = target[..., 1:], probabilities[..., 1:]
    axes = (0, 1, 2)
    overlap = ops.sum(target * probabilities, axis=axes)
    total = ops.sum(target, axis=axes) + ops.sum(probabilities, axis=axes)
    return 1 - ops.mean((2 * overlap + smooth) / (total + smooth))


@keras.saving.register_keras_serializable(package="emdl")
class SegmentationLoss(keras.losses.Loss):
    """``sum(weight * term)`` over ``terms``, e.g. ``{"cross_entropy": 1, "dice": 1}``.

    ``y_true`` holds class indices ``(B, H, W, 1)`` (0 background); ``y_pred`` the U-Net's
    probabilities: ``(B, H, W, 1)`` sigmoid when ``classes == 1``, else ``(B, H, W, classes + 1)``
    softmax. Terms: "cross_entropy" (binary or categorical), "dice" (soft Dice of the
    foreground, over the batch), "focal" (focal cross-entropy, gamma 2). ``class_weights``
    (one per channel of a softmax output, background first) weight each pixel's cross-entropy
    and focal terms by its true class.

    ``distance_weight`` > 0 (a distance U-Net): ``y_true`` has a second channel, the normalized
    distance map times 255, and ``y_pred`` a last one, the predicted map; their mean absolute
    error, times ``distance_weight``, is added.
    """

    def __init__(
        self,
        terms: dict[str, float] | None = None,
        classes: int = 1,
        name: str = "segmentation_loss",
        class_weights: list[float] | None = None,
        distance_weight: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.terms = dict(terms or {"cross_entropy": 1.0, "dice": 1.0})
        unknown = set(self.terms) - set(TERMS)
        if unknown or not self.terms:
            raise ValueError(f"loss terms must be among {TERMS}, got {sorted(self.terms)}")
        self.classes = classes
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        if self.class_weights is not None and len(self.class_weights) != classes + 1:
            raise ValueError(f"class_weights needs {classes + 1} weights (background first)")
        self.distance_weight = float(distance_weight)

    def call(self, y_true, y_pred):
        distance_error = 0.0
        if self.distance_weight:
            truth = ops.cast(y_true[..., 1], "float32") / 255.0
            error = ops.mean(ops.abs(y_pred[..., -1] - truth), axis=(1, 2))
            distance_error = self.distance_weight * error
            y_true, y_pred = y_true[..., :1], y_pred[..., :-1]
        target = _targets(y_true, self.classes)
        binary = self.classes == 1
        per_pixel = ops.zeros(ops.shape(y_pred)[:-1])
        if "cross_entropy" in self.terms:
            entropy = (
                keras.losses.binary_crossentropy(target, y_pred)
                if binary
                else keras.losses.categorical_crossentropy(target, y_pred)
            )
            per_pixel += self.terms["cross_entropy"] * entropy
        if "focal" in self.terms:
            focal = (
                keras.losses.binary_focal_crossentropy(target, y_pred, gamma=2.0)
                if binary
                else keras.losses.categorical_focal_crossentropy(target, y_pred, gamma=2.0)
            )
            per_pixel += self.terms["focal"] * focal
        if self.class_weights is not None:
            per_pixel *= ops.sum(target * ops.convert_to_tensor(self.class_weights), axis=-1)
        per_example = ops.mean(per_pixel, axis=(1, 2))
        if "dice" in self.terms:
            per_example += self.terms["dice"] * soft_dice(target, y_pred)
        return per_example + distance_error

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "terms": self.terms,
            "classes": self.classes,
            "class_weights": self.class_weights,
            "distance_weight": self.distance_weight,
        }
