"""Files written whole or not at all: each is written under a temporary name in its own folder
and renamed into place (``os.replace``, atomic on one file system), so a crash, a full disk or
Ctrl-C never leaves a half-written file under the final name; the temporary file is removed."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

TEMPORARY_PREFIX = ".emdl-tmp-"
"""How temporary files begin: ``.emdl-tmp-<8 hex digits>-<final name>`` (the final name last,
so that writers that go by the suffix, such as ``.png`` or ``.weights.h5``, still see it)."""


def temporary_name(path: str | os.PathLike) -> Path:
    """A new temporary path beside ``path``, ending in its name."""
    path = Path(path)
    return path.with_name(f"{TEMPORARY_PREFIX}{secrets.token_hex(4)}-{path.name}")


def _sync(path: Path) -> None:
    # The data reach the disk before the rename, so that a power cut cannot leave an empty file
    # under the final name.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path for a writer that takes a file name (``skimage.io.imsave``,
    ``Figure.savefig``, ``model.save_weights``): renamed to ``path`` when the block ends without
    an exception, removed when it raises (any exception, KeyboardInterrupt too)."""
    path = Path(path)
    temporary = temporary_name(path)
    try:
        yield temporary
        _sync(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """``open(path, mode, **kwargs)`` for writing ("w" or "wb", with ``encoding``, ``newline``),
    the file appearing under ``path`` only when the block ends without an exception."""
    if mode not in ("w", "wb"):
        raise ValueError(f"open_atomic writes new files ('w' or 'wb'), not mode {mode!r}")
    with atomic_path(path) as temporary, open(temporary, mode.replace("w", "x"), **kwargs) as file:
        yield file
        file.flush()


def write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` (``newline`` as :func:`open`'s default) atomically."""
    with open_atomic(path, "w", encoding=encoding) as file:
        file.write(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with open_atomic(path, "wb") as file:
        file.write(data)
