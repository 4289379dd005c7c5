"""SavedModel export for TF Serving.

A SavedModel signature has one dtype per input, so every exported run has three signatures with
the same outputs: ``serving_default`` takes ``image`` as float32 (any intensity range; what TF
Serving's REST API feeds JSON numbers to), ``serving_uint8`` and ``serving_uint16`` take the
integers a detector writes. The loaded object's ``serve`` function takes any of the three.
Each casts to float32 first and then runs the kind's ``serve``, which min-max scales inside the
graph exactly as training does (:func:`emdl.data.normalize.min_max`), so a client sends the
micrograph's own pixel values.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras
import tensorflow as tf

from emdl.data.normalize import min_max

# Signature key -> the dtype of its ``image`` input.
SIGNATURES = {
    "serving_default": tf.float32,
    "serving_uint8": tf.uint8,
    "serving_uint16": tf.uint16,
}


def export_segmentation(model: keras.Model, path: str | os.PathLike, multiple: int) -> None:
    """Write a SavedModel whose signatures (:data:`SIGNATURES`) take ``image`` ``(B, H, W, 1)``
    of any height, width and intensity range and return ``probabilities`` float32
    ``(B, H, W, C)``, one channel per class, background first.

    Each image is min-max scaled on its own, padded by reflection to a multiple of
    ``multiple`` (``2 ** depth``) and the output cropped back, so no caller has to know the
    U-Net's intensity or size rules.
    """

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        height, width = tf.shape(image)[1], tf.shape(image)[2]
        pad_h = (multiple - height % multiple) % multiple
        pad_w = (multiple - width % multiple) % multiple
        padded = tf.pad(min_max(image), [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="SYMMETRIC")
        probabilities = model(padded, training=False)
        return {"probabilities": tf.cast(probabilities[:, :height, :width, :], tf.float32)}

    write_serving(model, serve, path)


def write_serving(
    model: keras.Model,
    serve: Callable[[tf.Tensor], dict[str, tf.Tensor]],
    path: str | os.PathLike,
    size: int | None = None,
) -> None:
    """Write ``model`` as a SavedModel at ``path`` with the signatures of :data:`SIGNATURES`.

    ``serve`` maps ``image``, float32 ``(B, H, W, 1)`` of any size (or ``size x size`` when
    given) in the micrograph's own intensity range, to a dict of output tensors; each signature
    casts its ``image`` to float32 and calls it.
    """
    archive = keras.export.ExportArchive()
    archive.track(model)

    def as_float(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return serve(tf.cast(image, tf.float32))

    shape = (None, size, size, 1)
    for name, dtype in SIGNATURES.items():
        archive.add_endpoint(
            name=name, fn=as_float, input_signature=[tf.TensorSpec(shape, dtype, name="image")]
        )
    # One Python-callable function for every dtype (``tf.saved_model.load(path).serve(image)``).
    polymorphic = tf.function(as_float)
    for dtype in SIGNATURES.values():
        polymorphic.get_concrete_function(tf.TensorSpec(shape, dtype, name="image"))
    archive.add_endpoint(name="serve", fn=polymorphic)
    archive.write_out(os.fspath(path), verbose=False)
