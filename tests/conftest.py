"""Shared fixtures: the real data folder, small CVAT XML files and small labeled image folders."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from skimage import io as skio

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


# An image equal to its own mask: boxes of ones on zeros, at integer pixel edges.
BOXES = [(4, 6, 20, 14), (30, 30, 50, 58), (40, 2, 60, 12), (8, 40, 22, 62)]


def box_image(size: int, boxes=BOXES) -> np.ndarray:
    image = np.zeros((size, size), np.uint8)
    for x0, y0, x1, y1 in boxes:
        image[y0:y1, x0:x1] = 255
    return image


def box_xml(name: str, size: int, boxes=BOXES, label: str = "bubble") -> str:
    shapes = "\n".join(
        f'<box label="{label}" xtl="{x0}" ytl="{y0}" xbr="{x1}" ybr="{y1}" z_order="0"/>'
        for x0, y0, x1, y1 in boxes
    )
    return f'<image id="0" name="{name}" width="{size}" height="{size}">\n{shapes}\n</image>'


@pytest.fixture
def labeled_folder(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """Writes images and one CVAT file; returns (labels path, images folder)."""

    def make(images: dict[str, tuple[np.ndarray, str]], labels=("bubble", "loop")):
        folder = tmp_path / "images"
        folder.mkdir(exist_ok=True)
        for name, (pixels, _) in images.items():
            skio.imsave(folder / name, pixels, check_contrast=False)
        body = "\n".join(xml for _, xml in images.values())
        path = tmp_path / "labels.xml"
        path.write_text(cvat_text(body, labels=labels))
        return path, folder

    return make
