"""SavedModel export for TF Serving.

Every export has the signatures of :data:`emdl.signatures.SIGNATURES` (float32, uint8 and
uint16 ``image``, the same outputs); the loaded object's ``serve`` function takes any of the
three dtypes. Each casts to float32 first and then runs the kind's ``serve``, which min-max
scales inside the graph exactly as training does (:func:`emdl.data.normalize.min_max`), so a
client sends the micrograph's own pixel values.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras
import tensorflow as tf

from emdl.data.normalize import min_max
from emdl.signatures import SIGNATURES


def export_segmentation(
    model: keras.Model, path: str | os.PathLike, multiple: int, *, distance: bool = False
) -> None:
    """Write a SavedModel whose signatures (:data:`emdl.signatures.SIGNATURES`) take ``image``
    ``(B, H, W, 1)`` of any height, width and intensity range and return ``probabilities``
    float32: ``(B, H, W, 1)`` (the foreground) for one class, else ``(B, H, W, classes + 1)``
    with the background first; a distance U-Net's (``distance``) also ``distance`` float32
    ``(B, H, W, 1)``, each pixel's normalized distance to its object's outline.

    Each image is min-max scaled on its own, padded by reflection to a multiple of
    ``multiple`` (``2 ** depth``) and the output cropped back, so no caller has to know the
    U-Net's intensity or size rules.
    """

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        height, width = tf.shape(image)[1], tf.shape(image)[2]
        pad_h = (multiple - height % multiple) % multiple
        pad_w = (multiple - width % multiple) % multiple
        padded = tf.pad(min_max(image), [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="SYMMETRIC")
        outputs = tf.cast(model(padded, training=False)[:, :height, :width, :], tf.float32)
        if distance:
            return {"probabilities": outputs[..., :-1], "distance": outputs[..., -1:]}
        return {"probabilities": outputs}

    write_serving(model, serve, path)


def write_serving(
    model: keras.Model,
    serve: Callable[[tf.Tensor], dict[str, tf.Tensor]],
    path: str | os.PathLike,
    size: int | None = None,
) -> None:
    """Write ``model`` as a SavedModel at ``path`` with the signatures of
    :data:`emdl.signatures.SIGNATURES`.

    ``serve`` maps ``image``, float32 ``(B, H, W, 1)`` of any size (or ``size x size`` when
    given) in the micrograph's own intensity range, to a dict of output tensors; each signature
    casts its ``image`` to float32 and calls it.
    """
    archive = keras.export.ExportArchive()
    archive.track(model)

    def as_float(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return serve(tf.cast(image, tf.float32))

    shape = (None, size, size, 1)
    for key, dtype in SIGNATURES.items():
        archive.add_endpoint(
            name=key, fn=as_float, input_signature=[tf.TensorSpec(shape, dtype, name="image")]
        )
    # One Python-callable function for every dtype (``tf.saved_model.load(path).serve(image)``).
    polymorphic = tf.function(as_float)
    for dtype in SIGNATURES.values():
        polymorphic.get_concrete_function(tf.TensorSpec(shape, dtype, name="image"))
    archive.add_endpoint(name="serve", fn=polymorphic)
    archive.write_out(os.fspath(path), verbose=False)
