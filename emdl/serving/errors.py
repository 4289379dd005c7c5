"""The one error of the serving clients: a request TF Serving did not answer, or refused."""

from __future__ import annotations

from emdl.errors import EmdlError


class ServingError(EmdlError):
    """A TF Serving request that failed, in one line that names the server:
    ``http://localhost:8501: connection refused (is TF Serving running?)``."""


def one_line(text: str) -> str:
    """``text`` with its lines joined by spaces (TF Serving's errors may span lines)."""
    return " ".join(text.split())
