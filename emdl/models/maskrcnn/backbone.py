"""Backbone and feature pyramid: a 1-channel micrograph in, pyramid features P2..P5 out."""

from __future__ import annotations

import keras
import keras_cv

from emdl.models.maskrcnn.config import LEVELS, MaskRCNNConfig

BATCH_NORM_MOMENTUM = 0.9


def build_features(config: MaskRCNNConfig) -> keras.Model:
    """A functional model from float32 images ``(B, H, W, 1)`` in [0, 1] (``H`` and ``W``
    multiples of 32) to a list of ``len(LEVELS)`` feature maps ``(B, H / 2**l, W / 2**l,
    fpn_width)`` for the levels ``l`` of :data:`LEVELS`.

    The backbone is keras-cv's ``ResNetBackbone`` built from its constructor (no preset, no
    download) with one stack per level; the pyramid is the FPN of Lin et al. (2017): 1x1
    lateral convolutions, nearest-neighbour top-down upsampling and addition, 3x3 outputs.
    """
    backbone = keras_cv.models.ResNetBackbone(
        stackwise_filters=list(config.filters),
        stackwise_blocks=list(config.blocks),
        stackwise_strides=[1, 2, 2, 2],
        block_type=config.block_type,
        include_rescaling=False,
        input_shape=(None, None, 1),
    )
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # Runs here are short (a few thousand steps of small batches): with keras-cv's 0.99
            # the moving statistics inference uses would still remember their start values.
            layer.momentum = BATCH_NORM_MOMENTUM
    outputs = [
        backbone.get_layer(backbone.pyramid_level_inputs[f"P{level}"]).output for level in LEVELS
    ]
    width = config.fpn_width
    laterals = [
        keras.layers.Conv2D(width, 1, name=f"fpn_lateral_p{level}")(x)
        for level, x in zip(LEVELS, outputs, strict=True)
    ]
    merged = [laterals[-1]]
    for lateral, level in zip(laterals[-2::-1], LEVELS[-2::-1], strict=True):
        upsampled = keras.layers.UpSampling2D(2, name=f"fpn_up_p{level}")(merged[-1])
        merged.append(keras.layers.Add(name=f"fpn_add_p{level}")([lateral, upsampled]))
    merged.reverse()
    pyramid = [
        keras.layers.Conv2D(width, 3, padding="same", name=f"fpn_output_p{level}")(x)
        for level, x in zip(LEVELS, merged, strict=True)
    ]
    return keras.Model(backbone.inputs, pyramid, name="features")
