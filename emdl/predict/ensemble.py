"""Ensembles of runs: several trained models of one kind predict every tile, and their answers
are combined into one, as test-time augmentation combines the views of a tile
(:mod:`emdl.predict.tta`).

- :func:`average_pixels` (the U-Net's): the members' per-pixel outputs (probabilities) are
  averaged, so the ensemble's probability map is the mean of the members' maps.
- :func:`merge_detections` (the detector's and Mask R-CNN's): the members' detections of each
  tile are fused as the eight views are (:func:`emdl.predict.tta.fuse_sources`: clusters of
  at most one detection per member at box IoU > ``iou_threshold``, their score-weighted box and
  mean mask, and the mean score over all the members, a member that missed the object
  counting 0: an object only one of two members finds keeps half its score).
- :class:`Ensemble` stands in for a Keras model where a run's kind predicts (the kinds ask a
  model only for ``predict_on_batch``), so an ensemble predicts with the first run's tiling,
  test-time augmentation, post-processing and threshold, exactly as that run alone would. An
  ensemble of one model gives that model's outputs.
- :func:`member_agreement`: the ensemble's uncertainty, the fraction of the members that find
  each of its defects (:func:`emdl.predict.uncertainty.agreement`).

The members must be of one kind and predict the same classes; the commands check that
(:func:`emdl.commands.predict.load_predictors`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from emdl.predict.instances import Instances
from emdl.predict.tta import DetectionBatch, PixelBatch, fuse_sources
from emdl.predict.uncertainty import IOU_THRESHOLD, Agreement, agreement


def _check_members(batches: Sequence) -> None:
    if not batches:
        raise ValueError("an ensemble needs at least one member")


def average_pixels(batches: Sequence[PixelBatch]) -> PixelBatch:
    """One batch function from the members' per-pixel ``batches`` (each float32 tiles
    ``(B, t, t, 1)`` -> ``(B, t, t, C)``): the mean of their outputs, float32 ``(B, t, t, C)``
    (summed in float64, so that equal outputs average back to exactly themselves). A ValueError
    when the members' outputs differ in shape."""
    _check_members(batches)

    def averaged(tiles: np.ndarray) -> np.ndarray:
        outputs = [np.asarray(predict(tiles)) for predict in batches]
        shapes = {out.shape for out in outputs}
        if len(shapes) > 1:
            raise ValueError(f"the ensemble's members give outputs of different shapes {shapes}")
        total = np.zeros(outputs[0].shape, np.float64)
        for out in outputs:
            total += out
        return (total / len(outputs)).astype(np.float32)

    return averaged


def merge_detections(
    batches: Sequence[DetectionBatch], *, iou_threshold: float = 0.5
) -> DetectionBatch:
    """One batch function from the members' detection ``batches`` (float32 tiles ``(B, t, t,
    1)`` -> the dict of :func:`emdl.predict.tta.tta_detections`: ``boxes``, ``classes``,
    ``confidence``, ``num_detections``, optionally ``masks``): per tile, the members'
    detections fused (see the module) into that dict format, padded with -1."""
    _check_members(batches)

    def merged(tiles: np.ndarray) -> dict:
        found: list[list[tuple]] = [[] for _ in range(len(tiles))]
        with_masks = set()
        for member, predict in enumerate(batches):
            out = {key: np.asarray(value) for key, value in predict(tiles).items()}
            with_masks.add("masks" in out)
            for b in range(len(tiles)):
                n = int(out["num_detections"][b])
                masks = out["masks"][b, :n] if "masks" in out else None
                boxes = out["boxes"][b, :n].astype(np.float64)
                found[b].append(
                    (member, boxes, out["classes"][b, :n], out["confidence"][b, :n], masks)
                )
        if len(with_masks) > 1:
            raise ValueError("some of the ensemble's members give masks and others do not")
        return fuse_sources(found, iou_threshold, len(batches))

    return merged


class Ensemble:
    """Models of one kind as one: ``predict_on_batch`` combines the members' own
    (:func:`average_pixels` when ``pixels``, else :func:`merge_detections` at
    ``iou_threshold``). ``members``: objects with ``predict_on_batch`` (Keras models)."""

    def __init__(self, members: Sequence[Any], *, pixels: bool, iou_threshold: float = 0.5):
        self.members = tuple(members)
        batches = [member.predict_on_batch for member in self.members]
        if pixels:
            self.predict_on_batch = average_pixels(batches)
        else:
            self.predict_on_batch = merge_detections(batches, iou_threshold=iou_threshold)


def member_agreement(
    predict: Callable[[np.ndarray], Instances],
    members: Sequence[Callable[[np.ndarray], Instances]],
    image: np.ndarray,
    *,
    iou_threshold: float = IOU_THRESHOLD,
) -> Agreement:
    """:class:`~emdl.predict.uncertainty.Agreement` of the ensemble's prediction
    ``predict(image)`` with each member's own, ``members`` (one ``predict`` per member, with the
    same post-processing): a defect's agreement is the fraction of the members that find it at
    IoU >= ``iou_threshold`` (it may be 0: averaged probabilities can cross the threshold where
    no member's do), a member's defects that match none of the ensemble's are unexplained.
    ``image`` float ``(H, W)``; each member predicts it once, one after the other."""
    found = predict(image)
    return agreement(found, (own(image) for own in members), iou_threshold=iou_threshold)
