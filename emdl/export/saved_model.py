"""SavedModel export for TF Serving."""

from __future__ import annotations

import os

import keras
import tensorflow as tf


def export_segmentation(model: keras.Model, path: str | os.PathLike, multiple: int) -> None:
    """Write a SavedModel whose ``serving_default`` signature takes ``image``: float32
    ``(B, H, W, 1)`` of any height and width, and returns ``probabilities`` ``(B, H, W, C)``.

    Inputs are padded by reflection to a multiple of ``multiple`` (``2 ** depth``) and the output
    cropped back, so no caller has to know the U-Net's size rule. Each image should be in [0, 1]
    (min-max normalized) like the training crops.
    """

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        height, width = tf.shape(image)[1], tf.shape(image)[2]
        pad_h = (multiple - height % multiple) % multiple
        pad_w = (multiple - width % multiple) % multiple
        padded = tf.pad(image, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="SYMMETRIC")
        probabilities = model(padded, training=False)
        return {"probabilities": probabilities[:, :height, :width, :]}

    write_serving(model, serve, path)


def write_serving(
    model: keras.Model, serve, path: str | os.PathLike, size: int | None = None
) -> None:
    """Write ``model`` as a SavedModel whose ``serving_default`` is ``serve``, a function of
    ``image``: float32 ``(B, H, W, 1)`` of any size (or ``size x size`` when given), returning
    a dict of tensors."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=serve,
        input_signature=[tf.TensorSpec((None, size, size, 1), tf.float32, name="image")],
    )
    archive.write_out(os.fspath(path), verbose=False)
