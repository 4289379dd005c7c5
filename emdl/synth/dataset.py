"""A folder of synthetic micrographs with exact labels, laid out as real data:
``DIR/images/synthetic_0000.png`` (8-bit) or ``.tif`` (16-bit, with the pixel size in ImageJ's
resolution tags, as :func:`emdl.io.read_micrograph` reads it) and ``DIR/annotations.xml`` (CVAT
for images 1.1, written by :func:`emdl.io.write_cvat`, with ``<pixel_size_nm>`` added to its
``<meta>``) or, with ``format="coco"``, ``DIR/annotations.json`` (COCO, by
:func:`emdl.io.write_coco`, with ``info.pixel_size_nm``). ``emdl convert``, ``emdl train`` and
every reader of emdl take it as they take real data.

Image ``i`` is drawn from the ``i``-th child of ``numpy.random.SeedSequence(seed)``: the same
seed gives the same images, and the first images do not depend on how many are made.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
import xmltodict
from PIL import Image

from emdl.annotations import Annotations, ImageAnnotation, Label
from emdl.errors import EmdlError, InputError
from emdl.io.coco import write_coco
from emdl.io.cvat import write_cvat
from emdl.synth.presets import preset
from emdl.synth.scene import SceneSettings, make_scene

FORMATS = ("cvat", "coco")
# Colours CVAT shows the labels in, in the populations' order.
_COLOURS = ("#61b21f", "#ff6037", "#3d3df5", "#ffcc33", "#b83df5", "#33ddff")


@dataclass(frozen=True)
class DatasetReport:
    """What :func:`write_dataset` wrote: the images, shapes per label, the label file."""

    images: int
    shapes: Counter[str]
    labels_path: Path
    preview_path: Path | None = None

    def summary(self) -> str:
        """``8 images, 240 shapes (bubble 240) -> out/annotations.xml``."""
        total = sum(self.shapes.values())
        per = ", ".join(f"{name} {n}" for name, n in self.shapes.items())
        line = f"{self.images} images, {total} shapes ({per or 'none'}) -> {self.labels_path}"
        if self.preview_path is not None:
            line += f", preview {self.preview_path}"
        return line


def check_empty_folder(out: str | os.PathLike) -> Path:
    """``out`` as a Path once it is known to be a new or empty folder (else an InputError)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(path, "is a file, not a folder")
    if path.is_dir() and any(path.iterdir()):
        raise InputError(path, "already holds files; give a new or empty folder")
    return path


def image_seeds(seed: int, count: int) -> list[np.random.Generator]:
    """One independent generator per image, from the children of ``SeedSequence(seed)``."""
    return [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(count)]


def write_image(path: Path, pixels: np.ndarray, pixel_size_nm: float) -> None:
    """``pixels`` uint8 as PNG or uint16 as TIFF (ImageJ's ``unit=nm`` and XResolution /
    YResolution in pixels per nm, which :func:`emdl.io.read_micrograph` reads back)."""
    if path.suffix == ".tif":
        resolution = (1 / pixel_size_nm, 1 / pixel_size_nm)
        tifffile.imwrite(path, pixels, imagej=True, resolution=resolution, metadata={"unit": "nm"})
    else:
        Image.fromarray(pixels).save(path)


def write_dataset(
    out: str | os.PathLike,
    kind: str = "bubbles",
    count: int = 8,
    size: int = 512,
    *,
    pixel_size_nm: float | None = None,
    defocus_nm: float | None = None,
    dose: float | None = None,
    seed: int = 0,
    label_format: str = "cvat",
    bits: int = 8,
    settings: SceneSettings | None = None,
    preview: str | os.PathLike | None = None,
) -> DatasetReport:
    """Write ``count`` synthetic ``size x size`` micrographs of ``kind`` (see
    :data:`emdl.synth.presets.KINDS`) and their labels into the new or empty folder ``out``.

    ``pixel_size_nm`` (nm), ``defocus_nm`` (nm, positive = under-focus) and ``dose`` (e-/A^2)
    replace the kind's defaults (:func:`emdl.synth.presets.preset`); ``settings`` replaces them
    all. ``bits`` 8 writes PNG, 16 TIFF. ``preview``: a folder of real micrographs to show a few
    synthetic images beside, in ``out/preview.png``.

    Raises:
        InputError: ``out`` is a file or holds files.
        EmdlError: a value is out of range (named).
    """
    check_values(label_format, bits, count, size, pixel_size_nm, defocus_nm, dose)
    try:
        settings = settings or preset(
            kind, pixel_size_nm=pixel_size_nm, defocus_nm=defocus_nm, dose=dose, bits=bits
        )
    except ValueError as exc:
        raise EmdlError(str(exc)) from None
    out = check_empty_folder(out)
    real = None
    if preview is not None:
        from emdl.synth.preview import real_images

        real = real_images(preview)  # a wrong folder fails before anything is written
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".png" if settings.detector.bits == 8 else ".tif"
    annotations, pictures = [], []
    for index, rng in enumerate(image_seeds(seed, count)):
        name = f"synthetic_{index:04d}{suffix}"
        scene = make_scene(settings, size, size, rng, name=name)
        write_image(images_dir / name, scene.image, settings.pixel_size_nm)
        annotations.append(scene.annotation)
        if len(pictures) < 3:
            pictures.append(scene.image)
    labels_path = write_labels(out, settings, annotations, label_format)
    preview_path = None
    if real is not None:
        from emdl.synth.preview import write_preview

        preview_path = out / "preview.png"
        write_preview(preview_path, pictures, real, settings)
    shapes = Counter({name: 0 for name in settings.label_names})
    shapes.update(shape.label for image in annotations for shape in image.shapes)
    return DatasetReport(count, shapes, labels_path, preview_path)


def check_values(
    label_format: str,
    bits: int,
    count: int,
    size: int,
    pixel_size_nm: float | None,
    defocus_nm: float | None,
    dose: float | None,
) -> None:
    """An EmdlError naming the first value :func:`write_dataset` cannot use."""
    if label_format not in FORMATS:
        raise EmdlError(f"format must be one of {', '.join(FORMATS)}, got {label_format!r}")
    if bits not in (8, 16):
        raise EmdlError(f"bits must be 8 (PNG) or 16 (TIFF), got {bits}")
    for name, value in (("count", count), ("size", size)):
        if value < 1:
            raise EmdlError(f"{name} must be at least 1, got {value}")
    for name, value in (("pixel size", pixel_size_nm), ("dose", dose)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise EmdlError(f"the {name} must be a positive number, got {value}")
    if defocus_nm is not None and not math.isfinite(defocus_nm):
        raise EmdlError(f"the defocus must be a finite number of nm, got {defocus_nm}")


def write_labels(
    out: Path, settings: SceneSettings, images: list[ImageAnnotation], label_format: str
) -> Path:
    """``out/annotations.xml`` (CVAT, ``<pixel_size_nm>`` in ``<meta>``) or
    ``out/annotations.json`` (COCO, ``info.pixel_size_nm``) of ``images``; its path."""
    labels = [
        Label(name, _COLOURS[i % len(_COLOURS)], "any")
        for i, name in enumerate(settings.label_names)
    ]
    annotations = Annotations(labels, images)
    if label_format == "coco":
        path = out / "annotations.json"
        write_coco(annotations, path)
        coco = json.loads(path.read_text(encoding="utf-8"))
        coco["info"] = {"description": "emdl synth", "pixel_size_nm": settings.pixel_size_nm}
        path.write_text(json.dumps(coco), encoding="utf-8")
        return path
    path = out / "annotations.xml"
    write_cvat(annotations, path, name="emdl synth")
    text = path.read_text(encoding="utf-8")
    # CVAT ignores what it does not know in <meta>; emdl's reader looks only at the labels.
    meta = "<meta>"
    at = text.index(meta) + len(meta)
    element = f"\n    <pixel_size_nm>{settings.pixel_size_nm!r}</pixel_size_nm>"
    path.write_text(text[:at] + element + text[at:], encoding="utf-8")
    return path


def read_pixel_size(path: str | os.PathLike) -> float | None:
    """The pixel size in nm that :func:`write_labels` recorded in a label file (CVAT
    ``<meta><pixel_size_nm>`` or COCO ``info.pixel_size_nm``), or None."""
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("<"):
        document = xmltodict.parse(text, disable_entities=True)
        value = (document.get("annotations") or {}).get("meta", {}).get("pixel_size_nm")
    else:
        value = (json.loads(text).get("info") or {}).get("pixel_size_nm")
    return None if value is None else float(value)
