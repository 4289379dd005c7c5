"""Shared fixtures and helpers: the real data folder, small CVAT XML files, small labeled image
folders, synthetic discs and ellipses, and tiny model and run configurations.

The model configurations (``TINY``, ``TINY_MODEL``) are built on first use (see ``__getattr__``)
so that importing this module does not import TensorFlow."""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from skimage import io as skio

# Before any test imports TensorFlow: its oneDNN setting is read once, and emdl sets it.
import emdl  # noqa: F401

if TYPE_CHECKING:
    from emdl.models.maskrcnn import MaskRCNNConfig
    from emdl.models.unet import UNetConfig
    from emdl.train.config import RunConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_xla_by_cpu(monkeypatch):
    """Detector steps without XLA unless a test asks: "auto" would choose by this CPU's flags
    (:func:`emdl.train.strategy.xla_preferred`), and the suite should not depend on them."""
    monkeypatch.setattr("emdl.train.strategy.xla_preferred", lambda *args, **kwargs: False)


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


def write_labeled_folder(
    root: Path, images: dict[str, tuple[np.ndarray, str]], labels=("bubble", "loop")
) -> tuple[Path, Path]:
    """Writes ``root/images/`` and one CVAT file ``root/labels.xml`` of ``{name: (pixels, xml)}``;
    returns (labels path, images folder)."""
    folder = root / "images"
    folder.mkdir(exist_ok=True)
    for name, (pixels, _) in images.items():
        skio.imsave(folder / name, pixels, check_contrast=False)
    body = "\n".join(xml for _, xml in images.values())
    path = root / "labels.xml"
    path.write_text(cvat_text(body, labels=labels))
    return path, folder


@pytest.fixture
def labeled_folder(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """Writes images and one CVAT file; returns (labels path, images folder)."""

    def make(images: dict[str, tuple[np.ndarray, str]], labels=("bubble", "loop")):
        return write_labeled_folder(tmp_path, images, labels)

    return make


def disc(shape, cx, cy, r):
    """bool mask of the pixels whose centre lies in the disc (centre in continuous pixels)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def ellipse(shape, cx, cy, a, b, degrees):
    """Pixels of an ellipse with semi-axes ``a`` (turned ``degrees`` clockwise from x) and ``b``."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    x, y = xx + 0.5 - cx, yy + 0.5 - cy
    t = np.radians(degrees)
    u = x * np.cos(t) + y * np.sin(t)
    v = -x * np.sin(t) + y * np.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1


# The boxes of the 256 x 256 stand-ins for the bubbles experiments' training images.
BUBBLE_BOXES = [(20, 30, 90, 100), (150, 40, 230, 120), (60, 160, 140, 240), (180, 170, 240, 230)]


@pytest.fixture
def bubbles_folder(tmp_path: Path) -> Path:
    """The experiment's four training files, as 256 x 256 stand-ins."""
    folder = tmp_path / "bubbles"
    folder.mkdir()
    for number in (1, 2):
        name = f"DL_for_Microscopy_Train_Img_{number}.png"
        skio.imsave(folder / name, box_image(256, BUBBLE_BOXES), check_contrast=False)
        xml = cvat_text(box_xml(name, 256, BUBBLE_BOXES), labels=("bubble",))
        (folder / f"DL_for_Microscopy_Train_Lab_{number}.xml").write_text(xml)
    return folder


@functools.cache
def _tiny_maskrcnn() -> MaskRCNNConfig:
    """A Mask R-CNN small enough to train in seconds on 64 x 64 tiles."""
    from emdl.models.maskrcnn import MaskRCNNConfig

    return MaskRCNNConfig(
        filters=(64, 16, 32, 32),
        fpn_width=16,
        box_head_width=32,
        mask_head_width=16,
        rpn_batch=64,
        roi_batch=32,
        pre_nms_proposals=200,
        proposals_train=64,
        proposals_test=32,
        classes=1,
        tile=64,
        overlap=16,
        max_detections=20,
    )


@functools.cache
def _tiny_unet() -> UNetConfig:
    """The U-Net of :func:`tiny_config`."""
    from emdl.models.unet import UNetConfig

    return UNetConfig(depth=2, filters=4)


_LAZY = {"TINY": _tiny_maskrcnn, "TINY_MODEL": _tiny_unet}


def __getattr__(name: str):
    """``TINY`` (the tiny Mask R-CNN config) and ``TINY_MODEL`` (the tiny U-Net config), built on
    first use so that importing this module stays free of TensorFlow."""
    if name in _LAZY:
        return _LAZY[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tiny_config(labels, images, epochs=2, **training) -> RunConfig:
    """A U-Net run on ``labels`` and ``images``: 32-pixel windows, half the images validation."""
    from emdl.train.config import DataConfig, RunConfig, TrainingConfig

    data = DataConfig(
        labels=(str(labels),),
        images=str(images),
        validation_fraction=0.5,
        window=32,
        stride=32,
        batch_size=2,
    )
    return RunConfig(
        data=data,
        model=_tiny_unet(),
        training=TrainingConfig(epochs=epochs, steps_per_epoch=2, **training),
    )


def load_benchmark(name: str) -> types.ModuleType:
    """``benchmarks/NAME.py`` as a module (benchmarks/ is no package), registered in
    ``sys.modules`` as ``name`` so that its dataclasses find their module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
