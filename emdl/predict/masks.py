"""Instance masks of a whole image from box-relative mask grids, as a Mask R-CNN predicts them.

A Mask R-CNN gives each detection a small ``M x M`` grid of mask probabilities that spans the
detection's box exactly: cell ``(i, j)`` is centred at ``x = x0 + (j + 0.5) * (x1 - x0) / M``,
``y = y0 + (i + 0.5) * (y1 - y0) / M`` (continuous pixel coordinates: pixel ``(r, c)`` covers
``[c, c + 1) x [r, r + 1)``). Each grid is pasted into the image by bilinear interpolation at the
pixel centres inside its box, and the detections together become labelled instances, the
higher-scoring detection owning the pixels where two overlap.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from skimage.segmentation import relabel_sequential

from emdl.data.resize import Resize
from emdl.predict.detect import detect_image
from emdl.predict.instances import Instances, _boxes_of, _touches_edge


def _window(box: np.ndarray, height: int, width: int) -> tuple[slice, slice]:
    """(row slice, col slice) of the pixels of a ``height x width`` image whose centre lies in
    the xyxy ``box`` (``x0 <= c + 0.5 < x1``, likewise for rows), clipped to the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    # Pixel c's centre c + 0.5 is in [x0, x1) for ceil(x0 - 0.5) <= c < ceil(x1 - 0.5).
    c0, c1, r0, r1 = (int(np.ceil(v - 0.5)) for v in (x0, x1, y0, y1))
    c0, r0 = min(max(c0, 0), width), min(max(r0, 0), height)
    return slice(r0, min(max(r1, r0), height)), slice(c0, min(max(c1, c0), width))


def _interpolation(centres: np.ndarray, start: float, stop: float, cells: int) -> np.ndarray:
    """Weights float64 ``(len(centres), cells)`` of linear interpolation, at the pixel
    ``centres``, of a row of ``cells`` values spanning ``[start, stop)``, edge-clamped."""
    position = (centres - start) / (stop - start) * cells - 0.5
    position = np.clip(position, 0, cells - 1)
    low = np.minimum(np.floor(position).astype(np.int64), max(cells - 2, 0))
    frac = position - low
    weights = np.zeros((len(centres), cells))
    rows = np.arange(len(centres))
    weights[rows, low] = 1 - frac
    if cells > 1:
        weights[rows, low + 1] += frac
    return weights


def paste_mask(
    mask: np.ndarray, box: np.ndarray, height: int, width: int, threshold: float = 0.5
) -> tuple[tuple[slice, slice], np.ndarray]:
    """The pixels of a ``height x width`` image that a mask grid puts in its object.

    ``mask``: float ``(Mh, Mw)`` probabilities spanning ``box`` exactly (see the module).
    ``box``: float ``(4,)`` xyxy in pixels of the image, which may reach beyond it. Only pixels
    whose centre lies in the box (``x0 <= c + 0.5 < x1``, likewise for rows) can be foreground;
    there the grid is interpolated bilinearly at the pixel centre, values beyond the outer cell
    centres taken from the nearest cell (as ``scipy.ndimage.map_coordinates(order=1,
    mode="nearest")``), and a pixel is foreground when its value exceeds ``threshold``.

    Returns ``((rows, cols), pasted)``: the slices of the box's pixel window clipped to the
    image, and bool ``(rows, cols)`` pasted, True for the foreground pixels of that window.
    """
    mask = np.asarray(mask, np.float64)
    if mask.ndim != 2 or 0 in mask.shape:
        raise ValueError(f"mask must be a non-empty 2-D grid (Mh, Mw), got shape {mask.shape}")
    box = np.asarray(box, np.float64).reshape(-1)
    if box.shape != (4,):
        raise ValueError(f"box must be 4 numbers x0, y0, x1, y1, got shape {box.shape}")
    rows, cols = _window(box, height, width)
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    if 0 in shape:
        return (rows, cols), np.zeros(shape, bool)
    x0, y0, x1, y1 = box
    # Bilinear interpolation on a grid of pixel centres is separable: one small matrix per axis.
    across = _interpolation(np.arange(cols.start, cols.stop) + 0.5, x0, x1, mask.shape[1])
    down = _interpolation(np.arange(rows.start, rows.stop) + 0.5, y0, y1, mask.shape[0])
    return (rows, cols), down @ mask @ across.T > threshold


def instances_from_masks(
    masks: np.ndarray,
    mask_boxes: np.ndarray,
    classes: np.ndarray,
    scores: np.ndarray,
    height: int,
    width: int,
    *,
    score_threshold: float = 0.0,
    mask_threshold: float = 0.5,
    min_area: float = 0.0,
) -> Instances:
    """Instances of a ``height x width`` image from ``N`` detections with masks.

    ``masks``: float ``(N, Mh, Mw)`` mask probabilities, mask ``i`` spanning ``mask_boxes[i]``
    (float ``(N, 4)`` xyxy in image pixels, possibly reaching beyond the image); a detection's
    pixels are those :func:`paste_mask` gives with ``mask_threshold``. ``classes``: int ``(N,)``
    0-based; ``scores``: float ``(N,)``.

    Detections scoring below ``score_threshold`` are dropped. Masks are pasted in ascending
    score order, so where two overlap the higher-scoring detection owns the pixel (ties go to
    the earlier detection). Instances left with fewer than ``max(min_area, 1)`` pixels are
    dropped (their pixels become background), and the rest numbered ``1..N`` in descending score
    order. ``Instances.boxes`` is the box around each instance's pixels, ``scores`` the
    detection scores and ``touches_edge`` True for an instance in the outermost pixels.
    """
    masks = np.asarray(masks, np.float32)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, Mh, Mw), got shape {masks.shape}")
    count = len(masks)
    mask_boxes = np.asarray(mask_boxes, np.float32)
    classes = np.asarray(classes)
    scores = np.asarray(scores, np.float32)
    for name, array, shape in (
        ("mask_boxes", mask_boxes, (count, 4)),
        ("classes", classes, (count,)),
        ("scores", scores, (count,)),
    ):
        if array.shape != shape:
            raise ValueError(f"{name} must have shape {shape} for {count} masks, got {array.shape}")
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height} x {width}")
    if not 0 <= mask_threshold < 1:
        raise ValueError(f"mask_threshold must be in [0, 1), got {mask_threshold}")
    if min_area < 0:
        raise ValueError(f"min_area must be >= 0, got {min_area}")
    wanted = np.flatnonzero(scores >= score_threshold)
    # Rank 0 is the best detection; it is pasted last, so that it owns what it overlaps.
    ranked = wanted[np.argsort(-scores[wanted], kind="stable")]
    labels = np.zeros((height, width), np.int32)
    for rank in range(len(ranked) - 1, -1, -1):
        index = ranked[rank]
        (rows, cols), pasted = paste_mask(
            masks[index], mask_boxes[index], height, width, mask_threshold
        )
        labels[rows, cols][pasted] = rank + 1
    areas = np.bincount(labels.ravel(), minlength=len(ranked) + 1)[1:]
    keep = areas >= max(min_area, 1)
    # The dropped instances become background, and relabel_sequential numbers the kept ones
    # 1..N in the order of their labels, which is rank order (int32 labels stay int32).
    labels = relabel_sequential(np.where(np.r_[False, keep][labels], labels, 0))[0]
    kept = ranked[keep]
    count = len(kept)
    return Instances(
        labels,
        _boxes_of(labels, count),
        classes[kept].astype(np.int32),
        scores[kept].astype(np.float32),
        _touches_edge(labels, count),
        int(height),
        int(width),
    )


def segment_instances(
    predict_batch: Callable[[np.ndarray], dict],
    image: np.ndarray,
    *,
    tile: int = 512,
    overlap: int = 128,
    resize: Resize | None = None,
    batch_size: int = 1,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.0,
    mask_threshold: float = 0.5,
    min_area: float = 0.0,
) -> Instances:
    """Instances in a whole micrograph ``image`` (float ``(H, W)``, any size) found by a Mask
    R-CNN in overlapping tiles.

    ``predict_batch`` maps float32 tiles ``(B, tile, tile, 1)`` in [0, 1] to the dict of
    :func:`emdl.predict.detect.detect_image` with ``"masks"`` float ``(B, K, M, M)``, e.g. the
    Mask R-CNN's ``predict_on_batch``. Detections of all tiles are merged by
    :func:`~emdl.predict.detect.detect_image` (an object on a tile border is found once, whole,
    when the overlap is at least its size), and their masks pasted into the image by
    :func:`instances_from_masks`, in pixels of the original image whatever ``resize`` is.
    """
    found = detect_image(
        predict_batch,
        image,
        tile=tile,
        overlap=overlap,
        resize=resize,
        batch_size=batch_size,
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
    )
    if "masks" not in found:
        raise ValueError('predict_batch returned no "masks": it is not an instance segmenter')
    height, width = np.shape(image)
    return instances_from_masks(
        found["masks"],
        found["mask_boxes"],
        found["classes"],
        found["scores"],
        height,
        width,
        score_threshold=score_threshold,
        mask_threshold=mask_threshold,
        min_area=min_area,
    )
