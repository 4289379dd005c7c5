"""emdl.data.augment: settings checked when built, draws within their ranges, imaging effects."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from emdl.data import EFFECTS, Augmentation
from emdl.data.augment import _draw, crop_seeds, imaging_effects
from emdl.data.normalize import min_max as normalize


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"sharpen": {}}, "unknown augmentation 'sharpen'; known: flip_horizontal"),
        ({"blur": {"probability": 1.5}}, "augmentation 'blur': probability 1.5 not in [0, 1]"),
        ({"blur": {"range": [2, 1]}}, "augmentation 'blur': range [2.0, 1.0] must be increasing"),
        ({"zoom": {"range": [0.1, 2]}}, "within [0.25, 4.0] (scale factor, > 1 magnifies)"),
        ({"flip_vertical": {"range": [0, 1]}}, "augmentation 'flip_vertical' takes no range"),
        ({"jitter": {"strength": 2}}, "augmentation 'jitter': unknown setting(s) ['strength']"),
    ],
)
def test_bad_settings_are_refused_when_built(spec, message):
    with pytest.raises(ValueError) as error:
        Augmentation.from_dict(spec)
    assert message in str(error.value)


def test_unknown_interpolation():
    with pytest.raises(ValueError, match="unknown interpolation 'cubic'"):
        Augmentation.from_dict({}, interpolation="cubic")


def test_dict_round_trip():
    augmentation = Augmentation.from_dict(
        {"rotate": {"probability": 0.3, "range": [-10, 10]}, "flip_horizontal": {}}
    )
    assert augmentation.to_dict() == {
        "rotate": {"probability": 0.3, "range": [-10.0, 10.0]},
        "flip_horizontal": {"probability": 0.5},
    }
    assert Augmentation.from_dict(augmentation.to_dict()) == augmentation
    assert [name for name, _ in Augmentation.default().effects] == list(EFFECTS)


@pytest.mark.parametrize("name", [name for name, kind in EFFECTS.items() if kind.bounds])
def test_draws_stay_in_range_and_follow_the_probability(name):
    low, high = EFFECTS[name].default
    effect = Augmentation.from_dict({name: {"probability": 0.25}}).get(name)
    applied, values = [], []
    for index in range(400):
        seeds = crop_seeds(tf.constant([7, index], tf.int64))
        applies, value = _draw(seeds, name, effect)
        applied.append(bool(applies))
        values.append(float(value))
    assert low <= min(values) and max(values) <= high
    assert max(values) - min(values) > 0.8 * (high - low)  # the whole range is used
    assert 0.18 < np.mean(applied) < 0.32


def test_imaging_effects_keep_each_crop_in_the_unit_range():
    ramp = tf.reshape(tf.linspace(0.0, 5.0, 32 * 32), (1, 32, 32, 1))
    images = tf.concat([ramp, tf.fill((1, 32, 32, 1), 3.0), -ramp], axis=0)
    out = imaging_effects(images, tf.constant([1, 2], tf.int64), Augmentation.default(1.0))
    out = out.numpy()
    assert out.shape == (3, 32, 32, 1)
    assert not np.isnan(out).any()
    for crop in out[[0, 2]]:
        assert crop.min() == 0 and crop.max() == 1
    # A constant crop stays constant through every effect but the noises; never NaN.
    assert np.array_equal(normalize(tf.fill((4, 4, 1), 3.0)).numpy(), np.zeros((4, 4, 1)))


def test_contrast_is_a_gamma_curve():
    ramp = tf.reshape(tf.linspace(0.0, 1.0, 64), (1, 8, 8, 1))
    augmentation = Augmentation.from_dict({"contrast": {"probability": 1.0, "range": [2, 2]}})
    out = imaging_effects(ramp, tf.constant([0, 0], tf.int64), augmentation)
    np.testing.assert_allclose(out.numpy(), ramp.numpy() ** 2, atol=1e-6)


def test_salt_and_pepper_sets_the_fraction_it_draws():
    images = np.full((2, 100, 100, 1), 0.5, np.float32)
    images[:, 0, 0], images[:, 0, 1] = 0.0, 1.0
    spec = {"salt_pepper": {"probability": 1.0, "range": [0.1, 0.1]}}
    out = imaging_effects(
        tf.constant(images), tf.constant([3, 4], tf.int64), Augmentation.from_dict(spec)
    )
    extreme = (out.numpy() == 0) | (out.numpy() == 1)
    # 1,000 of 10,000 pixels are drawn with replacement, so a few repeat.
    assert all(900 <= count <= 1002 for count in extreme.sum(axis=(1, 2, 3)))
