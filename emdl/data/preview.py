"""A picture of what the pipeline feeds a model: augmented crops with their targets drawn on."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from skimage import io as skio
from skimage import segmentation

from emdl.data.augment import Augmentation
from emdl.data.datasets import build_dataset
from emdl.data.sources import load_labeled_images
from emdl.io.atomic import atomic_path

COLOURS = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180]],
    dtype=np.uint8,
)


def _overlay(image: np.ndarray, target) -> np.ndarray:
    """One crop as RGB uint8 ``(S, S, 3)``: mask outlines and box outlines in colour."""
    rgb = np.repeat((np.clip(image[..., 0], 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=-1)
    size = rgb.shape[0]
    if not isinstance(target, dict):  # a semantic class-index mask (S, S, 1)
        mask = np.asarray(target)[..., 0]
        for value in np.unique(mask[mask > 0]):
            edge = segmentation.find_boundaries(mask == value, mode="inner")
            rgb[edge] = COLOURS[(value - 1) % len(COLOURS)]
        return rgb
    classes = np.asarray(target["classes"]).astype(int)
    for index, masks in enumerate(np.asarray(target.get("masks", np.zeros((0,))))):
        rgb[segmentation.find_boundaries(masks > 0, mode="inner")] = COLOURS[index % len(COLOURS)]
    for index, (x0, y0, x1, y1) in enumerate(np.asarray(target["boxes"])):
        top, left = np.clip([y0, x0], 0, size - 1).astype(int)
        bottom, right = np.clip([np.ceil(y1) - 1, np.ceil(x1) - 1], 0, size - 1).astype(int)
        colour = COLOURS[(classes[index] if "masks" not in target else index) % len(COLOURS)]
        rgb[[top, bottom], left : right + 1] = colour
        rgb[top : bottom + 1, [left, right]] = colour
    return rgb


def preview_grid(dataset: tf.data.Dataset, count: int = 16, columns: int = 4) -> np.ndarray:
    """The first ``count`` crops of a :func:`emdl.data.build_dataset` data set (boxes in "xyxy")
    tiled ``columns`` wide with 4-pixel gaps: RGB uint8 ``(rows * (S + 4) - 4, ...)``."""
    tiles = []
    for images, targets in dataset:
        for i in range(images.shape[0]):
            if isinstance(targets, dict):
                target = {key: value[i] for key, value in targets.items()}
            else:
                target = targets[i]
            tiles.append(_overlay(images[i].numpy(), target))
            if len(tiles) == count:
                break
        if len(tiles) == count:
            break
    size = tiles[0].shape[0]
    rows = -(-len(tiles) // columns)
    gap = 4
    grid = np.full((rows * (size + gap) - gap, columns * (size + gap) - gap, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        grid[
            r * (size + gap) : r * (size + gap) + size, c * (size + gap) : c * (size + gap) + size
        ] = tile
    return grid


def write_preview(
    labels,
    images_dir,
    out,
    *,
    augmentation: Augmentation | None = None,
    seed: int = 0,
    window: int = 256,
    count: int = 16,
    max_images: int = 8,
    missing: str = "error",
) -> str:
    """Draw ``count`` augmented crops of the labeled images (at most ``max_images`` of them, drawn
    with ``seed``) with their targets to the PNG ``out``; returns a one-line summary.

    Labels with areas (polygons, ellipses, masks) show instance outlines; box-only labels show
    boxes. ``augmentation`` defaults to :meth:`Augmentation.default`.
    """
    records, classes = load_labeled_images(labels, images_dir, missing=missing)
    if len(records) > max_images:
        chosen = np.sort(
            np.random.default_rng(seed).choice(len(records), max_images, replace=False)
        )
        records = [records[i] for i in chosen]
    areas = {"polygon", "ellipse", "mask"}
    has_areas = any(shape.type in areas for r in records for shape in r.annotation.shapes)
    kind = "instances" if has_areas else "detection"
    dataset = build_dataset(
        records,
        classes,
        kind,
        window=window,
        batch_size=count,
        augmentation=augmentation or Augmentation.default(),
        seed=seed,
    )
    with atomic_path(out) as temporary:
        skio.imsave(temporary, preview_grid(dataset, count), check_contrast=False)
    return f"{count} augmented {window} x {window} crops of {len(records)} images ({kind}) -> {out}"
