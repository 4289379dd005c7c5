"""Prediction over micrographs of any size."""

from emdl.predict.tiled import blend_weights, pad_to_multiple, predict_image

__all__ = ["blend_weights", "pad_to_multiple", "predict_image"]
