import numpy as np
import pytest

from emdl.data.resize import Resize


def test_longest_side_sets_the_factor():
    resize = Resize(longest_side=640)
    assert resize.shape(1024, 1024) == (640, 640)
    assert resize.shape(2048, 1024) == (640, 320)
    assert resize.shape(100, 50) == (640, 320)  # enlarges too


def test_scale_and_identity():
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert Resize().image(image) is image
    assert Resize(0.5).image(image).shape == (2, 2)
    assert Resize(0.5).image(image).dtype == np.float32


def test_masks_resize_by_nearest_and_keep_labels():
    mask = np.zeros((8, 8), np.uint8)
    mask[:4, :4] = 3
    out = Resize(0.5).image(mask, order=0)
    assert out.dtype == np.uint8
    assert set(np.unique(out)) == {0, 3}
    assert (out == 3).sum() == 4


def test_boxes_follow_each_axis():
    boxes = Resize(longest_side=512).boxes(np.array([[100, 50, 200, 150]]), 512, 1024)
    np.testing.assert_array_equal(boxes, [[50, 25, 100, 75]])


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"scale": 0}, "scale must be positive"), ({"longest_side": 0}, "at least 1")],
)
def test_bad_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        Resize(**settings)


@pytest.mark.parametrize("resize", [Resize(longest_side=64), Resize(0.5), Resize(1.5), Resize()])
def test_a_saved_model_resizes_exactly_as_training_and_prediction(resize):
    """The graph rule (what a SavedModel runs, sizes unknown until it runs) gives the very
    pixels the NumPy rule gives to the pipeline and to ``emdl predict``."""
    import tensorflow as tf

    serve = tf.function(
        resize.tensor_images, input_signature=[tf.TensorSpec((None, None, None, 1), tf.float32)]
    )
    rng = np.random.default_rng(0)
    for height, width in [(100, 60), (37, 128), (64, 64), (129, 33)]:
        image = rng.random((height, width), np.float32)
        expected = resize.image(image)
        served = serve(image[np.newaxis, ..., np.newaxis]).numpy()[0, ..., 0]
        assert served.shape == resize.shape(height, width) == expected.shape
        assert np.array_equal(served, expected)


def test_the_size_rule_rounds_half_to_even_as_python():
    resize = Resize(scale=0.5)
    assert [resize.shape(n, n)[0] for n in (1, 3, 5, 7)] == [1, 2, 2, 4]
