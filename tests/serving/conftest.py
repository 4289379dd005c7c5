"""A tiny SavedModel (written here, independent of emdl's exports) and the local test servers
that serve it, shared by the client tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_tiny_saved_model(path: Path) -> Path:
    """A SavedModel with three signatures of ``image`` ``(B, H, W, 1)``:

    - ``serving_default`` (float32): ``mean`` float32 ``(B,)``, ``doubled`` float32
      ``(B, H, W, 1)`` (twice the image);
    - ``bright`` (float32): one int32 output ``count`` ``(B,)``, the pixels above 0.5;
    - ``bytes`` (uint8): one float32 output ``scaled`` ``(B, H, W, 1)``, the image / 255."""
    import tensorflow as tf

    class Tiny(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, None, None, 1), tf.float32)])
        def serve(self, image):
            return {"mean": tf.reduce_mean(image, axis=[1, 2, 3]), "doubled": image * 2.0}

        @tf.function(input_signature=[tf.TensorSpec((None, None, None, 1), tf.float32)])
        def bright(self, image):
            return {"count": tf.reduce_sum(tf.cast(image > 0.5, tf.int32), axis=[1, 2, 3])}

        @tf.function(input_signature=[tf.TensorSpec((None, None, None, 1), tf.uint8)])
        def bytes(self, image):
            return {"scaled": tf.cast(image, tf.float32) / 255.0}

    tiny = Tiny()
    signatures = {
        "serving_default": tiny.serve.get_concrete_function(),
        "bright": tiny.bright.get_concrete_function(),
        "bytes": tiny.bytes.get_concrete_function(),
    }
    # The input is named "image" as in emdl's exports (the signature's argument name).
    tf.saved_model.save(tiny, str(path), signatures=signatures)
    return path


def call_saved_model(path: Path, image: np.ndarray, signature: str = "serving_default"):
    """The signature's outputs when the SavedModel is called directly, as NumPy arrays."""
    import tensorflow as tf

    function = tf.saved_model.load(str(path)).signatures[signature]
    return {name: tensor.numpy() for name, tensor in function(image=tf.constant(image)).items()}


@pytest.fixture(scope="session")
def tiny_saved_model(tmp_path_factory) -> Path:
    return write_tiny_saved_model(tmp_path_factory.mktemp("tiny") / "saved_model")


@pytest.fixture(scope="session")
def served(tiny_saved_model):
    """The tiny model as ``tiny`` version 1, and as ``tiny_versions`` versions 1 and 3 (the
    same SavedModel)."""
    from emdl.serving.testing import ServedModels

    base = tiny_saved_model.parent / "tiny_versions"
    base.mkdir()
    for version in (1, 3):
        (base / str(version)).symlink_to(tiny_saved_model)
    return ServedModels({"tiny": tiny_saved_model, "tiny_versions": base})


def closed_port() -> int:
    """A localhost port nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def image(seed: int = 0, shape=(2, 6, 5, 1), dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random(shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


@pytest.fixture(scope="session")
def unet_serving_dir(tmp_path_factory) -> Path:
    """A serving layout ``DIR/unet_bubbles/1`` holding a real kind's export: an untrained tiny U-Net
    (two classes) written by the U-Net kind's SavedModel export, with its three signatures
    ``serving_default`` (float32), ``serving_uint8`` and ``serving_uint16``."""
    import keras

    from emdl.export.saved_model import export_segmentation
    from emdl.models.unet import UNetConfig, build_unet

    keras.utils.set_random_seed(0)
    config = UNetConfig(depth=2, filters=4, classes=2)
    serving = tmp_path_factory.mktemp("serving")
    export_segmentation(build_unet(config), serving / "unet_bubbles" / "1", 2**config.depth)
    return serving


def assert_same(outputs: dict, expected: dict) -> None:
    """The same output names, dtypes, shapes and values."""
    assert sorted(outputs) == sorted(expected)
    for name, array in expected.items():
        assert outputs[name].dtype == array.dtype, name
        assert outputs[name].shape == array.shape, name
        assert np.array_equal(outputs[name], array), name
