"""Errors and warnings that name the file (and, for XML or JSON, the line) they are about."""

from __future__ import annotations

from os import PathLike


class EmdlError(Exception):
    """Base class of emdl's own errors; the command line prints them as one line."""


class InputError(EmdlError, ValueError):
    """A label or image file that cannot be used: ``labels.xml:12: polygon has no 'points'``."""

    def __init__(self, path: str | PathLike, problem: str, line: int | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        self.line = line
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {problem}")


class LabelWarning(UserWarning):
    """A shape or image skipped or changed while reading labels (also counted where it is read)."""
