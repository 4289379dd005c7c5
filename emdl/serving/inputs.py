"""What the clients send: the image as the batch a ``serving_default`` signature takes."""

from __future__ import annotations

import numpy as np

from emdl.errors import InputError

# The dtypes emdl's exported signatures take; float64 is sent as float32.
DTYPES = (np.uint8, np.uint16, np.float32)


def image_batch(image: np.ndarray) -> np.ndarray:
    """``image`` as ``(B, H, W, 1)``: a ``(H, W)``, ``(H, W, 1)`` or ``(B, H, W, 1)`` array of
    uint8, uint16 or float32 (float64 becomes float32), its dtype otherwise kept.

    Raises :class:`emdl.errors.InputError` (``image: ...``) for any other shape or dtype, an
    empty image, or non-finite float values (JSON and the models have no use for them)."""
    array = np.asarray(image)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    if array.dtype not in DTYPES:
        raise InputError(
            "image", f"dtype {array.dtype} is not accepted (uint8, uint16, float32 or float64)"
        )
    shape = array.shape
    if array.ndim == 2:
        array = array[np.newaxis, :, :, np.newaxis]
    elif array.ndim == 3 and shape[2] == 1:
        array = array[np.newaxis]
    elif not (array.ndim == 4 and shape[3] == 1):
        raise InputError("image", f"shape {shape} is not (H, W), (H, W, 1) or (B, H, W, 1)")
    if array.size == 0:
        raise InputError("image", f"shape {shape} is empty")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise InputError("image", "has NaN or infinite values")
    return np.ascontiguousarray(array)


def checked_version(version: int | None) -> int | None:
    """``version`` if it is None or a positive integer, else :class:`InputError`."""
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
        raise InputError("version", f"expected a positive integer, got {version!r}")
    return int(version)


def checked_model(model: str) -> str:
    """``model``, a TF Serving model name, if it is a non-empty string without ``/`` or ``:``."""
    if not isinstance(model, str) or not model or "/" in model or ":" in model:
        raise InputError("model", f"expected a model name without '/' or ':', got {model!r}")
    return model
