"""Settings dataclasses from JSON-like dicts: one place where every value that enters from a
config file is checked, so that a typo or a wrong type does not silently become a default or a
traceback.

:func:`from_known_fields` refuses unknown keys, and checks each value against its field's type
hint: an integer is a JSON integer (not a string, a float or a boolean), a number is an integer or
a finite float, a string is a string, a flag is ``true``/``false``, a tuple is a list of such
values; ``X | None`` also takes ``null``. The message names the key path, e.g.
``data.window: expected an integer, got "64"``. Ranges are checked by the dataclasses themselves.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_known_fields(cls: type[T], values: dict, section: str) -> T:
    """``cls(**values)``, or ValueError ``"<section>: unknown setting(s) [...]; known: [...]"``
    when ``values`` has keys that are not fields of the dataclass ``cls``, or
    ``"<section>.<key>: expected ..., got ..."`` when a value has the wrong type."""
    if not isinstance(values, dict):
        raise ValueError(f"{section}: expected an object of settings, got {_shown(values)}")
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{section}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        check_value(value, hints[key], f"{section}.{key}")
    return cls(**values)


def check_value(value: Any, hint: Any, where: str) -> None:
    """ValueError naming ``where`` unless ``value`` fits the type ``hint`` (see the module)."""
    problem = _problem(value, hint)
    if problem:
        raise ValueError(f"{where}: expected {problem}, got {_shown(value)}")


def _problem(value: Any, hint: Any) -> str | None:
    """What ``value`` should have been, or None when it fits ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if any(_problem(value, option) is None for option in args):
            return None
        return " or ".join(_problem(value, option) or "" for option in args)
    if hint is type(None):
        return None if value is None else "null"
    if hint is Any:
        return None
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if number and math.isfinite(value) else "a finite number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return "a list"
        item = args[0] if args else Any
        for element in value:
            problem = _problem(element, item)
            if problem:
                return f"a list of {problem.removeprefix('a ').removeprefix('an ')}s"
        return None
    if origin is dict or hint is dict:
        return None if isinstance(value, dict) else "an object"
    return None


def _shown(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
