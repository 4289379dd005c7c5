"""Instance segmentation scores: COCO mask AP, box scores and the foreground IoU of the union of
the confident instances, pooled over images.

Predictions are :class:`~emdl.predict.instances.Instances` with masks (``labels``); truth is
:func:`emdl.labels.instance_targets`' ``{"boxes", "classes", "masks"}``. Mask AP comes from
pycocotools (iouType "segm") like the box AP of
:func:`~emdl.metrics.detection.score_detections`, which scores the boxes;
:func:`~emdl.metrics.evaluate.score_masks` scores the unions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from pycocotools import mask as mask_utils
from scipy import ndimage as ndi

from emdl.metrics.detection import _classes, _coco_ap, score_detections
from emdl.metrics.evaluate import score_masks
from emdl.predict.instances import Instances

# A uint8 class-index mask holds the background and at most 255 classes.
MAX_CLASSES = 255


def union_mask(instances: Instances, score_threshold: float = 0.7) -> np.ndarray:
    """Class-index mask of the instances scoring above ``score_threshold``.

    Parameters
    ----------
    instances : Instances
        With masks: ``labels`` int ``(H, W)``, 0 background and ``i`` instance ``i`` (1-based).
    score_threshold : float
        Instances with score strictly greater are kept (score 0.7 is dropped at 0.7).

    Returns
    -------
    numpy.ndarray
        uint8 ``(H, W)``: 0 background, ``c + 1`` a pixel of a kept instance of class ``c``
        (0-based). ``labels`` gives each pixel at most one instance, so classes cannot overlap;
        a dropped instance's pixels are background.

    Raises
    ------
    ValueError
        When ``labels`` is None (boxes only), instance numbers exceed the instances, lengths
        differ, or a class index does not fit a uint8 mask.
    """
    labels = _labels(instances, "instances")
    classes = np.asarray(instances.classes).reshape(-1)
    scores = np.asarray(instances.scores).reshape(-1)
    count = len(classes)
    if len(scores) != count:
        raise ValueError(f"{len(scores)} scores for {count} instances")
    if labels.size and (labels.min() < 0 or labels.max() > count):
        raise ValueError(f"labels must be in 0..{count} for {count} instances")
    if count and (classes.min() < 0 or classes.max() >= MAX_CLASSES):
        raise ValueError(f"classes must be in 0..{MAX_CLASSES - 1} for a uint8 mask")
    # Instance number -> class index + 1 (0 for the background and the dropped instances).
    lookup = np.zeros(count + 1, np.uint8)
    keep = scores > score_threshold
    lookup[1:][keep] = classes[keep] + 1
    return lookup[labels]


def score_instances(
    images: Iterable[tuple[str, Instances, dict]],
    classes: Sequence[str],
    *,
    score_threshold: float = 0.7,
) -> dict:
    """Score ``(name, predicted, truth)`` instances of ``classes``, pooled over all images.

    ``predicted``: :class:`Instances` with ``labels`` int ``(H, W)`` (0 background, ``1..N``),
    ``boxes`` float ``(N, 4)`` "xyxy" pixels, ``classes`` int ``(N,)`` 0-based indices into
    ``classes``, ``scores`` float ``(N,)``. ``truth``: ``"boxes"`` ``(M, 4)`` "xyxy",
    ``"classes"`` int ``(M,)``, ``"masks"`` 0/1 ``(M, H, W)``, which may overlap (as
    :func:`emdl.labels.instance_targets` gives).

    Returns
    -------
    dict
        Plain Python numbers, JSON-ready:

        - ``mask_ap50``, ``mask_ap50_95``: pycocotools mask AP (iouType "segm", 101-point) at
          mask IoU 0.5 and averaged over 0.50:0.05:0.95, all areas, no cap on detections per
          image, mean over the classes that have truth; 0.0 when no class has any. A predicted
          mask is its instance's pixels in ``labels``; a truth mask its full (unoccluded) mask.
        - Every key of :func:`~emdl.metrics.detection.score_detections` of ``predicted.boxes``
          against ``truth["boxes"]`` except ``images``: ``ap50``, ``ap50_95``, ``precision50``,
          ``recall50``, ``f1_50``, ``score_threshold`` (the box score with the best F1, not the
          argument), ``count_error``, ``count_bias`` (at that threshold), ``detections``,
          ``objects``.
        - Every key of :func:`~emdl.metrics.evaluate.score_masks` except ``images``: ``iou``,
          ``dice`` (foreground, mean over classes), ``iou_<class>``, ``dice_<class>``,
          ``pixel_accuracy``, of :func:`union_mask` (instances scoring > ``score_threshold``)
          against the union of the truth masks, painted in the truth's order so that a later
          mask covers an earlier one, as :func:`emdl.labels.semantic_mask` paints the shapes.
        - ``mask_score_threshold``: the ``score_threshold`` argument.
        - ``instances``: predicted instances (any score); ``objects``: truth instances.
        - ``images``: per image ``{"name", "true", "detected", "iou"}``: truth instances,
          instances scoring > ``score_threshold``, and the foreground IoU of the unions (mean
          over classes, 1.0 when both are empty).

    Raises
    ------
    ValueError
        Naming the image when its predicted ``labels`` and truth ``masks`` differ in height
        and width, when ``labels`` is None, lengths differ or a class index is out of range.
    """
    if len(classes) > MAX_CLASSES:
        raise ValueError(f"a uint8 mask holds at most {MAX_CLASSES} classes, got {len(classes)}")
    boxes: list[tuple[str, dict, dict]] = []
    coco_images: list[dict] = []
    truth_masks: list[dict] = []
    found_masks: list[dict] = []
    counts: list[dict] = []

    def unions() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        # One pass over the images: score_masks takes the unions while this keeps only each
        # image's compact parts (boxes, RLE masks), so no image's full masks outlive its turn.
        for index, (name, predicted, truth) in enumerate(images):
            labels, masks, true_classes = _checked(name, predicted, truth, classes)
            boxes.append(
                (
                    name,
                    {
                        "boxes": predicted.boxes,
                        "classes": predicted.classes,
                        "scores": predicted.scores,
                    },
                    {"boxes": truth["boxes"], "classes": truth["classes"]},
                )
            )
            height, width = labels.shape
            coco_images.append({"id": index + 1, "height": height, "width": width})
            for mask, label in zip(masks, true_classes, strict=True):
                truth_masks.append({**_mask_annotation(index, mask, label), "iscrowd": 0})
            for mask, label, score in zip(
                _instance_masks(labels, len(predicted)),
                predicted.classes,
                predicted.scores,
                strict=True,
            ):
                found_masks.append({**_mask_annotation(index, mask, label), "score": float(score)})
            detected = int((np.asarray(predicted.scores) > score_threshold).sum())
            counts.append({"name": name, "true": len(masks), "detected": detected})
            yield name, union_mask(predicted, score_threshold), _truth_union(masks, true_classes)

    pixels = score_masks(unions(), classes)
    mask_ap50, mask_ap50_95 = _coco_ap(
        coco_images, truth_masks, found_masks, len(classes), iou_type="segm"
    )
    detections = score_detections(boxes, classes)
    per_image = [
        {**count, "iou": image["iou"]}
        for count, image in zip(counts, pixels.pop("images"), strict=True)
    ]
    del detections["images"]
    return {
        "mask_ap50": mask_ap50,
        "mask_ap50_95": mask_ap50_95,
        **detections,
        **pixels,
        "mask_score_threshold": float(score_threshold),
        "instances": len(found_masks),
        "objects": len(truth_masks),
        "images": per_image,
    }


def _labels(instances: Instances, name: str) -> np.ndarray:
    if instances.labels is None:
        raise ValueError(f"{name}: instances have no masks (labels is None), only boxes")
    labels = np.asarray(instances.labels)
    if labels.shape != (instances.height, instances.width):
        raise ValueError(
            f"{name}: labels {labels.shape} are not (height, width) = "
            f"{(instances.height, instances.width)}"
        )
    return labels


def _checked(
    name: str, predicted: Instances, truth: dict, classes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The image's predicted labels ``(H, W)``, truth masks bool ``(M, H, W)`` and truth classes
    int64 ``(M,)``, or a ValueError naming the image."""
    labels = _labels(predicted, name)
    masks = np.asarray(truth["masks"]).astype(bool, copy=False)
    if masks.ndim != 3 or masks.shape[1:] != labels.shape:
        raise ValueError(
            f"{name}: predicted labels {labels.shape} and truth masks {masks.shape} differ in "
            "size (truth masks are (M, H, W))"
        )
    true_classes = _classes(truth, classes, name)
    _classes({"classes": predicted.classes}, classes, name)  # before union_mask indexes with them
    if len(true_classes) != len(masks):
        raise ValueError(f"{name}: {len(true_classes)} truth classes for {len(masks)} masks")
    if not len(predicted.scores) == len(predicted.classes) == len(predicted.boxes):
        raise ValueError(f"{name}: boxes, classes and scores differ in length")
    if labels.size and labels.max() > len(predicted):
        raise ValueError(f"{name}: labels reach {labels.max()} for {len(predicted)} instances")
    return labels, masks, true_classes


def _instance_masks(labels: np.ndarray, count: int) -> Iterator[np.ndarray]:
    """Each instance's bool ``(H, W)`` mask in turn, Fortran-ordered as pycocotools encodes.

    One buffer serves all instances, filled and cleared over each instance's bounding box only:
    a whole-image comparison per instance would cost ``N * H * W``. Consume each mask before
    taking the next.
    """
    buffer = np.zeros(labels.shape, np.uint8, order="F")
    for number, found in enumerate(ndi.find_objects(labels, max_label=count), start=1):
        if found is None:  # an instance without pixels (hidden by others): an empty mask
            yield buffer
            continue
        buffer[found] = labels[found] == number
        yield buffer
        buffer[found] = 0


def _mask_annotation(image: int, mask: np.ndarray, label: int) -> dict:
    """A COCO annotation, without id, of the 0/1 ``(H, W)`` ``mask`` of class ``label``
    (0-based) in image ``image`` (0-based)."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {
        "image_id": image + 1,
        "category_id": int(label) + 1,
        "segmentation": rle,
        "area": float(mask_utils.area(rle)),
    }


def _truth_union(masks: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """uint8 ``(H, W)`` class-index mask of bool ``masks`` ``(M, H, W)`` of ``classes``
    (0-based), painted in order: a later mask covers an earlier one."""
    union = np.zeros(masks.shape[1:], np.uint8)
    for mask, label in zip(masks, classes, strict=True):
        union[mask] = label + 1
    return union
