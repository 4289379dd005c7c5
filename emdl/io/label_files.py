"""Label files for other tools: YOLO text labels and class-index mask PNGs (the CVAT and COCO
writers are :mod:`emdl.io.cvat` and :mod:`emdl.io.coco`)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from skimage import io as skio

from emdl.annotations import Annotations
from emdl.errors import InputError
from emdl.io.atomic import atomic_path, write_text
from emdl.io.labels import output_path
from emdl.rasterize import class_mask, image_boxes


def _unique_paths(annotations: Annotations, out_dir: Path, suffix: str) -> list[Path]:
    paths = [output_path(out_dir, image.name, suffix) for image in annotations.images]
    seen: dict[Path, str] = {}
    for image, path in zip(annotations.images, paths, strict=True):
        if path in seen:
            raise InputError(
                annotations.source,
                f"images '{seen[path]}' and '{image.name}' would both be written to {path}",
            )
        seen[path] = image.name
    return paths


def yolo_paths(annotations: Annotations, out_dir: str | os.PathLike) -> list[Path]:
    """The files :func:`write_yolo` writes: one label file per image, then ``classes.txt``."""
    out_dir = Path(out_dir)
    return [*_unique_paths(annotations, out_dir / "labels", ".txt"), out_dir / "classes.txt"]


def mask_paths(annotations: Annotations, out_dir: str | os.PathLike) -> list[Path]:
    """The files :func:`write_masks` writes, one per image."""
    return _unique_paths(annotations, Path(out_dir), ".png")


def write_yolo(
    annotations: Annotations,
    out_dir: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    line_width: float = 1.0,
) -> list[Path]:
    """Write YOLO labels: ``out_dir/labels/<image name>.txt`` (sub-folders kept), one line
    ``class x_center y_center width height`` per shape, normalized to [0, 1] by the image size,
    class 0-based in ``classes`` (default: the file's label order); and ``out_dir/classes.txt``,
    one name per line. An image without shapes gets an empty file. Each file is written whole
    or not at all (:mod:`emdl.io.atomic`). Returns the label files.
    """
    out_dir = Path(out_dir)
    classes = list(annotations.label_names if classes is None else classes)
    paths = _unique_paths(annotations, out_dir / "labels", ".txt")
    for image, path in zip(annotations.images, paths, strict=True):
        xyxy, indices = image_boxes(image, classes, line_width=line_width)
        # YOLO's own layout, done in NumPy: keras' converter would load TensorFlow for the CLI.
        x0, y0, x1, y1 = xyxy.astype(np.float64).T
        centre_size = np.stack(
            [
                (x0 + x1) / 2 / image.width,
                (y0 + y1) / 2 / image.height,
                (x1 - x0) / image.width,
                (y1 - y0) / image.height,
            ],
            axis=1,
        )
        lines = [
            f"{index} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n"
            for index, (x, y, w, h) in zip(indices, centre_size, strict=True)
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, "".join(lines))
    write_text(out_dir / "classes.txt", "".join(f"{name}\n" for name in classes))
    return paths


def write_masks(
    annotations: Annotations,
    out_dir: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    line_width: float = 1.0,
) -> list[Path]:
    """Write one uint8 class-index PNG per image, ``out_dir/<image name>.png`` (sub-folders
    kept): 0 = background, ``classes[i]`` = ``i + 1`` (default: the file's label order), each
    written whole or not at all. Returns the files written."""
    out_dir = Path(out_dir)
    classes = list(annotations.label_names if classes is None else classes)
    paths = _unique_paths(annotations, out_dir, ".png")
    for image, path in zip(annotations.images, paths, strict=True):
        mask = class_mask(image, classes, line_width=line_width)
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings(), atomic_path(path) as temporary:
            warnings.simplefilter("ignore")  # skimage warns that a mask is "low contrast"
            skio.imsave(temporary, np.ascontiguousarray(mask), check_contrast=False)
    return paths
