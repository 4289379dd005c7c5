"""The image model's optics against physics: wavelength, interaction constant, a weak-phase
cavity's Fresnel contrast and its fringe against the contrast transfer function."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import j0

from emdl.synth.objects import Cavity, Field
from emdl.synth.optics import (
    Optics,
    ctf_phase,
    envelope,
    image_intensity,
    interaction_constant,
    wavelength_nm,
)

N, PIXEL, RADIUS = 512, 0.1, 4.0  # a 51.2 nm field, a 8 nm cavity
SIGMA = interaction_constant(200.0)


def test_wavelength_and_interaction_constant_at_200_kv():
    # Tabulated (Kirkland, Table 2.2): 2.5079 pm and 0.00729 rad / (V nm) at 200 kV.
    assert wavelength_nm(200.0) == pytest.approx(2.5079e-3, rel=1e-4)
    assert interaction_constant(200.0) == pytest.approx(7.288e-3, rel=1e-3)
    assert wavelength_nm(300.0) == pytest.approx(1.9687e-3, rel=1e-4)


def test_ctf_phase_sign_convention():
    optics = Optics(defocus_nm=500.0, cs_mm=1.0)
    k = np.array([0.5])
    lam = optics.wavelength_nm
    expected = math.pi * lam * 500 * 0.25 - 0.5 * math.pi * 1e6 * lam**3 * 0.0625
    assert ctf_phase(k, optics)[0] == pytest.approx(expected)
    assert ctf_phase(k, Optics(defocus_nm=500.0, cs_mm=0.0))[0] > 0  # under-focus: positive


def test_envelope_is_one_for_coherent_optics_and_damps_otherwise():
    k = np.linspace(0, 3, 7)
    assert np.array_equal(envelope(k, Optics().coherent()), np.ones(7))
    damped = envelope(k, Optics(convergence_mrad=0.5, focal_spread_nm=5.0))
    assert damped[0] == 1.0 and np.all(np.diff(damped) < 0)


def weak_cavity(potential_v: float = 0.5) -> Field:
    """A cavity in a matrix of ``potential_v`` V: its phase is at most 0.03 rad (weak)."""
    field = Field(np.zeros((N, N)), np.zeros((N, N)), PIXEL, 0, SIGMA, potential_v, 0.0)
    Cavity(N * PIXEL / 2, N * PIXEL / 2, 0.0, RADIUS).paint(field)
    return field


def centred_optics(defocus_nm: float) -> Optics:
    """Coherent optics without Cs, band-limited to the grid's Nyquist circle."""
    lam = wavelength_nm(200.0)
    return Optics(
        defocus_nm=defocus_nm,
        cs_mm=0.0,
        convergence_mrad=0.0,
        focal_spread_nm=0.0,
        aperture_mrad=lam / (2 * PIXEL) * 1e3,
    )


def test_in_focus_pure_phase_object_has_no_contrast():
    field = weak_cavity(potential_v=20.0)  # a strong phase: 1.2 rad at the centre
    assert field.phase.min() < -1
    intensity = image_intensity(
        np.exp(1j * field.phase), PIXEL, Optics(defocus_nm=0.0, cs_mm=0.0).coherent()
    )
    assert np.abs(intensity - 1).max() < 1e-12


@pytest.mark.parametrize("defocus", [300.0, 1000.0])
def test_weak_phase_cavity_contrast_changes_sign_with_focus(defocus):
    field = weak_cavity()
    assert -0.05 < field.phase.min() < 0
    centre = N // 2
    under = image_intensity(np.exp(1j * field.phase), PIXEL, centred_optics(defocus))
    over = image_intensity(np.exp(1j * field.phase), PIXEL, centred_optics(-defocus))
    # Bright under-focused, dark over-focused, against the background far from the cavity.
    assert under[centre, centre] > 1 > over[centre, centre]
    assert under[0, 0] == pytest.approx(1, abs=1e-3) and over[0, 0] == pytest.approx(1, abs=1e-3)


def radial_profile(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:N, 0:N]
    bins = np.rint(np.hypot(xx + 0.5 - N / 2, yy + 0.5 - N / 2)).astype(int)
    profile = np.bincount(bins.ravel(), image.ravel()) / np.maximum(np.bincount(bins.ravel()), 1)
    return np.arange(len(profile)) * PIXEL, profile


def predicted_profile(radii: np.ndarray, optics: Optics, potential_v: float = 0.5) -> np.ndarray:
    """The weak-phase image ``1 - 2 F^-1[F[phi] sin chi]`` of the sphere, by the Fourier-Bessel
    integral of the sphere's analytic transform (the 3-D ball's at k_z = 0)."""
    k = np.linspace(1e-6, 1 / (2 * PIXEL), 40000)
    x = 2 * math.pi * k * RADIUS
    ball = 4 / 3 * math.pi * RADIUS**3 * 3 * (np.sin(x) - x * np.cos(x)) / x**3
    phase_ft = -SIGMA * potential_v * ball
    integrand = phase_ft * np.sin(ctf_phase(k, optics)) * 2 * math.pi * k
    return 1 - 2 * np.trapezoid(integrand * j0(2 * math.pi * np.outer(radii, k)), k, axis=1)


def test_fresnel_fringe_moves_outward_with_defocus_as_the_ctf_predicts():
    field = weak_cavity()
    found, predicted = [], []
    for defocus in (100.0, 400.0, 1500.0):
        optics = centred_optics(defocus)
        radii, profile = radial_profile(image_intensity(np.exp(1j * field.phase), PIXEL, optics))
        outside = (radii > 0.8 * RADIUS) & (radii < 2 * RADIUS)
        found.append(radii[outside][np.argmin(profile[outside])])  # the dark fringe
        fine = np.arange(0.8 * RADIUS, 2 * RADIUS, PIXEL / 10)
        predicted.append(fine[np.argmin(predicted_profile(fine, optics))])
    assert np.allclose(found, predicted, atol=1.5 * PIXEL)
    assert found[0] < found[1] < found[2]
    assert found[0] > RADIUS - PIXEL  # outside the cavity's edge
