"""Tiled prediction: a model that sees ``tile x tile`` crops predicts a micrograph of any size.

Tiles overlap by ``overlap`` pixels and are blended with weights that fall off towards each tile's
edge, so seams do not show. The model only ever sees a batch of tiles, so its memory is bounded by
the tile, not the image; the image-sized sums of weighted predictions are float32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from emdl.data.datasets import window_starts
from emdl.data.normalize import min_max


def pad_to_multiple(image: np.ndarray, multiple: int, minimum: int = 0) -> tuple[np.ndarray, tuple]:
    """Pad ``image`` ``(H, W, ...)`` at the bottom and right by reflection to sizes that are
    multiples of ``multiple`` and at least ``minimum``; returns it and the original ``(H, W)``."""
    height, width = image.shape[:2]
    target_h = max(-(-height // multiple) * multiple, minimum)
    target_w = max(-(-width // multiple) * multiple, minimum)
    pad = [(0, target_h - height), (0, target_w - width)] + [(0, 0)] * (image.ndim - 2)
    # Reflection needs the image to be larger than the pad; symmetric repeats as often as needed.
    return np.pad(image, pad, mode="symmetric"), (height, width)


def blend_weights(tile: int, overlap: int) -> np.ndarray:
    """Weights float32 ``(tile, tile)``: 1 in the middle, falling linearly to a small positive value
    across the ``overlap`` band at each edge (so that image borders, covered once, still count)."""
    ramp = np.ones(tile, np.float32)
    if overlap > 0:
        rise = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        ramp[:overlap] = np.minimum(ramp[:overlap], rise)
        ramp[-overlap:] = np.minimum(ramp[-overlap:], rise[::-1])
    return np.outer(ramp, ramp)


def tile_batches(
    padded: np.ndarray,
    tile: int,
    overlap: int,
    batch_size: int,
    *,
    normalize_tiles: bool = True,
) -> Iterator[tuple[list[tuple[int, int]], np.ndarray]]:
    """The one tile loop of every tiled prediction: ``(corners, tiles)`` batches of ``padded``
    (float32 ``(H, W)``, at least one tile each way), tiles float32 ``(b, tile, tile, 1)``
    ``tile - overlap`` apart (the last flush with the far edge), ``b <= batch_size``, each
    min-max scaled to [0, 1] like the training crops unless ``normalize_tiles`` is False;
    ``corners`` are their ``(top, left)`` pixels."""
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, {tile}), got {overlap}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stride = tile - overlap
    corners = [
        (top, left)
        for top in window_starts(padded.shape[0], tile, stride)
        for left in window_starts(padded.shape[1], tile, stride)
    ]
    for start in range(0, len(corners), batch_size):
        batch_corners = corners[start : start + batch_size]
        tiles = np.stack([padded[t : t + tile, c : c + tile] for t, c in batch_corners])
        tiles = tiles[..., np.newaxis].astype(np.float32)
        if normalize_tiles:
            tiles = np.asarray(min_max(tiles))
        yield batch_corners, tiles


def predict_image(
    predict_batch: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    *,
    tile: int = 256,
    overlap: int = 64,
    multiple: int = 16,
    batch_size: int = 8,
    normalize_tiles: bool = True,
) -> np.ndarray:
    """Per-pixel predictions of ``image`` (float32 ``(H, W)``) by ``predict_batch``, which maps
    float32 ``(B, t, t, 1)`` to ``(B, t, t, C)``, e.g. ``model.predict_on_batch``.

    The image is padded (by reflection) to at least one tile and to a multiple of ``multiple``
    (``2 ** depth`` for a U-Net), cut into ``tile`` x ``tile`` tiles ``tile - overlap`` apart,
    each tile min-max normalized like the training crops (unless ``normalize_tiles`` is False),
    predicted ``batch_size`` at a time, and blended with :func:`blend_weights`. Returns float32
    ``(H, W, C)``.
    """
    if tile % multiple:
        raise ValueError(f"tile {tile} is not a multiple of {multiple}")
    padded, (height, width) = pad_to_multiple(np.asarray(image, np.float32), multiple, tile)
    weights = blend_weights(tile, overlap)[..., np.newaxis]
    total = weight_sum = None
    for batch_corners, tiles in tile_batches(
        padded, tile, overlap, batch_size, normalize_tiles=normalize_tiles
    ):
        predictions = np.asarray(predict_batch(tiles))
        if total is None:
            total = np.zeros(padded.shape[:2] + predictions.shape[-1:], np.float32)
            weight_sum = np.zeros((*padded.shape[:2], 1), np.float32)
        for (t, c), prediction in zip(batch_corners, predictions, strict=True):
            total[t : t + tile, c : c + tile] += weights * prediction
            weight_sum[t : t + tile, c : c + tile] += weights
    return (total / weight_sum)[:height, :width]
