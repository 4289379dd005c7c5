"""Labeled micrographs for the input pipelines: which images, which classes, and the split."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emdl.annotations import ImageAnnotation
from emdl.errors import InputError, LabelWarning
from emdl.io.image import image_size
from emdl.io.labels import image_file, read_labels


@dataclass(frozen=True)
class LabeledImage:
    """One micrograph file and its labels; pixels are read when a pipeline first needs them."""

    path: Path
    annotation: ImageAnnotation

    @property
    def name(self) -> str:
        return self.annotation.name


def load_labeled_images(
    labels: str | os.PathLike | Sequence[str | os.PathLike],
    images_dir: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    missing: str = "error",
) -> tuple[list[LabeledImage], list[str]]:
    """The labeled images of one or more label files (CVAT XML or COCO JSON) found in
    ``images_dir`` (a folder, or several searched all: e.g. real micrographs and synthetic ones
    beside them), and the class names: the first file's labels in its order, then any new labels
    of later files.

    ``missing="error"`` makes an image named in the labels but absent from the folders an
    :class:`InputError`; ``missing="skip"`` leaves it out with a :class:`LabelWarning` naming it.
    An image whose size differs from its labels', an image in two of the folders, and an image
    name that leaves the folders (absolute, ``..``), are always an InputError.
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
    paths = [labels] if isinstance(labels, str | os.PathLike) else list(labels)
    folders = image_folders(images_dir)
    where = ", ".join(str(folder) for folder in folders)
    records: list[LabeledImage] = []
    classes: list[str] = []
    seen: set[str] = set()
    for path in paths:
        annotations = read_labels(path)
        classes += [name for name in annotations.label_names if name not in classes]
        for image in annotations.images:
            found = [
                file
                for file in (image_file(folder, image.name, path) for folder in folders)
                if file.is_file()
            ]
            if image.name in seen:
                raise InputError(path, f"image '{image.name}' is labeled in two label files")
            seen.add(image.name)
            if len(found) > 1:
                raise InputError(
                    path,
                    f"image '{image.name}' is in two images folders: {found[0]} and {found[1]}",
                )
            if not found:
                if missing == "error":
                    raise InputError(path, f"image '{image.name}' not found in {where}")
                warnings.warn(
                    f"{path}: image '{image.name}' not found in {where}; skipped",
                    LabelWarning,
                    stacklevel=2,
                )
                continue
            (file,) = found
            width, height = image_size(file)
            if (width, height) != (image.width, image.height):
                raise InputError(
                    file,
                    f"image is {width} x {height}, the labels say {image.width} x {image.height}",
                )
            records.append(LabeledImage(file, image))
    return records, classes


def image_folders(images: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """``images`` (one folder or several) as a list of folders.

    Raises:
        InputError: a folder does not exist (named).
        ValueError: none is given.
    """
    folders = [Path(images)] if isinstance(images, str | os.PathLike) else [Path(f) for f in images]
    if not folders:
        raise ValueError("no images folder")
    for folder in folders:
        if not folder.is_dir():
            raise InputError(folder, "no such folder")
    return folders


def split_by_image(
    records: Sequence[LabeledImage], validation_fraction: float, *, seed: int = 0
) -> tuple[list[LabeledImage], list[LabeledImage]]:
    """Split into (training, validation) by whole images, never by crops of one image.

    The images are shuffled with ``seed``; ``round(validation_fraction * n)`` of them, at least one
    and at most ``n - 1`` when the fraction is above 0, go to validation. Each part keeps the input
    order.
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    n = len(records)
    if validation_fraction == 0:
        return list(records), []
    if n < 2:
        raise ValueError(f"cannot hold out validation images from {n} image(s)")
    n_validation = min(max(round(validation_fraction * n), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    held_out = set(order[:n_validation].tolist())
    training = [r for i, r in enumerate(records) if i not in held_out]
    validation = [r for i, r in enumerate(records) if i in held_out]
    return training, validation
