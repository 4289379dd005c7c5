"""The registry of model kinds: the ``kind`` of a run's ``config.json`` to the module that
implements :class:`~emdl.train.kinds.base.ModelKind` for it.

Adding a kind means one module here (a ``ModelKind`` subclass and its instance ``KIND``), one
line in :data:`KINDS` and its tests; nothing else in emdl compares kind names. Modules are
imported on first use, so naming a kind does not load keras-cv.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emdl.train.kinds.base import ModelKind

KINDS: dict[str, str] = {
    "unet": "emdl.train.kinds.unet",
    "yolo": "emdl.train.kinds.yolo",
    "maskrcnn": "emdl.train.kinds.maskrcnn",
}


def model_kind(name: str) -> ModelKind:
    """The :class:`ModelKind` registered as ``name``; ValueError naming the known kinds."""
    if name not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {name!r}")
    return importlib.import_module(KINDS[name]).KIND


__all__ = ["KINDS", "model_kind"]
