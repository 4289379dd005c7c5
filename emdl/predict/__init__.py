"""Prediction over micrographs of any size."""

from emdl.predict.detect import detect_image, detect_objects
from emdl.predict.masks import instances_from_masks, segment_instances, segment_objects
from emdl.predict.segment import classes_from_probabilities, segment_image
from emdl.predict.tiled import blend_weights, pad_to_multiple, predict_image

__all__ = [
    "blend_weights",
    "classes_from_probabilities",
    "detect_image",
    "detect_objects",
    "instances_from_masks",
    "pad_to_multiple",
    "predict_image",
    "segment_image",
    "segment_instances",
    "segment_objects",
]
