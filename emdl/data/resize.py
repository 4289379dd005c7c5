"""How micrographs are resized before a model sees them, the same way in training and prediction.

A detector learns objects at the pixel size it saw them; micrographs taken at another
magnification (loops111 mixes 1024 and 2048 pixel images of the same field) are brought to a
common scale first: by a fixed factor, or so that the longer side has a set number of pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class Resize:
    """Resize by ``scale`` or, when ``longest_side`` (pixels) is set, so that the longer side of
    the image is ``longest_side`` pixels.

    The rule is written once, in TensorFlow, so that the training pipeline, ``emdl predict``
    (NumPy in and out, :meth:`shape` and :meth:`image`) and a SavedModel (tensors of any size,
    :meth:`size_tensor` and :func:`resize_images`) resize identically.
    """

    scale: float = 1.0
    longest_side: int | None = None

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        if self.longest_side is not None and self.longest_side < 1:
            raise ValueError(f"longest_side must be at least 1 pixel, got {self.longest_side}")

    @property
    def identity(self) -> bool:
        return self.scale == 1 and self.longest_side is None

    def size_tensor(self, height, width) -> tf.Tensor:
        """The resized size int32 ``(2,)`` (height, width) of a ``height x width`` image (ints or
        scalar tensors): each side times the factor, rounded half to even, at least 1."""
        size = tf.cast(tf.stack([height, width]), tf.float64)
        factor = (
            tf.constant(self.scale, tf.float64)
            if self.longest_side is None
            else self.longest_side / tf.reduce_max(size)
        )
        return tf.maximum(tf.cast(tf.round(size * factor), tf.int32), 1)

    def shape(self, height: int, width: int) -> tuple[int, int]:
        """The resized ``(height, width)`` of a ``height x width`` image."""
        if self.identity:
            return int(height), int(width)
        new_height, new_width = self.size_tensor(height, width).numpy()
        return int(new_height), int(new_width)

    def image(self, image: np.ndarray, *, order: int = 1) -> np.ndarray:
        """``image`` ``(H, W, ...)`` resized by :func:`resize_images`: bilinear (``order=1``)
        for images, nearest (``order=0``) for masks; the dtype is kept."""
        shape = self.shape(*image.shape[:2])
        if shape == image.shape[:2]:
            return image
        array = np.asarray(image)
        channels = array.reshape((*array.shape[:2], -1))
        resized = resize_images(tf.convert_to_tensor(channels), shape, nearest=order == 0)
        return np.asarray(resized).reshape(shape + array.shape[2:]).astype(array.dtype)

    def tensor_images(self, images: tf.Tensor) -> tf.Tensor:
        """A batch float32 ``(B, H, W, C)`` of any (dynamic) size resized as :meth:`image`
        resizes one image; unchanged when the rule keeps its size. For SavedModels."""
        size = tf.shape(images)[1:3]
        new_size = self.size_tensor(size[0], size[1])
        return tf.cond(
            tf.reduce_all(tf.equal(new_size, size)),
            lambda: images,
            lambda: resize_images(images, new_size),
        )

    def boxes(self, boxes: np.ndarray, height: int, width: int) -> np.ndarray:
        """ "xyxy" ``boxes`` ``(N, 4)`` of a ``height x width`` image, in resized pixels."""
        new_h, new_w = self.shape(height, width)
        factors = np.array([new_w / width, new_h / height] * 2, np.float32)
        return (np.asarray(boxes, np.float32) * factors).astype(np.float32)


def resize_images(images: tf.Tensor, size, *, nearest: bool = False) -> tf.Tensor:
    """``images`` ``(H, W, C)`` or ``(B, H, W, C)`` resized to ``size`` (height, width):
    antialiased bilinear (triangle filter, which averages when shrinking), or nearest neighbour
    for masks (the dtype kept)."""
    if nearest:
        return tf.image.resize(images, size, method="nearest")
    return tf.image.resize(images, size, antialias=True)
