"""Shared fixtures: the real data folder and a builder of small CVAT XML files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``$EMDL_DATA_DIR``, else ``../shared/data`` beside the repository. Missing data fails."""
    path = Path(os.environ.get("EMDL_DATA_DIR", REPO.parent / "shared" / "data"))
    if not (path / "bubbles").is_dir() or not (path / "loops111").is_dir():
        pytest.fail(f"real data not found at {path}: set EMDL_DATA_DIR")
    return path


META = """
  <meta>
    <{kind}>
      <name>test</name>
      <labels>
{labels}
      </labels>
    </{kind}>
  </meta>"""


def cvat_text(body: str, labels: tuple[str, ...] = ("bubble", "loop"), kind: str = "task") -> str:
    """A CVAT for images 1.1 document whose ``<meta>`` declares ``labels`` and whose images are
    ``body`` (raw XML)."""
    label_xml = "\n".join(
        f"        <label><name>{name}</name><color>#00ff00</color><type>any</type></label>"
        for name in labels
    )
    meta = META.format(kind=kind, labels=label_xml)
    head = '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>'
    return f"{head}{meta}\n{body}\n</annotations>\n"


@pytest.fixture
def write_cvat_text(tmp_path: Path) -> Callable[..., Path]:
    """Writes :func:`cvat_text` to a file in ``tmp_path`` and returns its path."""

    def write(body: str, name: str = "labels.xml", **kwargs) -> Path:
        path = tmp_path / name
        path.write_text(cvat_text(body, **kwargs))
        return path

    return write
