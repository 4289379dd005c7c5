"""Label files from one format to another: the job behind ``emdl convert``."""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

from emdl.annotations import Annotations
from emdl.errors import LabelWarning
from emdl.io.label_files import mask_paths, yolo_paths
from emdl.io.labels import check_images, image_file, read_labels
from emdl.io.outputs import check_output_folder
from emdl.rasterize import check_line_width

FORMATS = ("coco", "yolo", "masks", "cvat")


def convert_labels(
    labels: str | os.PathLike,
    to: str,
    out_dir: str | os.PathLike,
    *,
    images_dir: str | os.PathLike | None = None,
    line_width: float = 1.0,
    skip_missing: bool = False,
    overwrite: bool = False,
) -> tuple[Annotations, Path]:
    """Read ``labels`` (CVAT XML or COCO JSON) and write them as ``to`` under ``out_dir``.

    ``to`` is one of :data:`FORMATS`: "coco" writes ``out_dir/annotations.json``, "yolo"
    ``out_dir/labels/<image>.txt`` and ``out_dir/classes.txt``, "masks" ``out_dir/<image>.png``
    (uint8 class indices), "cvat" ``out_dir/annotations.xml``. With ``images_dir`` every image the
    labels name must be there with the labels' size, or with ``skip_missing`` the images not
    there are left out with a LabelWarning naming each. ``line_width`` (pixels) draws polylines
    and points in masks and boxes. Returns the labels converted and the main path written.

    Nothing is written (an InputError, :func:`emdl.io.outputs.check_output_folder`) into the
    folder of ``labels`` or ``images_dir``, or over a file that exists, unless ``overwrite``;
    never over the input files themselves nor through a symbolic link inside ``out_dir``. Each
    file is written whole or not at all.
    """
    if to not in FORMATS:
        raise ValueError(f"unknown format '{to}', expected one of {', '.join(FORMATS)}")
    check_line_width(line_width, "--line-width")
    annotations = read_labels(labels)
    if images_dir is not None:
        if skip_missing:
            annotations = _present(annotations, Path(images_dir))
        check_images(annotations, images_dir)
    out_dir = Path(out_dir)
    inputs = [Path(labels)]
    if images_dir is not None:
        inputs += [Path(images_dir)] + [
            image_file(images_dir, image.name, annotations.source) for image in annotations.images
        ]
    check_output_folder(
        out_dir, _targets(annotations, to, out_dir), inputs=inputs, overwrite=overwrite
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    if to == "coco":
        from emdl.io.coco import write_coco

        written = out_dir / "annotations.json"
        write_coco(annotations, written)
    elif to == "cvat":
        from emdl.io.cvat import write_cvat

        written = out_dir / "annotations.xml"
        write_cvat(annotations, written)
    elif to == "yolo":
        from emdl.io.label_files import write_yolo

        write_yolo(annotations, out_dir, line_width=line_width)
        written = out_dir / "labels"
    else:
        from emdl.io.label_files import write_masks

        write_masks(annotations, out_dir, line_width=line_width)
        written = out_dir
    return annotations, written


def _targets(annotations: Annotations, to: str, out_dir: Path) -> list[Path]:
    """The files :func:`convert_labels` writes for ``to``."""
    if to == "coco":
        return [out_dir / "annotations.json"]
    if to == "cvat":
        return [out_dir / "annotations.xml"]
    if to == "yolo":
        return yolo_paths(annotations, out_dir)
    return mask_paths(annotations, out_dir)


def _present(annotations: Annotations, images_dir: Path) -> Annotations:
    """``annotations`` without the images that are not in ``images_dir`` (each named in a
    LabelWarning)."""
    if not images_dir.is_dir():
        return annotations  # check_images names the missing folder
    kept = []
    for image in annotations.images:
        if image_file(images_dir, image.name, annotations.source).is_file():
            kept.append(image)
        else:
            warnings.warn(
                f"{annotations.source}: image '{image.name}' is not in {images_dir}: left out",
                LabelWarning,
                stacklevel=3,
            )
    return dataclasses.replace(annotations, images=kept)


def summary(annotations: Annotations) -> str:
    """One line, e.g. ``images: 2, shapes: 107 (polygon 107), skipped: 0, clipped: 3``; skipped
    shapes are listed by reason."""
    counts = annotations.shape_counts()
    per_type = ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()))
    skipped = annotations.report.skipped
    reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(skipped.items()))
    return (
        f"images: {len(annotations.images)}, shapes: {counts.total()}"
        + (f" ({per_type})" if per_type else "")
        + f", skipped: {skipped.total()}"
        + (f" ({reasons})" if reasons else "")
        + f", clipped: {annotations.report.clipped}"
    )
