"""How sure a model is of an image: agreement of its predictions across the eight flips and
quarter turns of the image (the views of :data:`emdl.predict.tta.DIHEDRAL`).

A model that has learned what a defect looks like finds the same defects however the image is
turned; where it guesses, the views disagree. The image is predicted in each of the eight views
(whole, by any ``predict(image) -> Instances``, e.g. :meth:`emdl.api.Run.predict`), each view's
defects are mapped back onto the image, and compared with the identity view's, the prediction
itself:

- **object agreement**: for each predicted defect, the fraction of the eight views with a defect
  overlapping it at IoU >= ``iou_threshold`` (0.5; pixel IoU for masks, box IoU for boxes).
  The identity view always agrees, so it is in [1/8, 1]; its **uncertainty** is 1 - agreement.
- **unexplained**: the defects of the views that overlap no predicted defect at that IoU,
  counted per view (their number divided by 8): what the model sometimes sees and did not report.
- **image uncertainty**: ``(sum of object uncertainties + unexplained) / (objects +
  unexplained)``, the mean uncertainty over the defects and the unexplained ones (each of those
  counted as fully uncertain), 0 for an image where no view finds anything.

The comparison itself (:func:`agreement`) takes any predictions of the image in its own
coordinates, whatever made them: the eight views mapped back here (:func:`view_agreement`), or
the members of an ensemble of runs (:func:`emdl.predict.ensemble.member_agreement`), whose
agreement is then the fraction of the members that find each defect of the ensemble.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from emdl.boxes import box_iou
from emdl.predict.instances import Instances
from emdl.predict.tta import DIHEDRAL, Transform

IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class Agreement:
    """The prediction of one image with its views' agreement. ``instances``: the prediction
    (identity view). ``agreement``: float64 ``(N,)``, the fraction of the eight views (or of an
    ensemble's members) that found each defect. ``unexplained``: the views' defects that match
    no predicted one, per view (float, their count / 8, or / the members)."""

    instances: Instances
    agreement: np.ndarray
    unexplained: float

    @property
    def object_uncertainty(self) -> np.ndarray:
        """float64 ``(N,)``: 1 - agreement, 0 when every view finds the defect, 7/8 when
        only the prediction itself does."""
        return 1.0 - self.agreement

    @property
    def image_uncertainty(self) -> float:
        """``(sum of object uncertainties + unexplained) / (objects + unexplained)``, in [0, 1];
        0 without objects or unexplained ones."""
        total = len(self.agreement) + self.unexplained
        if total == 0:
            return 0.0
        return float((self.object_uncertainty.sum() + self.unexplained) / total)


def _boxes_back(view: Transform, boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """xyxy ``boxes`` ``(N, 4)`` of the view (``view.forward`` of a ``height x width`` image)
    mapped back to the image: the inverse of the view's centred map, float64 ``(N, 4)``."""
    turned = view.quarter_turns % 2 == 1
    view_centre = np.array([height, width] if turned else [width, height]) / 2
    centre = np.array([width, height]) / 2
    corners = np.asarray(boxes, np.float64).reshape(-1, 2, 2) - view_centre
    # The forward map is orthogonal: its transpose maps back.
    mapped = corners @ view.matrix + centre
    return np.concatenate([mapped.min(axis=1), mapped.max(axis=1)], axis=1)


def _mask_iou(labels: np.ndarray, count: int, other: np.ndarray, other_count: int) -> np.ndarray:
    """Pixel IoU float64 ``(count, other_count)`` between the objects of two label images of the
    same shape (0 background, objects ``1..count`` and ``1..other_count``)."""
    pairs = labels.astype(np.int64) * (other_count + 1) + other
    inter = np.bincount(pairs.ravel(), minlength=(count + 1) * (other_count + 1))
    inter = inter.reshape(count + 1, other_count + 1)
    areas, other_areas = inter.sum(axis=1)[1:], inter.sum(axis=0)[1:]
    inter = inter[1:, 1:]
    union = areas[:, None] + other_areas[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def _iou(found: Instances, seen: Instances) -> np.ndarray:
    if found.labels is not None and seen.labels is not None:
        return _mask_iou(found.labels, len(found), seen.labels, len(seen))
    return box_iou(found.boxes, seen.boxes).reshape(len(found), len(seen))


def agreement(
    found: Instances, others: Iterable[Instances], *, iou_threshold: float = IOU_THRESHOLD
) -> Agreement:
    """:class:`Agreement` of the prediction ``found`` with ``others``, predictions of the same
    image in its coordinates (pixel IoU when both have masks, else box IoU): a defect's
    agreement is the fraction of ``others`` with a defect at IoU >= ``iou_threshold``, and
    the defects of ``others`` that match none count as unexplained (divided by their number).
    ``others`` is iterated once (a generator keeps one prediction in memory at a time); an
    empty one gives agreement 1 and nothing unexplained."""
    agrees = np.zeros(len(found), np.int64)
    unmatched = sources = 0
    for seen in others:
        matched = _iou(found, seen) >= iou_threshold
        agrees += matched.any(axis=1)
        unmatched += int((~matched.any(axis=0)).sum())
        sources += 1
    if sources == 0:
        return Agreement(found, np.ones(len(found)), 0.0)
    return Agreement(found, agrees / sources, unmatched / sources)


def view_agreement(
    predict: Callable[[np.ndarray], Instances],
    image: np.ndarray,
    *,
    iou_threshold: float = IOU_THRESHOLD,
) -> Agreement:
    """:class:`Agreement` of ``predict`` on ``image`` (float ``(H, W)``) and its eight views
    (see the module). ``predict`` is called 8 times, on ``(H, W)`` and ``(W, H)`` arrays."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    found = predict(np.ascontiguousarray(image))

    def views():
        yield found  # the identity view always agrees with itself
        for view in DIHEDRAL[1:]:
            seen = predict(np.ascontiguousarray(view.forward(image, (0, 1))))
            labels = seen.labels
            if labels is not None:
                labels = np.ascontiguousarray(view.inverse(labels, (0, 1)))
            boxes = _boxes_back(view, seen.boxes, height, width).astype(np.float32)
            yield Instances(
                labels, boxes, seen.classes, seen.scores, seen.touches_edge, height, width
            )

    return agreement(found, views(), iou_threshold=iou_threshold)
