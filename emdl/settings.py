"""Settings dataclasses from JSON-like dicts, refusing unknown keys so that a typo does not
silently fall back to a default."""

from __future__ import annotations

from dataclasses import fields
from typing import TypeVar

T = TypeVar("T")


def from_known_fields(cls: type[T], values: dict, section: str) -> T:
    """``cls(**values)``, or ValueError ``"<section>: unknown setting(s) [...]; known: [...]"``
    when ``values`` has keys that are not fields of the dataclass ``cls``."""
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{section}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
    return cls(**values)
