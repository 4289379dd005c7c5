"""emdl.predict: tiles blended back into whole images."""

from __future__ import annotations

import numpy as np
import pytest

from emdl.models.unet import UNetConfig, build_unet
from emdl.predict import blend_weights, pad_to_multiple, predict_image


def test_pad_to_multiple():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    padded, size = pad_to_multiple(image, 4, minimum=8)
    assert size == (3, 4)
    assert padded.shape == (8, 8)
    assert np.array_equal(padded[:3, :4], image)


def test_blend_weights():
    weights = blend_weights(8, 2)
    assert weights.shape == (8, 8)
    assert weights[3:5, 3:5].tolist() == [[1, 1], [1, 1]]
    assert weights[0, 0] == pytest.approx(0.25**2)
    assert np.array_equal(weights, weights[::-1, ::-1]) and weights.min() > 0


def test_identity_prediction_gives_back_the_image_at_any_size():
    image = np.random.default_rng(0).random((100, 70)).astype(np.float32)
    seen = []

    def identity(tiles):
        seen.append(tiles.shape)
        return tiles

    out = predict_image(identity, image, tile=32, overlap=8, multiple=16, normalize_tiles=False)
    assert out.shape == (100, 70, 1)
    np.testing.assert_allclose(out[..., 0], image, rtol=1e-6)
    assert all(shape[1:] == (32, 32, 1) for shape in seen)  # memory bounded by the tile


def test_tiled_equals_whole_image_prediction_away_from_the_borders():
    model = build_unet(UNetConfig(depth=2, filters=4))
    image = np.random.default_rng(1).random((128, 128)).astype(np.float32)
    whole = model.predict_on_batch(image[None, ..., None])[0]
    tiled = predict_image(
        model.predict_on_batch, image, tile=64, overlap=32, multiple=4, normalize_tiles=False
    )
    inner = slice(16, -16)
    difference = np.abs(tiled[inner, inner] - whole[inner, inner])
    assert difference.max() < 0.02
    assert np.median(difference) < 1e-3


def test_bad_tiles():
    with pytest.raises(ValueError, match="tile 30 is not a multiple of 16"):
        predict_image(lambda t: t, np.zeros((40, 40)), tile=30)
    with pytest.raises(ValueError, match="overlap must be in"):
        predict_image(lambda t: t, np.zeros((40, 40)), tile=32, overlap=32)
