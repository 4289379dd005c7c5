"""Defect instances from a model's output: a U-Net's probability map or a detector's boxes.

A probability map becomes instances by thresholding, connected components and a watershed on the
distance transform that splits touching objects: each object's distance transform peaks near its
centre, and two touching objects meet at a neck where it dips. A neck splits two objects when the
peak on each side rises at least ``split_depth`` pixels above it (h-maxima). For two discs of
radius ``r`` whose centres are ``d`` apart that dip is ``r - sqrt(r**2 - d**2 / 4)``: ``r`` when
they just touch, 0 when they coincide. The default ``split_depth`` is a tenth of the typical
object radius (the median over connected components of their largest distance to the
background, which merging does not change), and at least one pixel, below which the pixel grid
alone makes dips: discs of radius 10 split while their centres are more than about 9 pixels
apart. (On the bubbles images, radius about 31, depths from 8 down to 2 pixels split from 21 to
26 objects, the extra ones real bubble pairs the U-Net paints as one blob.)

Objects cut by the image edge are flagged (``touches_edge``): their size is not their real size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import local_maxima, reconstruction
from skimage.segmentation import relabel_sequential, watershed

# The smallest split depth, in pixels: outline noise on a pixel grid makes dips of about this.
MIN_SPLIT_DEPTH = 1.0
# The default split depth as a fraction of the typical object radius.
SPLIT_FRACTION = 0.1
# 8-connectivity.
_EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class Instances:
    """Defects found in one ``height x width`` image.

    ``labels``: int32 ``(height, width)``, 0 background and ``i`` the pixels of defect ``i``
    (1-based, ``1..N``), or None when the defects are boxes. ``boxes``: float32 ``(N, 4)``
    "xyxy" in pixels (continuous coordinates: pixel ``(r, c)`` covers ``[c, c + 1) x [r, r + 1)``);
    for masks, the box around each defect's pixels. ``classes``: int32 ``(N,)``, 0-based indices
    into the run's classes. ``scores``: float32 ``(N,)`` in [0, 1] (a mask's mean foreground
    probability, a box's detector confidence). ``touches_edge``: bool ``(N,)``, True for a defect
    that reaches the outermost row or column of pixels. Defect ``i`` is row ``i - 1``.
    """

    labels: np.ndarray | None
    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    touches_edge: np.ndarray
    height: int
    width: int

    def __len__(self) -> int:
        return len(self.classes)


def foreground_probability(probabilities: np.ndarray) -> np.ndarray:
    """float32 ``(H, W)`` probability of any defect from a U-Net's ``(H, W, C)`` output: the one
    sigmoid channel, or 1 minus the background (channel 0) of a softmax."""
    if probabilities.ndim != 3:
        raise ValueError(f"probabilities must be (H, W, C), got shape {probabilities.shape}")
    if probabilities.shape[-1] == 1:
        return probabilities[..., 0].astype(np.float32)
    return (1 - probabilities[..., 0]).astype(np.float32)


def split_touching(mask: np.ndarray, split_depth: float | None = None) -> np.ndarray:
    """Instance labels int32 ``(H, W)`` (0 background, ``1..N``) of a bool ``(H, W)`` mask:
    connected components (8-connected), with touching objects split by a watershed on the
    distance transform where a neck is at least ``split_depth`` pixels shallower than the peaks
    on both sides (see the module; None: ``SPLIT_FRACTION`` of the typical radius, at least
    ``MIN_SPLIT_DEPTH``). Objects are numbered in raster order of their first marker (the
    h-maximum they grow from), then those without one in raster order of their first pixel.

    The distance transform and the h-maxima are computed per component, on its bounding box
    with a pixel of margin: the same values as over the whole image (see :func:`_crop_peaks`)
    in a fraction of the time and memory. (When those boxes together would cover more than the
    image, as long diagonal objects can, the whole image is computed at once.) The watershed
    floods the whole image at once, so that ties between equal pixels are settled as before.
    """
    mask = np.asarray(mask, bool)
    components, count = ndi.label(mask, structure=_EIGHT)
    if count == 0:
        return components.astype(np.int32)
    # Each component's bounding box with a pixel of margin.
    height, width = mask.shape
    crops = [
        (
            slice(max(r.start - 1, 0), min(r.stop + 1, height)),
            slice(max(c.start - 1, 0), min(c.stop + 1, width)),
        )
        for r, c in ndi.find_objects(components)
    ]
    whole = sum((r.stop - r.start) * (c.stop - c.start) for r, c in crops) > mask.size
    # The distance transform of the mask (0 on the background), and each component's maximum.
    if whole:
        distance = ndi.distance_transform_edt(mask)
        radii = ndi.maximum(distance, components, np.arange(1, count + 1))
    else:
        distance = np.zeros(mask.shape)
        radii = np.empty(count)
        for index, (rows, cols) in enumerate(crops):
            own = components[rows, cols] == index + 1
            crop_distance = ndi.distance_transform_edt(own)
            distance[rows, cols][own] = crop_distance[own]
            radii[index] = crop_distance.max()
    if split_depth is None:
        split_depth = max(MIN_SPLIT_DEPTH, SPLIT_FRACTION * float(np.median(radii)))
    if split_depth <= 0:
        raise ValueError(f"split_depth must be positive, got {split_depth}")
    if whole:
        peaks = _crop_peaks(mask, distance, split_depth)
    else:
        peaks = np.zeros(mask.shape, bool)
        for index, (rows, cols) in enumerate(crops):
            # A component no deeper than split_depth has no peak (see _crop_peaks); a crop
            # without background is the whole image, computed as it is.
            own = components[rows, cols] == index + 1
            if radii[index] > split_depth or own.all():
                crop_distance = np.where(own, distance[rows, cols], 0.0)
                peaks[rows, cols] |= _crop_peaks(own, crop_distance, split_depth)
    del components
    markers, _ = ndi.label(peaks, structure=_EIGHT)
    del peaks
    np.negative(distance, out=distance)
    labels = watershed(distance, markers, mask=mask)
    del distance, markers
    # An object thinner than 2 * split_depth has no h-maximum: it is one object as it is. (So
    # is a piece that the 4-connected flooding does not reach from a marker.)
    rest = mask & (labels == 0)
    if rest.any():
        extra, _ = ndi.label(rest, structure=_EIGHT)
        labels[rest] = extra[rest] + labels.max()
    # Every marker keeps its own pixels and no extra piece is empty: the labels are 1..N.
    return labels.astype(np.int32, copy=False)


def _crop_peaks(own: np.ndarray, distance: np.ndarray, split_depth: float) -> np.ndarray:
    """The h-maxima (``h = split_depth``) of the pixels ``own`` (bool) of a crop whose distance
    transform ``distance`` is 0 outside them: the plateaus of the reconstruction of
    ``distance - h`` under ``distance`` that rise above all their neighbours. (skimage's
    h_maxima marks each peak's top apart, so equal peaks joined above their depth would split.)

    Over a whole image, the reconstruction on a component is the one within the component,
    raised to the background's level, 0 as soon as any component is deeper than h; a crop around
    the component with background in it gives the same, so the peaks are the whole image's. A
    component no deeper than h is flat at the background's level, joined to it: no peak.
    """
    lowered = reconstruction(distance - split_depth, distance, method="dilation")
    return local_maxima(lowered, connectivity=2) & own


def _touches_edge(labels: np.ndarray, count: int) -> np.ndarray:
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    touches = np.zeros(count + 1, bool)
    touches[edge] = True
    return touches[1:]


def _boxes_of(labels: np.ndarray, count: int) -> np.ndarray:
    boxes = np.zeros((count, 4), np.float32)
    for index, found in enumerate(ndi.find_objects(labels, max_label=count)):
        rows, cols = found
        boxes[index] = (cols.start, rows.start, cols.stop, rows.stop)
    return boxes


def instances_from_probabilities(
    probabilities: np.ndarray,
    *,
    threshold: float = 0.5,
    min_area: float = 0.0,
    split_depth: float | None = None,
) -> Instances:
    """Instances of a U-Net's probabilities float32 ``(H, W, C)`` (one sigmoid channel, or a
    softmax with background at channel 0).

    Pixels whose foreground probability (:func:`foreground_probability`) exceeds ``threshold``
    are split into objects by :func:`split_touching`; objects of fewer than ``min_area`` pixels
    are dropped and the rest numbered ``1..N`` in raster order of their first marker. A softmax
    object's class is the foreground class with the highest mean probability over its pixels.
    """
    _check_settings(threshold, min_area)
    foreground = foreground_probability(probabilities)
    labels = split_touching(foreground > threshold, split_depth)
    return _labelled(labels, foreground, probabilities[..., 1:], min_area)


def instances_from_borders(
    probabilities: np.ndarray, *, threshold: float = 0.5, min_area: float = 0.0
) -> Instances:
    """Instances of an instance-aware U-Net's softmax ``(H, W, classes + 2)``: channel 0 the
    background, then the classes, last the borders where objects touch.

    The foreground (``1 - p_background > threshold``) is cut along the borders: each connected
    core (foreground pixels whose likeliest non-background channel is a class, not the border)
    seeds one object, and the objects grow back over the border pixels by a watershed on the
    distance to the cores, so that each keeps its whole outline. A foreground piece without a core
    is an object of its own. Objects of fewer than ``min_area`` pixels are dropped; classes and
    scores as :func:`instances_from_probabilities`.
    """
    _check_settings(threshold, min_area)
    if probabilities.ndim != 3 or probabilities.shape[-1] < 3:
        raise ValueError(
            f"border probabilities must be (H, W, classes + 2), got {probabilities.shape}"
        )
    foreground = foreground_probability(probabilities)
    mask = foreground > threshold
    core = mask & (probabilities[..., 1:-1].max(axis=-1) >= probabilities[..., -1])
    markers, count = ndi.label(core, structure=_EIGHT)
    # The cores grow over the border pixels by distance (nearest core first, as a flood inside
    # the foreground), which parts two objects midway across their border band; the border
    # probability itself is flat across a confident band and would part them by flooding order.
    labels = watershed(ndi.distance_transform_edt(~core), markers, mask=mask)
    rest = mask & (labels == 0)
    if rest.any():
        extra, _ = ndi.label(rest, structure=_EIGHT)
        labels[rest] = extra[rest] + count
    return _labelled(labels.astype(np.int32), foreground, probabilities[..., 1:-1], min_area)


def instances_from_distance(
    probabilities: np.ndarray,
    *,
    threshold: float = 0.5,
    min_area: float = 0.0,
    peak_depth: float = 0.15,
) -> Instances:
    """Instances of a distance U-Net's output float32 ``(H, W, C + 1)``: the class channels as
    :func:`instances_from_probabilities` takes them, then the predicted normalized distance of
    each pixel to its object's outline (1 at object centres, :func:`emdl.labels.object_distance`).

    The foreground (probability above ``threshold``) is split by a watershed of the predicted
    distance from its h-maxima of depth ``peak_depth`` (in the map's units: a peak must stand
    that much above the saddle to its neighbour to seed an object of its own), so objects that
    overlap part where the distance of their union would not dip; a foreground piece without a
    peak is an object of its own. Objects of fewer than ``min_area`` pixels are dropped; classes
    and scores as :func:`instances_from_probabilities`.
    """
    _check_settings(threshold, min_area)
    if probabilities.ndim != 3 or probabilities.shape[-1] < 2:
        raise ValueError(
            f"distance U-Net outputs must be (H, W, channels + 1), got {probabilities.shape}"
        )
    if not 0 < peak_depth < 1:
        raise ValueError(f"peak_depth must be in (0, 1), got {peak_depth}")
    classes = probabilities[..., :-1]
    foreground = foreground_probability(classes)
    mask = foreground > threshold
    distance = np.where(mask, probabilities[..., -1], 0.0).astype(np.float64)
    markers, count = ndi.label(_crop_peaks(mask, distance, peak_depth), structure=_EIGHT)
    labels = watershed(-distance, markers, mask=mask)
    rest = mask & (labels == 0)
    if rest.any():
        extra, _ = ndi.label(rest, structure=_EIGHT)
        labels[rest] = extra[rest] + count
    return _labelled(labels.astype(np.int32), foreground, classes[..., 1:], min_area)


def _check_settings(threshold: float, min_area: float) -> None:
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    if min_area < 0:
        raise ValueError(f"min_area must be >= 0, got {min_area}")


def _labelled(
    labels: np.ndarray, foreground: np.ndarray, class_probabilities: np.ndarray, min_area: float
) -> Instances:
    """Instances of object ids ``labels`` int32 ``(H, W)`` (``1..N``): objects under
    ``min_area`` pixels dropped, scores the mean ``foreground`` probability, classes the
    channel of ``class_probabilities`` ``(H, W, K)`` (K = 0: one class) with the highest mean."""
    count = int(labels.max())
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = areas >= min_area
    if not keep.all():
        # The dropped objects become background, and relabel_sequential numbers the kept ones
        # 1..N in the order of their labels (int32 labels stay int32).
        labels = relabel_sequential(np.where(np.r_[False, keep][labels], labels, 0))[0]
        count = int(keep.sum())
        areas = areas[keep]
    flat = labels.ravel()
    sums = np.bincount(flat, weights=foreground.ravel(), minlength=count + 1)[1:]
    scores = (sums / np.maximum(areas, 1)).astype(np.float32)
    if class_probabilities.shape[-1] <= 1:
        classes = np.zeros(count, np.int32)
    else:
        per_class = [
            np.bincount(flat, weights=class_probabilities[..., c].ravel(), minlength=count + 1)[1:]
            for c in range(class_probabilities.shape[-1])
        ]
        classes = np.argmax(np.stack(per_class, axis=-1), axis=-1).astype(np.int32).reshape(-1)
    height, width = labels.shape
    return Instances(
        labels,
        _boxes_of(labels, count),
        classes,
        scores,
        _touches_edge(labels, count),
        height,
        width,
    )


def instances_from_boxes(
    boxes: np.ndarray,
    classes: np.ndarray,
    scores: np.ndarray,
    height: int,
    width: int,
    *,
    score_threshold: float = 0.0,
    min_area: float = 0.0,
) -> Instances:
    """One instance per detector box: ``boxes`` float ``(N, 4)`` "xyxy" in pixels of the
    ``height x width`` image, ``classes`` int ``(N,)`` 0-based, ``scores`` float ``(N,)``.

    Boxes scoring below ``score_threshold`` or of area (width x height) below ``min_area``
    square pixels are dropped. A box touches the edge when it reaches into the outermost row or
    column of pixels (x0 < 1, y0 < 1, x1 > width - 1 or y1 > height - 1), as a mask would.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    classes = np.asarray(classes, np.int32).reshape(-1)
    scores = np.asarray(scores, np.float32).reshape(-1)
    if not len(boxes) == len(classes) == len(scores):
        raise ValueError(
            f"boxes, classes and scores differ in length: {len(boxes)}, {len(classes)}, "
            f"{len(scores)}"
        )
    area = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 0), axis=1)
    keep = (scores >= score_threshold) & (area >= min_area) & (area > 0)
    boxes, classes, scores = boxes[keep], classes[keep], scores[keep]
    x0, y0, x1, y1 = boxes.T
    touches = (x0 < 1) | (y0 < 1) | (x1 > width - 1) | (y1 > height - 1)
    return Instances(None, boxes, classes, scores, touches, int(height), int(width))
