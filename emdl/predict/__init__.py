"""Prediction over micrographs of any size, in tiles.

Names say what comes out: :func:`predict_image` per-pixel model outputs, :func:`segment_image`
those and class indices, :func:`detect_image` boxes, :func:`segment_instances` instance masks
(:class:`Instances`), ``instances_from_*`` instances from a model's outputs. They take the image
float32 ``(H, W)`` and the tile settings, and a batch function (``predict_batch``, e.g. a model's
``predict_on_batch``; :func:`segment_image` takes the model); never a run config: binding a run's
model and settings is its kind's job (:meth:`emdl.train.kinds.base.ModelKind.predict` and
``.instances``).
"""

from emdl.predict.detect import detect_image
from emdl.predict.instances import Instances, instances_from_boxes, instances_from_probabilities
from emdl.predict.masks import instances_from_masks, segment_instances
from emdl.predict.segment import classes_from_probabilities, segment_image
from emdl.predict.tiled import blend_weights, pad_to_multiple, predict_image, tile_batches
from emdl.predict.tta import DIHEDRAL, Transform, tta_detections, tta_pixels

__all__ = [
    "DIHEDRAL",
    "Instances",
    "Transform",
    "blend_weights",
    "classes_from_probabilities",
    "detect_image",
    "instances_from_boxes",
    "instances_from_masks",
    "instances_from_probabilities",
    "pad_to_multiple",
    "predict_image",
    "segment_image",
    "segment_instances",
    "tile_batches",
    "tta_detections",
    "tta_pixels",
]
