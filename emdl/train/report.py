"""Pictures of a run: training curves and image | truth | prediction overlays."""

from __future__ import annotations

import csv
import os

import matplotlib

matplotlib.use("Agg")  # files only; no display on training machines
import matplotlib.pyplot as plt
import numpy as np

from emdl.io.atomic import atomic_path


def plot_curves(history_csv: str | os.PathLike, out: str | os.PathLike) -> None:
    """Loss and every score per epoch (training solid, validation dashed) from Keras' CSV log."""
    with open(history_csv, newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        return
    epochs = [int(row["epoch"]) + 1 for row in rows]
    names = [k for k in rows[0] if k not in ("epoch", "learning_rate") and not k.startswith("val_")]
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        axis.plot(epochs, [float(row[name]) for row in rows], label="training")
        # Keras' CSVLogger writes "NA" validation columns when there is no validation data.
        if rows[0].get(f"val_{name}", "NA") != "NA":
            values = [float(row[f"val_{name}"]) for row in rows]
            axis.plot(epochs, values, "--", label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend()
    figure.tight_layout()
    with atomic_path(out) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)


def plot_overlays(
    rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], classes: int, out: str | os.PathLike
) -> None:
    """One row per ``(name, image, truth, prediction)``: the image (float, [0, 1]) and the truth
    and predicted class-index masks, side by side."""
    if not rows:
        return
    figure, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for axes_row, (name, *pictures) in zip(axes, rows, strict=True):
        for axis, picture, title in zip(
            axes_row, pictures, (name, "truth", "prediction"), strict=True
        ):
            axis.imshow(picture, cmap="gray", vmin=0, vmax=max(1, classes))
            axis.set_title(title, fontsize=8)
            axis.axis("off")
    figure.tight_layout()
    with atomic_path(out) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)


def plot_detections(
    rows: list[tuple[str, np.ndarray, dict, dict]], out: str | os.PathLike, *, threshold: float
) -> None:
    """One panel per ``(name, image, predicted, truth)``: the image with the true boxes (green)
    and the detections scoring at least ``threshold`` (red); boxes "xyxy" image pixels."""
    if not rows:
        return
    figure, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 5), squeeze=False)
    for axis, (name, image, predicted, truth) in zip(axes[0], rows, strict=True):
        axis.imshow(image, cmap="gray")
        keep = np.asarray(predicted["scores"]) >= threshold
        for boxes, colour in ((truth["boxes"], "lime"), (predicted["boxes"][keep], "red")):
            for x0, y0, x1, y1 in np.asarray(boxes):
                axis.add_patch(
                    plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color=colour, lw=0.8)
                )
        axis.set_title(f"{name}: {keep.sum()} found, {len(truth['boxes'])} labeled", fontsize=8)
        axis.axis("off")
    figure.tight_layout()
    with atomic_path(out) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)
