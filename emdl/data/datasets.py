"""tf.data pipelines for the three models: labeled micrographs in, batches of (augmented) crops out.

One pipeline serves the U-Net ("semantic"), the detector ("detection") and Mask R-CNN
("instances"). Images are decoded and their labels rasterized once, on the first pass, then cached
in memory; images of different sizes may share a data set. Training draws random crops (as many per
visit of an image as windows fit in it) and augments them (:mod:`emdl.data.augment`); evaluation
cuts a sliding window. Every random choice comes from ``seed``.

Outputs, per batch of ``B`` crops of ``S x S`` pixels (``S`` = ``window``):

- semantic: ``(images, masks)``, images float32 ``(B, S, S, 1)`` in [0, 1], masks int32
  ``(B, S, S, 1)`` class indices (0 background, ``classes[i]`` = ``i + 1``), or with ``one_hot``
  float32 ``(B, S, S, len(classes) + 1)``; with ``distance`` ``(B, S, S, 2)``, channel 1 each
  object's normalized distance to its outline times 255 (:func:`emdl.labels.object_distance`).
- detection: ``(images, {"boxes", "classes"})``, boxes float32 ``(B, None, 4)`` in
  ``bounding_box_format`` (crop pixels), classes float32 ``(B, None)`` 0-based, ragged; with
  ``max_boxes`` dense ``(B, max_boxes, ...)`` padded with -1 as keras-cv expects, or with
  ``max_boxes="batch"`` dense ``(B, N, ...)``, ``N`` the most boxes a crop of the batch has (at
  least 1).
- instances: as detection plus ``"masks"`` uint8 ``(B, None, S, S)``; boxes are the masks' extents.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from emdl.data.augment import (
    Augmentation,
    crop_seeds,
    imaging_effects,
    jitter_shifts,
    keep_inside,
    random_geometry,
    shift_boxes,
    shift_rows,
    warp,
    warp_boxes,
    window_geometry,
)
from emdl.data.mosaic import GROUP, mosaic_crops
from emdl.data.normalize import min_max
from emdl.data.resize import Resize
from emdl.data.sources import LabeledImage
from emdl.errors import InputError
from emdl.io.image import read_image
from emdl.labels import box_targets, instance_targets, object_distance, semantic_mask

TARGETS = ("semantic", "detection", "instances")
# tf.data's autotuning for the windows of training=False (read once, in order): off, see
# build_dataset; benchmarks/epoch_time.py sets it to compare.
VALIDATION_AUTOTUNE = False


def window_starts(size: int, window: int, stride: int) -> np.ndarray:
    """Start offsets, int32 ``(K,)``, of a sliding window along an axis of ``size`` pixels: every
    ``stride`` pixels, plus one flush with the far edge so that the windows cover the axis."""
    if window > size:
        raise ValueError(f"window {window} is larger than {size}")
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return np.array(starts, dtype=np.int32)


def window_batches(
    records: Sequence[LabeledImage],
    window: int,
    stride: int,
    batch_size: int,
    resize: Resize | None = None,
) -> int:
    """How many batches the sliding-window (``training=False``) data set of ``records`` yields."""
    resize = resize or Resize()
    windows = 0
    for record in records:
        height, width = resize.shape(record.annotation.height, record.annotation.width)
        windows += len(window_starts(height, window, stride)) * len(
            window_starts(width, window, stride)
        )
    return -(-windows // batch_size)


def _check(
    records: Sequence[LabeledImage],
    target: str,
    window: int,
    stride: int,
    empty_crops,
    min_visible,
    resize: Resize,
    max_boxes: int | str | None = None,
    augmentation: Augmentation | None = None,
) -> float:
    """Refuse bad settings while building, not inside a running graph; returns the keep rate of
    crops without objects."""
    if target not in TARGETS:
        raise ValueError(f"unknown target '{target}', expected one of {TARGETS}")
    if augmentation is not None and augmentation.get("mosaic") and target == "instances":
        raise ValueError("augmentation 'mosaic' is for semantic and detection crops, not instances")
    if not records:
        raise ValueError("no labeled images to build a data set from")
    if not isinstance(window, int) or window <= 0:
        raise ValueError(f"window must be a positive number of pixels, got {window!r}")
    if not isinstance(stride, int) or stride <= 0:
        raise ValueError(f"stride must be a positive number of pixels, got {stride!r}")
    if not 0 <= min_visible <= 1:
        raise ValueError(f"min_visible must be in [0, 1], got {min_visible}")
    if max_boxes is not None and max_boxes != "batch":
        if isinstance(max_boxes, bool) or not isinstance(max_boxes, int) or max_boxes < 1:
            raise ValueError(f"max_boxes must be a positive number or 'batch', got {max_boxes!r}")
    rates = {"keep": 1.0, "drop": 0.0}
    rate = rates.get(empty_crops, empty_crops)
    if isinstance(rate, str) or not 0 <= rate <= 1:
        raise ValueError(f"empty_crops must be 'keep', 'drop' or a rate in [0, 1], got {rate!r}")
    for record in records:
        original = record.annotation.height, record.annotation.width
        height, width = resize.shape(*original)
        if width < window or height < window:
            # Refused rather than padded: padding would teach the model an edge that is not there.
            resized = "" if (height, width) == original else " after resizing"
            raise InputError(
                record.path,
                f"image is {width} x {height}{resized}, smaller than the {window} x {window} "
                "crop window",
            )
    return float(rate)


def _check_objects(records: Sequence[LabeledImage], classes: Sequence[str]) -> None:
    """With every crop without objects dropped, a data set of images without any object of
    ``classes`` would search for a crop forever: refuse it."""
    wanted = set(classes)
    if any(shape.label in wanted for r in records for shape in r.annotation.shapes):
        return
    names = ", ".join(f"'{r.name}'" for r in records[:3]) + (" ..." if len(records) > 3 else "")
    raise ValueError(
        f"empty_crops is 'drop' but none of the {len(records)} training images ({names}) has an "
        f"object of the classes {list(classes)}: no training crop can be made; label objects, "
        "or keep some empty crops (empty_crops 'keep' or a rate above 0)"
    )


def _signature(target: str) -> dict[str, tf.TensorSpec]:
    signature = {
        "image": tf.TensorSpec((None, None, 1), tf.float32),
        "fill": tf.TensorSpec((), tf.float32),
        "crops": tf.TensorSpec((), tf.int64),
        "starts": tf.TensorSpec((None, 2), tf.int32),
    }
    if target == "semantic":
        signature["mask"] = tf.TensorSpec((None, None, None), tf.uint8)
    else:
        signature["boxes"] = tf.TensorSpec((None, 4), tf.float32)
        signature["classes"] = tf.TensorSpec((None,), tf.int32)
        signature["areas"] = tf.TensorSpec((None,), tf.float32)
    if target == "instances":
        signature["masks"] = tf.TensorSpec((None, None, None), tf.uint8)
    return signature


def _elements(
    records: Sequence[LabeledImage],
    classes: Sequence[str],
    target: str,
    window: int,
    stride: int,
    line_width: float,
    resize: Resize,
    border_width: int = 0,
    distance: bool = False,
) -> Iterator[dict[str, np.ndarray]]:
    """Whole images and their targets, decoded, resized and rasterized (run once, then
    cached)."""
    for record in records:
        annotation = record.annotation
        height, width = annotation.height, annotation.width
        image = resize.image(read_image(record.path))
        tops = window_starts(image.shape[0], window, stride)
        lefts = window_starts(image.shape[1], window, stride)
        element = {
            "image": image[..., np.newaxis],
            "fill": np.float32(image.mean()),
            "crops": np.int64(math.ceil(image.size / window**2)),
            "starts": np.stack(np.meshgrid(tops, lefts, indexing="ij"), -1).reshape(-1, 2),
        }
        if target == "semantic":
            mask = semantic_mask(
                annotation, classes, line_width=line_width, border_width=border_width
            )
            channels = [mask]
            if distance:  # 0..1 stored as 0..255, so that it crops and warps with the mask
                scaled = np.rint(255 * object_distance(annotation, line_width)).astype(np.uint8)
                channels.append(scaled)
            element["mask"] = np.stack([resize.image(c, order=0) for c in channels], axis=-1)
        elif target == "detection":
            targets = box_targets(annotation, classes, line_width=line_width)
            boxes = resize.boxes(targets["boxes"], height, width)
            x0, y0, x1, y1 = boxes.T
            element |= {"boxes": boxes, "classes": targets["classes"]}
            element["areas"] = ((x1 - x0) * (y1 - y0)).astype(np.float32)
        else:
            targets = instance_targets(annotation, classes, line_width=line_width)
            masks = resize.image(targets["masks"].transpose(1, 2, 0), order=0)
            element |= {"boxes": resize.boxes(targets["boxes"], height, width)}
            element["classes"] = targets["classes"]
            element["areas"] = masks.sum(axis=(0, 1)).astype(np.float32)
            element["masks"] = np.ascontiguousarray(masks)
        yield element


def _mask_boxes(masks: tf.Tensor) -> tf.Tensor:
    """Extents of masks ``(S, S, N)`` as float32 ``(N, 4)`` "xyxy" (pixel edges)."""
    size = tf.shape(masks)[0]
    rows = tf.cast(tf.reduce_any(masks > 0, axis=1), tf.int32)  # (S, N)
    cols = tf.cast(tf.reduce_any(masks > 0, axis=0), tf.int32)

    def first_last(hits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        first = tf.argmax(hits, axis=0, output_type=tf.int32)
        last = size - tf.argmax(tf.reverse(hits, [0]), axis=0, output_type=tf.int32)
        return first, last

    y0, y1 = first_last(rows)
    x0, x1 = first_last(cols)
    return tf.cast(tf.stack([x0, y0, x1, y1], axis=1), tf.float32)


class _Cropper:
    """Cuts (and, for training, augments) one crop with its targets."""

    def __init__(self, target: str, window: int, augmentation: Augmentation | None, min_visible):
        self.target, self.window, self.min_visible = target, window, min_visible
        self.augmentation = augmentation or Augmentation()

    def __call__(self, element: dict, linear, centre, seeds) -> dict:
        window, target = self.window, self.target
        crop = {
            "image": warp(
                element["image"],
                linear,
                centre,
                window,
                interpolation=self.augmentation.interpolation,
                fill=element["fill"],
            )
        }
        nearest = {"interpolation": "nearest"}
        shifts = None if seeds is None else jitter_shifts(seeds, window, self.augmentation)
        if shifts is not None:
            crop["image"] = shift_rows(crop["image"], shifts)
        if target == "semantic":
            mask = warp(element["mask"], linear, centre, window, **nearest)
            crop["mask"] = mask if shifts is None else shift_rows(mask, shifts)
        elif target == "instances":
            masks = warp(element["masks"], linear, centre, window, **nearest)
            if shifts is not None:
                masks = shift_rows(masks, shifts)
            counts = tf.reduce_sum(tf.cast(masks, tf.float32), axis=[0, 1])
            expected = element["areas"] * tf.abs(tf.linalg.det(linear))
            keep = (counts > 0) & (counts >= self.min_visible * expected)
            masks = tf.boolean_mask(masks, keep, axis=2)
            crop["masks"] = tf.transpose(masks, [2, 0, 1])
            crop["boxes"] = _mask_boxes(masks)
            crop["classes"] = tf.boolean_mask(element["classes"], keep)
        else:
            moved = warp_boxes(element["boxes"], linear, centre, window)
            if shifts is not None:
                moved = shift_boxes(moved, shifts)
            crop_region = tf.constant([0.0, 0.0, window, window])
            keep, clipped = keep_inside(moved, crop_region, self.min_visible)
            crop["boxes"] = tf.boolean_mask(clipped, keep)
            crop["classes"] = tf.boolean_mask(element["classes"], keep)
        if seeds is None:
            crop["image"] = min_max(crop["image"])
        return crop


def build_dataset(
    records: Sequence[LabeledImage],
    classes: Sequence[str],
    target: str,
    *,
    window: int = 256,
    batch_size: int = 8,
    training: bool = True,
    augmentation: Augmentation | None = None,
    stride: int | None = None,
    seed: int = 0,
    empty_crops: str | float = "keep",
    min_visible: float = 0.5,
    bounding_box_format: str = "xyxy",
    max_boxes: int | str | None = None,
    one_hot: bool = False,
    line_width: float = 1.0,
    shuffle_buffer: int = 64,
    resize: Resize | None = None,
    border_width: int = 0,
    distance: bool = False,
) -> tf.data.Dataset:
    """Batches of crops of ``records`` for target ``target`` ("semantic", "detection",
    "instances"); see the module docstring for their shapes.

    ``training=True`` gives an endless stream of random crops augmented with ``augmentation``
    (None: crops only) and shuffled, its "mosaic" rearranging groups of four shuffled crops
    (:mod:`emdl.data.mosaic`; semantic and detection only); ``training=False`` gives each
    image's sliding windows (``stride`` pixels apart, default ``window // 2``) once, in order,
    unaugmented.
    ``empty_crops`` keeps ("keep"), drops ("drop") or keeps a fraction (a float) of crops without
    any object. An object cut by the crop edge is clipped, and left out of detection and instance
    targets when less than ``min_visible`` of its area is inside. ``line_width`` (pixels) draws
    polylines and points. ``resize`` brings each image (and its targets) to the scale the model
    works at before cropping; windows and boxes are in resized pixels. ``border_width`` > 0
    (semantic only) adds the class ``len(classes) + 1`` where objects touch
    (:func:`emdl.labels.semantic_mask`). ``distance`` (semantic only) adds a second mask
    channel, each object's normalized distance to its outline (:func:`emdl.labels.object_distance`)
    as uint8 0..255. Bad settings raise
    ValueError (InputError for an image smaller than the window) here, before anything runs,
    and so does a training set without objects when crops without objects are dropped (it
    could never yield a crop).
    """
    stride = window // 2 if stride is None else stride
    resize = resize or Resize()
    keep_rate = _check(
        records, target, window, stride, empty_crops, min_visible, resize, max_boxes, augmentation
    )
    classes = list(classes)
    if training and keep_rate == 0:
        _check_objects(records, classes)
    records = list(records)
    source = tf.data.Dataset.from_generator(
        lambda: _elements(
            records, classes, target, window, stride, line_width, resize, border_width, distance
        ),
        output_signature=_signature(target),
    ).cache()
    cropper = _Cropper(target, window, augmentation if training else None, min_visible)
    seed_pair = tf.constant([seed, 0], tf.int64)

    if training:
        crops = source.shuffle(len(records), seed=seed, reshuffle_each_iteration=True).repeat()
        crops = crops.flat_map(lambda e: tf.data.Dataset.from_tensors(e).repeat(e["crops"]))

        def cut(index: tf.Tensor, element: dict) -> dict:
            seeds = crop_seeds(seed_pair + tf.stack([0, index + 1]))
            size = tf.shape(element["image"])
            linear, centre = random_geometry(seeds, size[0], size[1], window, cropper.augmentation)
            return cropper(element, linear, centre, seeds)

    else:
        crops = source.flat_map(
            lambda e: tf.data.Dataset.from_tensor_slices(e["starts"]).map(
                lambda start: {**e, "start": start}
            )
        )

        def cut(index: tf.Tensor, element: dict) -> dict:
            linear, centre = window_geometry(element["start"][0], element["start"][1], window)
            return cropper(element, linear, centre, None)

    autotune = tf.data.AUTOTUNE
    crops = crops.enumerate().map(cut, num_parallel_calls=autotune, deterministic=True)
    if keep_rate < 1:

        def wanted(index: tf.Tensor, crop: dict) -> tf.Tensor:
            found = (
                tf.reduce_any(crop["mask"] > 0)
                if target == "semantic"
                else tf.size(crop["classes"]) > 0
            )
            draw = tf.random.stateless_uniform([], seed_pair + tf.stack([1, index]))
            return found | (draw < keep_rate)

        crops = crops.enumerate().filter(wanted).map(lambda index, crop: crop)
    if training and shuffle_buffer > 1:
        crops = crops.shuffle(shuffle_buffer, seed=seed)
    mosaic = cropper.augmentation.get("mosaic")
    if training and mosaic is not None and mosaic.probability > 0:
        crops = (
            crops.ragged_batch(GROUP, drop_remainder=True)
            .enumerate()
            .map(
                lambda index, group: mosaic_crops(
                    group, seed_pair + tf.stack([3, index]), mosaic, window, min_visible
                ),
                num_parallel_calls=autotune,
                deterministic=True,
            )
            .unbatch()
        )
    crops = crops.map(
        lambda crop: _outputs(
            crop, target, len(classes) + (border_width > 0), bounding_box_format, one_hot
        ),
        num_parallel_calls=autotune,
        deterministic=True,
    )
    if target == "semantic":
        batches = crops.batch(batch_size)
    else:
        batches = crops.ragged_batch(batch_size)
        if max_boxes is not None:
            batches = batches.map(lambda images, targets: (images, _dense(targets, max_boxes)))
    if training:
        # The imaging effects run on whole batches: one vectorized call instead of one per crop.
        batches = batches.enumerate().map(
            lambda index, batch: (
                imaging_effects(batch[0], seed_pair + tf.stack([2, index]), cropper.augmentation),
                batch[1],
            ),
            num_parallel_calls=autotune,
            deterministic=True,
        )
    options = tf.data.Options()
    options.deterministic = True
    # Parallel map calls use the cores; ops inside one call running on several threads compete.
    options.threading.max_intra_op_parallelism = 1
    if not training:
        # Keras' evaluate drops the previous evaluation's iterator, whose destructor waits for
        # its autotuning thread: 15 s in 7 of 9 epochs of a detector run (epoch_time.py).
        options.autotune.enabled = VALIDATION_AUTOTUNE
    return batches.prefetch(autotune).with_options(options)


def _outputs(crop: dict, target: str, n_classes: int, bounding_box_format: str, one_hot: bool):
    image = crop["image"]
    if target == "semantic":
        mask = tf.cast(crop["mask"], tf.int32)
        if one_hot:
            return image, tf.one_hot(mask[..., 0], n_classes + 1, dtype=tf.float32)
        return image, mask
    window = image.shape[0]
    boxes = crop["boxes"]
    if bounding_box_format != "xyxy":
        from keras.utils import bounding_boxes

        boxes = bounding_boxes.convert_format(
            boxes, "xyxy", bounding_box_format, height=window, width=window
        )
    targets = {"boxes": boxes, "classes": tf.cast(crop["classes"], tf.float32)}
    if target == "instances":
        targets["masks"] = crop["masks"]
    return image, targets


def _dense(targets: dict, max_boxes: int | str) -> dict:
    """Ragged ``(B, None, ...)`` targets padded (and cut) to ``max_boxes``, or with "batch" to
    the most boxes a crop of the batch has (at least 1): -1 boxes and classes, empty masks."""
    count = max_boxes
    if max_boxes == "batch":
        # Most crops hold a few of the boxes the busiest image has: padding every crop to that
        # many made the label assignment, which pairs every box with every anchor, that much
        # slower (benchmarks/detector_step.py).
        count = tf.maximum(tf.reduce_max(targets["classes"].row_lengths()), 1)

    def shape(*inner: int | None):
        # A fixed count stays in the static shape; a counted one can only be given as a tensor.
        if isinstance(count, int):
            return [None, count, *inner]
        return tf.stack([-1, count, *(-1 if size is None else size for size in inner)])

    dense = {
        "boxes": targets["boxes"].to_tensor(-1.0, shape=shape(4)),
        "classes": targets["classes"].to_tensor(-1.0, shape=shape()),
    }
    if "masks" in targets:
        dense["masks"] = targets["masks"].to_tensor(0, shape=shape(None, None))
    return dense


def semantic_dataset(records, classes, **settings) -> tf.data.Dataset:
    """:func:`build_dataset` for the U-Net: ``(image, class-index mask)`` batches."""
    return build_dataset(records, classes, "semantic", **settings)


def detection_dataset(records, classes, **settings) -> tf.data.Dataset:
    """:func:`build_dataset` for the detector: ``(image, {"boxes", "classes"})`` batches."""
    return build_dataset(records, classes, "detection", **settings)


def instance_dataset(records, classes, **settings) -> tf.data.Dataset:
    """:func:`build_dataset` for Mask R-CNN: ``(image, {"boxes", "classes", "masks"})``."""
    return build_dataset(records, classes, "instances", **settings)
