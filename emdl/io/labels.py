"""Label files of either kind, told apart by content, and checks of them against image folders."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from emdl.annotations import Annotations
from emdl.errors import InputError
from emdl.io.checks import text_encoding
from emdl.io.coco import read_coco
from emdl.io.cvat import read_cvat
from emdl.io.image import image_size


def label_format(path: str | os.PathLike) -> str:
    """``"cvat"`` for an XML file, ``"coco"`` for a JSON file, judged by the first character
    that is not white space, read as UTF-8, UTF-16 or UTF-32 (as
    :func:`emdl.io.checks.text_encoding` tells)."""
    try:
        with open(path, "rb") as file:
            chunk = file.read(4096)
            decoder = codecs.getincrementaldecoder(text_encoding(chunk))(errors="replace")
            text = decoder.decode(chunk).lstrip()
            while not text and chunk:
                chunk = file.read(4096)
                text = decoder.decode(chunk, final=not chunk).lstrip()
    except OSError as exc:
        raise InputError(path, exc.strerror or "cannot be read") from exc
    if not text:
        raise InputError(path, "empty file")
    if text.startswith("<"):
        return "cvat"
    if text.startswith(("{", "[")):
        return "coco"
    raise InputError(path, "neither XML (CVAT) nor JSON (COCO)")


def read_labels(path: str | os.PathLike, *, max_pixels: int | None = None) -> Annotations:
    """Read a CVAT for images 1.1 XML or a COCO instances JSON file, whichever ``path`` holds.

    ``max_pixels`` is the most pixels an image or mask in it may declare (see :func:`read_cvat`
    and :func:`read_coco`)."""
    reader = read_cvat if label_format(path) == "cvat" else read_coco
    return reader(path, max_pixels=max_pixels)


def output_path(out_dir: str | os.PathLike, image_name: str, suffix: str) -> Path:
    """Where a file derived from ``image_name`` goes under ``out_dir``: sub-folders kept, suffix
    replaced. Names that would leave ``out_dir`` (absolute, ``..``) are an InputError."""
    relative = Path(image_name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        raise InputError(image_name, f"image name leaves the output folder {out_dir}")
    return Path(out_dir) / relative.with_suffix(suffix)


def image_file(images_dir: str | os.PathLike, image_name: str, source: str | os.PathLike) -> Path:
    """The file of the image ``image_name`` (as a label file ``source`` names it) in
    ``images_dir``. Names that would leave the folder (absolute, ``..``) are an InputError
    naming ``source``: labels read only images in the folder they are given."""
    relative = Path(image_name.replace("\\", "/"))
    if relative.is_absolute() or relative.drive or ".." in relative.parts:
        raise InputError(source, f"image name '{image_name}' leaves the images folder {images_dir}")
    return Path(images_dir) / relative


def check_images(annotations: Annotations, images_dir: str | os.PathLike) -> None:
    """Check that every image the labels name is in ``images_dir`` with the size they give.

    Raises:
        InputError: naming the first image name that leaves the folder (:func:`image_file`), the
            first missing image (and how many more are missing) or the first image whose size
            differs from the labels'.
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise InputError(images_dir, "no such folder")
    names = [image.name for image in annotations.images]
    files = [image_file(images_dir, name, annotations.source) for name in names]
    missing = [name for name, file in zip(names, files, strict=True) if not file.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(
            annotations.source, f"image '{missing[0]}'{more} not found in {images_dir}"
        )
    for image, file in zip(annotations.images, files, strict=True):
        width, height = image_size(file)
        if (width, height) != (image.width, image.height):
            raise InputError(
                file,
                f"image is {width} x {height}, the labels say {image.width} x {image.height}",
            )
