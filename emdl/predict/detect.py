"""Tiled object detection: a detector that sees ``tile x tile`` crops finds objects in a
micrograph of any size.

Detections of all tiles are merged by one class-wise non-max suppression, in which a box cut by
a tile's inner edge (an edge inside the image, not the image border) is a partial view of an
object that a neighbouring tile sees whole. Boxes are ordered first by whether they touch an
inner edge (within ``EDGE`` pixels of the tile as the model sees it), then by descending score.
Going down that order, a box is kept unless a kept box of its class has IoU > ``iou_threshold``
with it or, for a box that touches an inner edge, covers at least ``CONTAINED`` of its area
(a cut box has a low IoU with the whole box it is part of). So an object on a tile border is
found once, with its whole box, provided the overlap is at least the object's size (then some
tile sees it whole); larger objects may be found in pieces.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from emdl.boxes import box_area, box_intersection
from emdl.data.resize import Resize
from emdl.predict.tiled import pad_to_multiple, tile_batches

EDGE = 2.0  # pixels of the tile within which a box touches its edge
CONTAINED = 0.7  # fraction of a cut box's area inside a kept box that suppresses it


def _merge(boxes, classes, scores, cut, iou_threshold: float) -> np.ndarray:
    """Indices kept by class-wise NMS over xyxy ``boxes`` that prefers boxes not ``cut``."""
    area = box_area(boxes)
    order = np.lexsort((-scores, cut))
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        inter = box_intersection(boxes[i : i + 1], boxes)[0]
        iou = inter / np.maximum(area[i] + area - inter, 1e-9)
        contained = cut & (inter >= CONTAINED * area)
        suppressed |= (classes == classes[i]) & ((iou > iou_threshold) | contained)
    return np.array(keep, np.int64)


def detect_image(
    predict_batch: Callable[[np.ndarray], dict],
    image: np.ndarray,
    *,
    tile: int = 512,
    overlap: int = 128,
    resize: Resize | None = None,
    batch_size: int = 4,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.0,
    max_detections: int = 10000,
    normalize_tiles: bool = True,
) -> dict:
    """Objects in ``image`` (float32 ``(H, W)``, any size) found by a detector in tiles.

    ``predict_batch`` maps float32 tiles ``(B, tile, tile, 1)`` in [0, 1] to a dict of numpy
    arrays, the output of keras-cv's ``YOLOV8Detector.predict`` (after its NMS decoding):
    ``"boxes"`` float ``(B, K, 4)`` xyxy in tile pixels, ``"classes"`` int ``(B, K)``,
    ``"confidence"`` float ``(B, K)`` and ``"num_detections"`` int ``(B,)``; entries beyond
    ``num_detections`` (padded with -1) are ignored.

    The image is resized as ``resize`` says, padded (by
    reflection) to at least one tile and a multiple of 32, and cut into ``tile`` x ``tile``
    tiles ``tile - overlap`` apart, each min-max normalized like the training crops unless
    ``normalize_tiles`` is False. Per tile, detections whose box centre lies in the padding are
    dropped and boxes are clipped to the image; all tiles are merged as the module describes.

    Returns ``{"boxes": float32 (N, 4) xyxy in pixels of the original image, "classes": int32
    (N,), "scores": float32 (N,)}`` with scores >= ``score_threshold``, sorted by descending
    score, N <= ``max_detections``.

    When ``predict_batch``'s output also has ``"masks"`` (a Mask R-CNN's float ``(B, K, M, M)``
    mask probabilities, each grid spanning its detection's box exactly), the kept detections'
    masks are returned too: ``"masks"`` float32 ``(N, M, M)`` and ``"mask_boxes"`` float32
    ``(N, 4)``, the box each mask spans in xyxy pixels of the original image. A mask box is the
    detector's box scaled like ``"boxes"`` but not clipped to the image, so that the grid keeps
    its size (see :func:`emdl.predict.masks.paste_mask`).
    """
    image = np.asarray(image, np.float32)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W), got shape {image.shape}")
    if tile <= 0 or tile % 32:
        raise ValueError(f"tile must be a positive multiple of 32, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, {tile}), got {overlap}")
    if max_detections < 0:
        raise ValueError(f"max_detections must be >= 0, got {max_detections}")
    padded, (height, width) = pad_to_multiple((resize or Resize()).image(image), 32, tile)
    found = []  # per tile: boxes (n, 4) in resized-image pixels, classes, scores, cut
    found_masks = []  # per tile, when the detector gives masks: masks (n, M, M), unclipped boxes
    for batch_corners, tiles in tile_batches(
        padded, tile, overlap, batch_size, normalize_tiles=normalize_tiles
    ):
        out = predict_batch(tiles)
        out = {key: np.asarray(value) for key, value in out.items()}
        for k, (t, c) in enumerate(batch_corners):
            n = int(out["num_detections"][k])
            boxes = out["boxes"][k, :n].astype(np.float32) + np.float32([c, t, c, t])
            centre = (boxes[:, :2] + boxes[:, 2:]) / 2
            inside = (centre[:, 0] <= width) & (centre[:, 1] <= height)
            if "masks" in out:
                masks = out["masks"][k, :n][inside].astype(np.float32)
                found_masks.append((masks, boxes[inside]))
            boxes = np.clip(boxes[inside], 0, np.float32([width, height, width, height]))
            x0, y0, x1, y1 = boxes.T
            cut = (
                ((c > 0) & (x0 <= c + EDGE))
                | ((t > 0) & (y0 <= t + EDGE))
                | ((c + tile < width) & (x1 >= c + tile - EDGE))
                | ((t + tile < height) & (y1 >= t + tile - EDGE))
            )
            classes = out["classes"][k, :n][inside].astype(np.int32)
            scores = out["confidence"][k, :n][inside].astype(np.float32)
            found.append((boxes, classes, scores, cut))
    if found_masks and len(found_masks) != len(found):
        raise ValueError("predict_batch returned masks for some batches but not for others")
    boxes, classes, scores, cut = (np.concatenate(parts) for parts in zip(*found, strict=True))
    wanted = scores >= score_threshold
    boxes, classes, scores, cut = boxes[wanted], classes[wanted], scores[wanted], cut[wanted]
    keep = _merge(boxes, classes, scores, cut, iou_threshold)
    keep = keep[np.argsort(-scores[keep], kind="stable")][:max_detections]
    factor = np.float32([width, height] * 2) / np.float32([image.shape[1], image.shape[0]] * 2)
    limit = np.float32([image.shape[1], image.shape[0]] * 2)
    result = {
        "boxes": np.clip(boxes[keep] / factor, 0, limit).astype(np.float32).reshape(-1, 4),
        "classes": classes[keep].astype(np.int32),
        "scores": scores[keep].astype(np.float32),
    }
    if found_masks:
        masks, mask_boxes = (np.concatenate(parts) for parts in zip(*found_masks, strict=True))
        result["masks"] = masks[wanted][keep].astype(np.float32)
        result["mask_boxes"] = (mask_boxes[wanted][keep] / factor).astype(np.float32).reshape(-1, 4)
    return result
