"""Mosaic: training crops made of the quadrants of four crops.

Four crops in a row of the training stream (taken after the shuffle, so mostly of different
micrographs) make four new ones, with ``probability``. The group is cut at one point ``(x, y)``,
drawn in ``[low, high]`` times the window (rounded to whole pixels), into four quadrants
(top-left, top-right, bottom-left, bottom-right: ``q`` = 0 .. 3), and new crop ``j`` takes
quadrant ``q`` from crop ``(j + q) mod 4``: the four crops' quadrants rearranged, each pixel used
once, so mosaic adds no pixels to a step; what it changes is that one crop holds regions of up to
four micrographs, with their seams. A quadrant keeps its place in the window, so nothing moves:
masks are cut as the image is, and boxes are clipped to their quadrant and kept when at least
``min_visible`` of their area in their crop is left. A group the draw passes over stays as it was.

Ultralytics' mosaic puts four whole images side by side and crops the result; emdl's crops
already come from random places at random scales (the zoom), so only the mixing is new here.
"""

from __future__ import annotations

import tensorflow as tf

from emdl.data.augment import Effect, keep_inside

GROUP = 4  # crops a mosaic is made of


def mosaic_crops(
    group: dict, seed: tf.Tensor, effect: Effect, window: int, min_visible: float
) -> dict:
    """Four crops into four mosaics (see the module docstring).

    ``group`` holds ``GROUP`` crops: "image" float32 ``(4, S, S, 1)``, and either "mask"
    ``(4, S, S, C)`` or ragged "boxes" float32 ``(4, None, 4)`` "xyxy" in crop pixels and
    "classes" ``(4, None)``; ``S`` = ``window``. ``seed`` int64 ``(2,)`` keys the draws. Returns
    the same structure, boxes and classes ragged.
    """
    # tf.data's ragged_batch makes every part of unknown static shape ragged.
    group = {
        name: value.to_tensor()
        if name in ("image", "mask") and hasattr(value, "to_tensor")
        else value
        for name, value in group.items()
    }
    seeds = tf.random.experimental.stateless_split(seed, 2)
    applies = tf.random.stateless_uniform([], seeds[0]) < effect.probability
    fraction = tf.random.stateless_uniform([2], seeds[1], effect.low, effect.high)
    # A group passed over is cut at the far corner: each crop is all quadrant 0, its own.
    x, y = tf.unstack(tf.where(applies, tf.round(fraction * window), float(window)))
    pixels = tf.range(window, dtype=tf.float32) + 0.5
    size = float(window)
    out: dict[str, list] = {name: [] for name in group}
    quadrant = 2 * tf.cast(pixels[:, None] > y, tf.int32) + tf.cast(pixels[None, :] > x, tf.int32)
    regions = [[0.0, 0.0, x, y], [x, 0.0, size, y], [0.0, y, x, size], [x, y, size, size]]
    for j in range(GROUP):
        sources = [(j + q) % GROUP for q in range(GROUP)]
        for name in ("image", "mask"):
            if name in group:
                picked = group[name][sources[0]]
                for q in range(1, GROUP):
                    inside = (quadrant == q)[:, :, None]
                    picked = tf.where(inside, group[name][sources[q]], picked)
                out[name].append(picked)
        if "boxes" in group:
            boxes, classes = [], []
            for q, source in enumerate(sources):
                keep, clipped = keep_inside(
                    group["boxes"][source], tf.stack(regions[q]), min_visible
                )
                boxes.append(tf.boolean_mask(clipped, keep))
                classes.append(tf.boolean_mask(group["classes"][source], keep))
            out["boxes"].append(tf.concat(boxes, 0))
            out["classes"].append(tf.concat(classes, 0))
    stacked = {name: tf.stack(out[name]) for name in ("image", "mask") if name in group}
    if "boxes" in group:
        lengths = tf.stack([tf.shape(classes)[0] for classes in out["classes"]])
        for name in ("boxes", "classes"):
            stacked[name] = tf.RaggedTensor.from_row_lengths(tf.concat(out[name], 0), lengths)
    return stacked
