"""How micrographs are resized before a model sees them, the same way in training and prediction.

A detector learns objects at the pixel size it saw them; micrographs taken at another
magnification (loops111 mixes 1024 and 2048 pixel images of the same field) are brought to a
common scale first: by a fixed factor, or so that the longer side has a set number of pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.transform import resize


@dataclass(frozen=True)
class Resize:
    """Resize by ``scale`` or, when ``longest_side`` (pixels) is set, so that the longer side of
    the image is ``longest_side`` pixels."""

    scale: float = 1.0
    longest_side: int | None = None

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        if self.longest_side is not None and self.longest_side < 1:
            raise ValueError(f"longest_side must be at least 1 pixel, got {self.longest_side}")

    def shape(self, height: int, width: int) -> tuple[int, int]:
        """The resized ``(height, width)`` of a ``height x width`` image."""
        factor = self.scale
        if self.longest_side is not None:
            factor = self.longest_side / max(height, width)
        return max(round(height * factor), 1), max(round(width * factor), 1)

    def image(self, image: np.ndarray, *, order: int = 1) -> np.ndarray:
        """``image`` ``(H, W, ...)`` resized: bilinear (``order=1``, antialiased when shrinking)
        for images, nearest (``order=0``) for masks; the dtype is kept."""
        shape = self.shape(*image.shape[:2])
        if shape == image.shape[:2]:
            return image
        shrink = shape[0] < image.shape[0]
        resized = resize(
            image,
            shape + image.shape[2:],
            order=order,
            anti_aliasing=order > 0 and shrink,
            preserve_range=True,
        )
        return resized.astype(image.dtype)

    def boxes(self, boxes: np.ndarray, height: int, width: int) -> np.ndarray:
        """ "xyxy" ``boxes`` ``(N, 4)`` of a ``height x width`` image, in resized pixels."""
        new_h, new_w = self.shape(height, width)
        factors = np.array([new_w / width, new_h / height] * 2, np.float32)
        return (np.asarray(boxes, np.float32) * factors).astype(np.float32)
