"""emdl.models.unet: shapes, configuration, and save/load round trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from emdl.models.unet import UNetConfig, build_unet

TINY = {"depth": 2, "filters": 4}


@pytest.mark.parametrize(
    ("settings", "channels"),
    [
        ({}, 1),
        ({"classes": 3}, 4),
        ({"upsampling": "transpose", "dropout": 0.2, "batch_norm": False}, 1),
        ({"convs_per_block": 1, "depth": 3}, 1),
        ({"distance_weight": 1.0}, 2),  # foreground, then the distance map
        ({"distance_weight": 1.0, "classes": 2}, 4),  # softmax of 3, then the distance map
    ],
)
def test_output_shapes_and_ranges(settings, channels):
    model = build_unet(UNetConfig(**(TINY | settings)))
    images = np.random.default_rng(0).random((2, 32, 48, 1)).astype(np.float32)
    probabilities = model.predict_on_batch(images)
    assert probabilities.shape == (2, 32, 48, channels)
    assert probabilities.min() >= 0 and probabilities.max() <= 1
    softmax = probabilities[..., :-1] if settings.get("distance_weight") else probabilities
    if softmax.shape[-1] > 1:
        np.testing.assert_allclose(softmax.sum(axis=-1), 1, rtol=1e-5)


def test_any_size_divisible_by_two_to_the_depth():
    model = build_unet(UNetConfig(**TINY))
    assert UNetConfig(**TINY).multiple == 4
    assert model.predict_on_batch(np.zeros((1, 12, 20, 1), np.float32)).shape == (1, 12, 20, 1)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"depth": 0}, "depth must be at least 1"),
        ({"dropout": 1.0}, "dropout must be in [0, 1)"),
        ({"upsampling": "nearest"}, "upsampling must be one of ('bilinear', 'transpose')"),
        ({"classes": 0}, "classes must be at least 1"),
        ({"peak_depth": 1.0}, "peak_depth must be in (0, 1)"),
        ({"split_depth": 0}, "split_depth must be positive (pixels) or null"),
        ({"border_width": 2, "distance_weight": 1}, "border_width and distance_weight are two"),
    ],
)
def test_bad_configs(settings, message):
    with pytest.raises(ValueError) as error:
        UNetConfig(**settings)
    assert message in str(error.value)


def test_config_dict_round_trip():
    config = UNetConfig(depth=3, filters=8, upsampling="transpose", classes=2)
    assert UNetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="model: unknown setting"):
        UNetConfig.from_dict({"levels": 3})


def test_get_config_from_config_and_save_load_give_identical_outputs(tmp_path):
    model = build_unet(UNetConfig(**TINY, classes=2))
    images = np.random.default_rng(1).random((1, 16, 16, 1)).astype(np.float32)
    expected = model.predict_on_batch(images)

    rebuilt = keras.Model.from_config(model.get_config())
    rebuilt.set_weights(model.get_weights())
    assert np.array_equal(rebuilt.predict_on_batch(images), expected)

    model.save(tmp_path / "unet.keras")
    loaded = keras.saving.load_model(tmp_path / "unet.keras")
    assert np.array_equal(loaded.predict_on_batch(images), expected)
