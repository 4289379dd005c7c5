import numpy as np
import pytest

from emdl.errors import InputError
from emdl.serving.inputs import checked_model, checked_version, image_batch


@pytest.mark.parametrize(
    ("shape", "batch"), [((3, 4), (1, 3, 4, 1)), ((3, 4, 1), (1, 3, 4, 1)), ((2, 3, 4, 1),) * 2]
)
def test_images_become_a_batch_with_their_dtype(shape, batch):
    for dtype in (np.uint8, np.uint16, np.float32):
        image = np.arange(np.prod(shape)).reshape(shape).astype(dtype)
        sent = image_batch(image)
        assert sent.shape == batch
        assert sent.dtype == dtype
        assert np.array_equal(sent.ravel(), image.ravel())


def test_float64_is_sent_as_float32():
    sent = image_batch(np.full((2, 2), 0.25))
    assert sent.dtype == np.float32
    assert sent.tolist() == [[[[0.25], [0.25]], [[0.25], [0.25]]]]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            np.zeros((3, 4, 2), np.uint8),
            "image: shape (3, 4, 2) is not (H, W), (H, W, 1) or (B, H, W, 1)",
        ),
        (np.zeros((4,), np.uint8), "image: shape (4,) is not (H, W), (H, W, 1) or (B, H, W, 1)"),
        (
            np.zeros((1, 2, 3, 4, 1), np.uint8),
            "image: shape (1, 2, 3, 4, 1) is not (H, W), (H, W, 1) or (B, H, W, 1)",
        ),
        (np.zeros((0, 4), np.uint8), "image: shape (0, 4) is empty"),
        (
            np.zeros((3, 4), np.int32),
            "image: dtype int32 is not accepted (uint8, uint16, float32 or float64)",
        ),
        (
            np.zeros((3, 4), bool),
            "image: dtype bool is not accepted (uint8, uint16, float32 or float64)",
        ),
        (np.array([[0.0, np.nan]], np.float32), "image: has NaN or infinite values"),
    ],
)
def test_images_the_signature_cannot_take_are_refused(image, message):
    with pytest.raises(InputError) as error:
        image_batch(image)
    assert str(error.value) == message


def test_versions_and_model_names_are_checked():
    assert checked_version(None) is None
    assert checked_version(np.int64(3)) == 3
    for version in (0, -1, True, 1.0, "2"):
        with pytest.raises(InputError) as error:
            checked_version(version)
        assert str(error.value) == f"version: expected a positive integer, got {version!r}"
    assert checked_model("unet_bubbles") == "unet_bubbles"
    with pytest.raises(InputError) as error:
        checked_model("a/b")
    assert str(error.value) == "model: expected a model name without '/' or ':', got 'a/b'"
