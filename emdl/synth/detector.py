"""The detector: scan jitter (STEM), shot noise at a dose, the modulation transfer function,
gain and offset, and 8- or 16-bit output.

An image ``I`` (1 = the incident beam) becomes ``N I`` electrons per pixel on average, with
``N = dose (e-/A^2) x (10 pixel_nm)^2`` (1 nm = 10 A); the electrons counted are Poisson
distributed, then spread by the detector's point spread (a Gaussian MTF
``exp(-2 pi^2 s^2 k^2)``, ``s`` in pixels, ``k`` in cycles per pixel), scaled by the gain,
shifted by the offset, rounded and clipped to the output's range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage


@dataclass(frozen=True)
class Detector:
    """The recording.

    Attributes:
        dose: electron dose, e-/A^2 (400).
        mtf_sigma_px: standard deviation of the Gaussian point spread, pixels (1.0; 0 = none).
        gain: output units per electron (None: the image is stretched so that its 0.1 % and
            99.9 % quantiles span the output range, as a micrograph exported for display).
        offset: output units added (0; with ``gain`` only).
        bits: 8 (PNG) or 16 (TIFF).
        scan_jitter_px: standard deviation of each scan row's sideways shift, pixels (0: a TEM
            camera; STEM images have 0.2 to 1).
    """

    dose: float = 400.0
    mtf_sigma_px: float = 1.0
    gain: float | None = None
    offset: float = 0.0
    bits: int = 8
    scan_jitter_px: float = 0.0


def counts_per_pixel(dose: float, pixel_nm: float) -> float:
    """Mean electrons per pixel of the incident beam: ``dose`` e-/A^2 times the pixel's area in
    A^2 (``(10 pixel_nm)^2``)."""
    return dose * (10 * pixel_nm) ** 2


def shot_noise(
    intensity: np.ndarray, electrons_per_pixel: float, rng: np.random.Generator
) -> np.ndarray:
    """Electrons counted per pixel: Poisson with mean ``electrons_per_pixel x intensity``
    (``intensity`` float ``(H, W)``, >= 0), float64 ``(H, W)``."""
    return rng.poisson(electrons_per_pixel * np.clip(intensity, 0, None)).astype(np.float64)


def mtf_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """``image`` float ``(H, W)`` spread by the Gaussian point spread of ``sigma_px`` pixels
    (edges reflected), float64; unchanged for ``sigma_px = 0``."""
    if sigma_px <= 0:
        return np.asarray(image, np.float64)
    return ndimage.gaussian_filter(np.asarray(image, np.float64), sigma_px, mode="reflect")


def scan_jitter(image: np.ndarray, sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` float ``(H, W)`` with each row shifted sideways by its own normal offset of
    ``sigma_px`` pixels (sub-pixel, by the Fourier shift theorem, so periodic along the row:
    give it a margin), float64; unchanged for ``sigma_px = 0``."""
    image = np.asarray(image, np.float64)
    if sigma_px <= 0:
        return image
    shifts = rng.normal(0.0, sigma_px, size=(image.shape[0], 1))
    kx = fft.fftfreq(image.shape[1])[np.newaxis, :]
    return fft.ifft(fft.fft(image, axis=1) * np.exp(-2j * np.pi * kx * shifts), axis=1).real


def to_output(electrons: np.ndarray, detector: Detector) -> np.ndarray:
    """``electrons`` float ``(H, W)`` as the detector's output: uint8 or uint16 ``(H, W)``,
    ``gain x electrons + offset`` rounded and clipped, or stretched (``gain`` None)."""
    if detector.bits not in (8, 16):
        raise ValueError(f"detector bits must be 8 or 16, got {detector.bits}")
    top = 2**detector.bits - 1
    if detector.gain is None:
        low, high = np.quantile(electrons, [0.001, 0.999])
        scaled = (electrons - low) / max(high - low, 1e-12) * top
    else:
        scaled = detector.gain * electrons + detector.offset
    dtype = np.uint8 if detector.bits == 8 else np.uint16
    return np.clip(np.rint(scaled), 0, top).astype(dtype)


def record(
    intensity: np.ndarray, pixel_nm: float, detector: Detector, rng: np.random.Generator
) -> np.ndarray:
    """The recorded image of ``intensity`` float ``(H, W)`` (1 = the incident beam; scan jitter
    is applied by the caller on a field with a margin): shot noise at the dose, the MTF, gain and
    offset; uint8 or uint16 ``(H, W)``."""
    electrons = shot_noise(intensity, counts_per_pixel(detector.dose, pixel_nm), rng)
    return to_output(mtf_blur(electrons, detector.mtf_sigma_px), detector)
