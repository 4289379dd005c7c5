"""Test-time augmentation: a model sees each tile in the eight orientations of the square and
its outputs are mapped back and merged, for every model kind.

The eight orientations (:data:`DIHEDRAL`, the dihedral group of the square) are the identity,
the three quarter turns, and those four followed by a horizontal flip. It assumes the defects
have no preferred orientation in the micrographs, so that each view is an equally valid question
to the model; averaging the answers then cancels part of its orientation-dependent error.

- :func:`tta_pixels` wraps a per-pixel batch function (the U-Net's): the eight outputs, each
  turned back, are averaged.
- :func:`tta_detections` wraps a detector's or Mask R-CNN's batch function: the eight sets of
  boxes (and mask grids), each turned back, are clustered and fused into one set per tile.

Both return a batch function of the same signature, so they slot in wherever ``predict_batch``
is taken (:func:`emdl.predict.predict_image`, :func:`emdl.predict.detect_image`,
:func:`emdl.predict.segment_instances`). Tiles are square (``(B, t, t, C)``), as everywhere in
emdl: a quarter turn of a non-square tile would not batch with the others.

Coordinates: a tile's axis 1 is y (rows, down), axis 2 is x (columns); pixel ``(r, c)`` covers
``[c, c + 1) x [r, r + 1)`` in continuous pixel coordinates, and boxes are "xyxy" in them, as
in :mod:`emdl.boxes`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from emdl.boxes import box_iou

PixelBatch = Callable[[np.ndarray], np.ndarray]
DetectionBatch = Callable[[np.ndarray], dict]

# One counter-clockwise quarter turn (np.rot90) and the horizontal flip as 2x2 matrices acting
# on coordinates (u, v) = (x - t/2, y - t/2) relative to the tile's centre: rot90 sends pixel
# (r, c) to (t - 1 - c, r), that is (x, y) -> (y, t - x), or (u, v) -> (v, -u).
_TURN = np.array([[0, 1], [-1, 0]])
_FLIP = np.array([[-1, 0], [0, 1]])


@dataclass(frozen=True)
class Transform:
    """One of the eight orientations of the square: ``quarter_turns`` counter-clockwise quarter
    turns as displayed with row 0 on top (``np.rot90``), then, if ``flip``, a left-right flip.

    :meth:`forward` and :meth:`inverse` act on arrays (the tiles, per-pixel outputs or mask
    grids), :meth:`forward_boxes` and :meth:`inverse_boxes` on "xyxy" boxes of a square tile;
    ``inverse(forward(x))`` is ``x`` exactly (only axes are permuted and reversed).
    """

    name: str
    quarter_turns: int
    flip: bool

    @property
    def matrix(self) -> np.ndarray:
        """int ``(2, 2)`` matrix of the forward map on centred coordinates ``(x - t/2,
        y - t/2)``; orthogonal, so its transpose is the inverse map."""
        turn = np.linalg.matrix_power(_TURN, self.quarter_turns)
        return _FLIP @ turn if self.flip else turn

    def forward(self, array: np.ndarray, axes: tuple[int, int] = (1, 2)) -> np.ndarray:
        """``array`` (any dtype) turned and flipped in the plane of ``axes`` = (y axis, x axis),
        which must have equal lengths: tiles ``(B, t, t, C)`` with the default ``(1, 2)``, mask
        grids ``(..., M, M)`` with ``(-2, -1)``. A view of ``array``, same shape and dtype."""
        array = np.rot90(array, self.quarter_turns, axes=axes)
        return np.flip(array, axis=axes[1]) if self.flip else array

    def inverse(self, array: np.ndarray, axes: tuple[int, int] = (1, 2)) -> np.ndarray:
        """The inverse of :meth:`forward`: undo the flip, then turn back."""
        if self.flip:
            array = np.flip(array, axis=axes[1])
        return np.rot90(array, -self.quarter_turns, axes=axes)

    def forward_boxes(self, boxes: np.ndarray, size: int) -> np.ndarray:
        """Boxes float ``(..., 4)`` "xyxy" in pixels of a ``size x size`` tile, mapped to where
        :meth:`forward` puts them; float64, same shape. Exact: each corner goes to a corner."""
        return _map_boxes(boxes, self.matrix, size)

    def inverse_boxes(self, boxes: np.ndarray, size: int) -> np.ndarray:
        """Boxes "xyxy" of a tile that :meth:`forward` made, mapped back to the original tile
        (the inverse of :meth:`forward_boxes`); float64 ``(..., 4)``."""
        return _map_boxes(boxes, self.matrix.T, size)


def _map_boxes(boxes: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """xyxy ``boxes`` ``(..., 4)`` of a ``size``-pixel square tile under the centred linear map
    ``matrix``: both corners mapped, then re-sorted into (min, max) corners."""
    boxes = np.asarray(boxes, np.float64)
    centre = size / 2
    corners = boxes.reshape(*boxes.shape[:-1], 2, 2) - centre  # (..., corner, xy)
    mapped = corners @ matrix.T + centre
    return np.concatenate([mapped.min(axis=-2), mapped.max(axis=-2)], axis=-1)


DIHEDRAL: tuple[Transform, ...] = tuple(
    Transform(f"rot{90 * k}" + ("+flip" if flip else ""), k, flip)
    for flip in (False, True)
    for k in range(4)
)
"""The eight :class:`Transform` s of the square; ``DIHEDRAL[0]`` is the identity."""

VIEWS = len(DIHEDRAL)


def _square_tiles(tiles: np.ndarray) -> np.ndarray:
    tiles = np.asarray(tiles, np.float32)
    if tiles.ndim != 4 or tiles.shape[1] != tiles.shape[2]:
        raise ValueError(f"tiles must be square (B, t, t, C), got shape {tiles.shape}")
    return tiles


def _check_max_batch(max_batch: int | None) -> None:
    if max_batch is not None and max_batch < 1:
        raise ValueError(f"max_batch must be a positive number of tiles, got {max_batch}")


def _views(
    tiles: np.ndarray, max_batch: int | None
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The ``8 * B`` transformed tiles in chunks of at most ``max_batch`` (default ``B``):
    ``(view, tile, batch)`` per chunk, the view and tile indices int ``(n,)`` of each of the
    chunk's float32 tiles ``(n, t, t, C)``. Only one chunk of copies exists at a time."""
    count = len(tiles)
    # View-major order: with the default chunk of B, each call sees one orientation of the whole
    # batch, the batch size (and so the memory) the caller chose for the plain function.
    size = max_batch or max(count, 1)
    for start in range(0, VIEWS * count, size):
        items = np.arange(start, min(start + size, VIEWS * count))
        view, tile = np.divmod(items, count)
        batch = np.stack(
            [DIHEDRAL[v].forward(tiles[b : b + 1])[0] for v, b in zip(view, tile, strict=True)]
        )
        yield view, tile, batch


def tta_pixels(predict_batch: PixelBatch, *, max_batch: int | None = None) -> PixelBatch:
    """``predict_batch`` with test-time augmentation, for per-pixel outputs (the U-Net's).

    ``predict_batch`` maps float32 tiles ``(B, t, t, 1)`` to per-pixel outputs ``(B, t, t, C)``
    (e.g. class probabilities). The returned function has the same signature: it calls
    ``predict_batch`` on the eight transformed copies of every tile (:data:`DIHEDRAL`), at most
    ``max_batch`` tiles per call (default: ``B``, the caller's own batch size, so the peak
    memory of a call is that of the plain function; the 8 copies then take 8 calls), turns each
    output back with the transform's inverse and returns their mean, float32 ``(B, t, t, C)``.

    A function that commutes with turns and flips (a pointwise one, a symmetric blur) gives the
    same output with and without; for others the output is the mean over the eight orientations.
    The mean of probabilities is still a distribution over the classes. Works for any square
    tile size ``t``.
    """
    _check_max_batch(max_batch)

    def augmented(tiles: np.ndarray) -> np.ndarray:
        tiles = _square_tiles(tiles)
        total = None
        for view, tile, batch in _views(tiles, max_batch):
            out = np.asarray(predict_batch(batch))
            if out.ndim != 4 or out.shape[0] != len(batch) or out.shape[1] != out.shape[2]:
                raise ValueError(
                    f"predict_batch must return square (n, t, t, C) for {len(batch)} tiles, "
                    f"got shape {out.shape}"
                )
            if total is None:
                # float64 so that eight equal float32 values average back to exactly themselves.
                total = np.zeros((len(tiles), *out.shape[1:]), np.float64)
            for j, (v, b) in enumerate(zip(view, tile, strict=True)):
                total[b] += DIHEDRAL[v].inverse(out[j], axes=(0, 1))
        if total is None:  # no tiles: nothing to call, so the channel count is unknown
            return np.zeros((0, *tiles.shape[1:3], 0), np.float32)
        return (total / VIEWS).astype(np.float32)

    return augmented


def _fuse(
    boxes: np.ndarray,
    classes: np.ndarray,
    scores: np.ndarray,
    views: np.ndarray,
    masks: np.ndarray | None,
    iou_threshold: float,
    sources: int = VIEWS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """One tile's detections of all views (already mapped back), fused into one set.

    ``boxes`` float ``(N, 4)`` xyxy, ``classes`` ``(N,)``, ``scores`` float ``(N,)``, ``views``
    int ``(N,)`` (which transform saw each, or which of ``sources`` models), ``masks`` float
    ``(N, M, M)`` or None. Returns boxes float32 ``(n, 4)``, classes ``(n,)``, confidence
    float32 ``(n,)`` and masks float32 ``(n, M, M)`` or None, sorted by descending confidence
    (see :func:`tta_detections`; the confidence is the mean over all ``sources``).
    """
    clusters: list[list[int]] = []  # member indices, in the order they joined
    fused = np.zeros((0, 4))  # each cluster's current score-weighted box
    for i in np.argsort(-scores, kind="stable"):
        # Matched against the clusters' fused boxes, not their first members (as weighted box
        # fusion), so views that err in opposite directions still meet near the middle.
        iou = box_iou(boxes[i : i + 1], fused)[0]
        # At most one member per view: a detector's own NMS already split one view's boxes into
        # distinct objects, and it keeps members <= 8 so the confidence stays <= their mean.
        joinable = [
            classes[c[0]] == classes[i] and views[i] not in views[c] and iou[k] > iou_threshold
            for k, c in enumerate(clusters)
        ]
        if any(joinable):
            k = int(np.argmax(np.where(joinable, iou, -1)))
            clusters[k].append(i)
        else:
            k = len(clusters)
            clusters.append([i])
            fused = np.concatenate([fused, boxes[i : i + 1]])
        fused[k] = _weighted_box(boxes[clusters[k]], scores[clusters[k]])
    fused_scores = [scores[c].mean() * len(c) / sources for c in clusters]
    rank = np.argsort(-np.array(fused_scores, np.float64), kind="stable")
    fused_masks = None
    if masks is not None:
        fused_masks = np.zeros((len(clusters), *masks.shape[1:]), np.float32)
        for k, c in enumerate(clusters):
            fused_masks[k] = masks[c].astype(np.float64).mean(axis=0)
        fused_masks = fused_masks[rank]
    return (
        fused.astype(np.float32)[rank],
        np.array([classes[c[0]] for c in clusters], classes.dtype)[rank],
        np.array(fused_scores, np.float32)[rank],
        fused_masks,
    )


def _weighted_box(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The score-weighted mean float64 ``(4,)`` of xyxy ``boxes`` ``(n, 4)``; a plain mean when
    all ``scores`` are 0 (rather than 0 / 0)."""
    weights = np.asarray(scores, np.float64)
    if weights.sum() <= 0:
        weights = np.ones_like(weights)
    return weights @ np.asarray(boxes, np.float64) / weights.sum()


def tta_detections(
    predict_batch: DetectionBatch, *, iou_threshold: float = 0.5, max_batch: int | None = None
) -> DetectionBatch:
    """``predict_batch`` with test-time augmentation, for detectors and Mask R-CNNs.

    ``predict_batch`` maps float32 tiles ``(B, t, t, 1)`` to a dict of numpy arrays (keras-cv's
    ``YOLOV8Detector.predict`` format, as :func:`emdl.predict.detect_image` takes):
    ``"boxes"`` float ``(B, K, 4)`` "xyxy" in tile pixels, ``"classes"`` ``(B, K)``,
    ``"confidence"`` float ``(B, K)``, ``"num_detections"`` int ``(B,)`` (entries beyond it are
    padding and ignored), and optionally ``"masks"`` float ``(B, K, M, M)``, each grid spanning
    its detection's box exactly (row i = y, see :mod:`emdl.predict.masks`).

    The returned function has the same signature. It calls ``predict_batch`` on the eight
    transformed copies of every tile (:data:`DIHEDRAL`), at most ``max_batch`` tiles per call
    (default ``B``, see :func:`tta_pixels`), maps each view's boxes back to the tile
    (:meth:`Transform.inverse_boxes`) and turns its mask grids back the same way (the grid
    turns with its box), then fuses the views per tile:

    - Clusters (greedy, as weighted box fusion): going down the tile's detections of all views
      by descending score, each joins the cluster of its class whose current fused box has
      the highest IoU with it (> ``iou_threshold``, by :func:`emdl.boxes.box_iou`), among the
      clusters with no member from its view yet; failing that it starts a cluster. So a
      cluster has at most one member per view (a view's own boxes are distinct objects).
    - Box: the score-weighted mean of the members' boxes (as weighted box fusion).
    - Mask: the plain mean of the members' grids. Each grid spans its own member's box, not the
      fused box, so averaging them cell by cell is an approximation of resampling them all onto
      the fused box, off by about the members' disagreement about the box (small, as they
      overlap by more than ``iou_threshold``).
    - Confidence: the mean of the members' scores times ``members / 8``, that is the mean over
      all eight views with a view that missed the object counting 0, so an object seen in only
      a few orientations is down-weighted (seen in one: its score / 8). A score threshold
      tuned without augmentation may therefore need lowering.

    Returns the same dict format: ``"boxes"`` float32 ``(B, K_out, 4)``, ``"classes"`` (the
    detector's dtype) ``(B, K_out)``, ``"confidence"`` float32 ``(B, K_out)``,
    ``"num_detections"`` int32 ``(B,)`` and, when the detector gives masks, ``"masks"`` float32
    ``(B, K_out, M, M)``; per tile sorted by descending confidence, padded with -1 to
    ``K_out``, the largest count in the batch (possibly 0). Other keys are dropped.
    """
    _check_max_batch(max_batch)

    def augmented(tiles: np.ndarray) -> dict:
        tiles = _square_tiles(tiles)
        size = tiles.shape[1]
        found = [[] for _ in tiles]  # per tile: (view, boxes, classes, scores, masks) per view
        with_masks = set()
        for view, tile, batch in _views(tiles, max_batch):
            out = {key: np.asarray(value) for key, value in predict_batch(batch).items()}
            with_masks.add("masks" in out)
            for j, (v, b) in enumerate(zip(view, tile, strict=True)):
                n = int(out["num_detections"][j])
                masks = None
                if "masks" in out:
                    masks = DIHEDRAL[v].inverse(out["masks"][j, :n], axes=(-2, -1))
                boxes = DIHEDRAL[v].inverse_boxes(out["boxes"][j, :n], size)
                found[b].append((v, boxes, out["classes"][j, :n], out["confidence"][j, :n], masks))
        if len(with_masks) > 1:
            raise ValueError("predict_batch returned masks for some batches but not for others")
        return fuse_sources(found, iou_threshold, VIEWS)

    return augmented


def fuse_sources(found: list[list[tuple]], iou_threshold: float, sources: int) -> dict:
    """Each tile's detections from ``sources`` sources (the eight views of
    :func:`tta_detections`, or the members of an ensemble, :mod:`emdl.predict.ensemble`) fused
    into one set per tile, as :func:`tta_detections` describes, in its output dict format.

    ``found[b]``: tile ``b``'s ``(source, boxes, classes, scores, masks)`` per source, with
    ``source`` an int in ``[0, sources)``, ``boxes`` float ``(n, 4)`` "xyxy" in the tile's
    pixels, ``classes`` ``(n,)``, ``scores`` float ``(n,)`` and ``masks`` float ``(n, M, M)``
    or None (for every source alike); every tile lists every source once.
    """
    fused = []
    for views in found:
        v, boxes, classes, scores, masks = zip(*views, strict=True)
        counts = [len(s) for s in scores]
        fused.append(
            _fuse(
                np.concatenate(boxes).reshape(-1, 4),
                np.concatenate(classes),
                np.concatenate(scores).astype(np.float64),
                np.repeat(v, counts),
                np.concatenate(masks) if masks[0] is not None else None,
                iou_threshold,
                sources,
            )
        )
    return _padded(fused, len(found))


def _padded(fused: list, count: int) -> dict:
    """Per-tile fused ``(boxes, classes, confidence, masks)`` as the detector's batch dict,
    padded with -1 to the largest count."""
    k = max((len(f[0]) for f in fused), default=0)
    class_dtype = fused[0][1].dtype if fused else np.int32
    out = {
        "boxes": np.full((count, k, 4), -1, np.float32),
        "classes": np.full((count, k), -1, class_dtype),
        "confidence": np.full((count, k), -1, np.float32),
        "num_detections": np.array([len(f[0]) for f in fused], np.int32).reshape(count),
    }
    if fused and fused[0][3] is not None:
        out["masks"] = np.full((count, k, *fused[0][3].shape[1:]), -1, np.float32)
    for b, (boxes, classes, scores, masks) in enumerate(fused):
        n = len(boxes)
        out["boxes"][b, :n], out["classes"][b, :n], out["confidence"][b, :n] = (
            boxes,
            classes,
            scores,
        )
        if masks is not None:
            out["masks"][b, :n] = masks
    return out
