"""The detector: shot noise at a dose, the MTF, gain and offset, bits, scan jitter."""

from __future__ import annotations

import numpy as np
import pytest

from emdl.synth.detector import (
    Detector,
    counts_per_pixel,
    mtf_blur,
    record,
    scan_jitter,
    shot_noise,
    to_output,
)


def test_counts_per_pixel_from_the_dose_and_pixel_size():
    assert counts_per_pixel(100.0, 0.5) == pytest.approx(2500.0)  # 100 e-/A^2 x 25 A^2
    assert counts_per_pixel(5.0, 0.2) == pytest.approx(20.0)


@pytest.mark.parametrize(("dose", "pixel"), [(10.0, 0.2), (100.0, 0.5)])
def test_shot_noise_variance_equals_the_mean(dose, pixel):
    rng = np.random.default_rng(0)
    mean = counts_per_pixel(dose, pixel) * 0.6
    counts = shot_noise(np.full((400, 400), 0.6), counts_per_pixel(dose, pixel), rng)
    n = counts.size
    assert counts.mean() == pytest.approx(mean, abs=4 * np.sqrt(mean / n))
    # The sample variance of a Poisson law has standard error sqrt((2 m^2 + m) / n).
    assert counts.var(ddof=1) == pytest.approx(mean, abs=4 * np.sqrt((2 * mean**2 + mean) / n))


def test_gain_offset_and_bits():
    electrons = np.array([[0.0, 10.0], [100.0, 1e6]])
    assert to_output(electrons, Detector(gain=2.0, offset=5.0, bits=8)).tolist() == [
        [5, 25],
        [205, 255],
    ]
    out = to_output(electrons, Detector(gain=2.0, offset=5.0, bits=16))
    assert out.dtype == np.uint16 and out.tolist() == [[5, 25], [205, 65535]]
    stretched = to_output(np.arange(10000.0).reshape(100, 100), Detector(bits=8))
    assert stretched.dtype == np.uint8 and stretched.min() == 0 and stretched.max() == 255
    with pytest.raises(ValueError, match="8 or 16"):
        to_output(electrons, Detector(bits=12))


def test_mtf_blur_keeps_the_mean_and_lowers_the_noise():
    noise = np.random.default_rng(1).normal(size=(256, 256))
    blurred = mtf_blur(noise, 2.0)
    assert blurred.mean() == pytest.approx(noise.mean(), abs=1e-3)
    # A Gaussian of s pixels scales white noise's std by 1 / (2 sqrt(pi) s).
    assert blurred.std() == pytest.approx(1 / (2 * np.sqrt(np.pi) * 2.0), rel=0.05)
    assert np.array_equal(mtf_blur(noise, 0.0), noise)


def test_scan_jitter_shifts_whole_rows():
    row = np.sin(2 * np.pi * np.arange(64) / 16)
    image = np.tile(row, (32, 1))
    jittered = scan_jitter(image, 1.0, np.random.default_rng(2))
    # Each row is the same sine, moved: same amplitude, different phase.
    assert np.allclose(np.abs(jittered).max(axis=1), 1, atol=0.02)
    assert not np.allclose(jittered[0], jittered[1])
    assert np.array_equal(scan_jitter(image, 0.0, np.random.default_rng(2)), image)


def test_record_is_seeded():
    intensity = np.full((32, 32), 0.5)
    a = record(intensity, 0.5, Detector(), np.random.default_rng(3))
    b = record(intensity, 0.5, Detector(), np.random.default_rng(3))
    assert a.dtype == np.uint8 and np.array_equal(a, b)
