"""Segmenting whole micrographs with a trained U-Net."""

from __future__ import annotations

import keras
import numpy as np

from emdl.predict.tiled import predict_image


def classes_from_probabilities(probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Class indices uint8 ``(H, W)`` from probabilities ``(H, W, C)``: foreground where the one
    sigmoid channel exceeds ``threshold``, else the arg-max of the softmax channels."""
    if probabilities.shape[-1] == 1:
        return (probabilities[..., 0] > threshold).astype(np.uint8)
    return probabilities.argmax(axis=-1).astype(np.uint8)


def segment_image(
    model: keras.Model,
    image: np.ndarray,
    *,
    tile: int = 256,
    overlap: int = 64,
    multiple: int = 16,
    batch_size: int = 8,
    threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities float32 ``(H, W, C)`` and class indices uint8 ``(H, W)`` of ``image``
    (float32 ``(H, W)``, any size), predicted in blended tiles (:func:`predict_image`)."""
    probabilities = predict_image(
        model.predict_on_batch,
        image,
        tile=tile,
        overlap=overlap,
        multiple=multiple,
        batch_size=batch_size,
    )
    return probabilities, classes_from_probabilities(probabilities, threshold)
