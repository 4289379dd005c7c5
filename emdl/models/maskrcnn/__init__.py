"""Mask R-CNN in Keras 3 from keras-cv's working blocks, one module per part (after TF Model
Garden's split): :mod:`config`, :mod:`backbone` (ResNet + FPN), :mod:`anchors`,
:mod:`box_coder`, :mod:`heads`, :mod:`targets` (matching and sampling), :mod:`roi_align`,
:mod:`losses` and :mod:`model`, which assembles them."""

from emdl.models.maskrcnn.config import LOSSES, MASK_SIZE, MaskRCNNConfig
from emdl.models.maskrcnn.model import MaskRCNN, build_maskrcnn

__all__ = ["LOSSES", "MASK_SIZE", "MaskRCNN", "MaskRCNNConfig", "build_maskrcnn"]
