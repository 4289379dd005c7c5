"""The one intensity rule every model input follows: each crop, tile or served image is min-max
scaled to [0, 1] on its own, in training, in tiled prediction and inside SavedModels alike."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def min_max(images: tf.Tensor | np.ndarray) -> tf.Tensor:
    """Min-max scale each image of a batch ``(B, H, W, C)`` (or one ``(H, W, C)``), float32, to
    [0, 1]; a constant image becomes zeros (never NaN). NumPy input gives a tensor."""
    axes = [-3, -2, -1]
    low = tf.reduce_min(images, axis=axes, keepdims=True)
    span = tf.reduce_max(images, axis=axes, keepdims=True) - low
    return tf.where(span > 0, (images - low) / tf.where(span > 0, span, 1.0), 0.0)
