"""The microscope's optics: the electron wavelength and interaction constant at the beam energy,
the contrast transfer function and the Fresnel propagation of an exit wave to the image.

Units: lengths in nm, spatial frequencies ``k`` in cycles per nm, the beam energy in kV, ``Cs``
in mm, angles in mrad. Sign convention (Kirkland's, *Advanced Computing in Electron
Microscopy*): a **positive defocus is under-focus** (the objective lens weakened), and the wave
transfer function is ``H(k) = exp(i chi(k)) E_s(k) E_t(k) A(k)`` with

    chi(k) = pi lambda df k^2 - pi/2 Cs lambda^3 k^4

so that a weak phase object ``phi`` images as ``I = 1 - 2 F^-1[F[phi] sin chi]``, which for
small ``k`` is ``1 + lambda df / (2 pi) laplacian(phi)``: a cavity (a dip of phase) is bright
with a dark rim when under-focused and dark with a bright rim when over-focused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import fft

PLANCK = 6.62607015e-34  # J s
ELECTRON_MASS = 9.1093837015e-31  # kg
ELEMENTARY_CHARGE = 1.602176634e-19  # C
LIGHT_SPEED = 299792458.0  # m / s


def wavelength_nm(voltage_kv: float) -> float:
    """The relativistic electron wavelength in nm at an accelerating voltage in kV
    (``h / sqrt(2 m0 e V (1 + e V / (2 m0 c^2)))``; 0.002508 nm at 200 kV)."""
    volts = voltage_kv * 1e3
    energy = ELEMENTARY_CHARGE * volts
    momentum = math.sqrt(
        2 * ELECTRON_MASS * energy * (1 + energy / (2 * ELECTRON_MASS * LIGHT_SPEED**2))
    )
    return PLANCK / momentum * 1e9


def interaction_constant(voltage_kv: float) -> float:
    """The interaction constant ``sigma = 2 pi m e lambda / h^2`` (relativistic mass ``m``) in
    rad per (V nm): the phase a wave gains crossing 1 nm of 1 V projected potential (0.00729 at
    200 kV)."""
    volts = voltage_kv * 1e3
    gamma = 1 + ELEMENTARY_CHARGE * volts / (ELECTRON_MASS * LIGHT_SPEED**2)
    wavelength_m = wavelength_nm(voltage_kv) * 1e-9
    per_metre = 2 * math.pi * gamma * ELECTRON_MASS * ELEMENTARY_CHARGE * wavelength_m / PLANCK**2
    return per_metre * 1e-9


@dataclass(frozen=True)
class Optics:
    """The imaging conditions.

    Attributes:
        voltage_kv: accelerating voltage, kV (200).
        defocus_nm: defocus ``df``, nm, positive = under-focus (500: Fresnel imaging of
            cavities uses a few hundred nm to a few um).
        cs_mm: spherical aberration ``Cs``, mm (1.0, an uncorrected objective lens).
        convergence_mrad: illumination semi-angle ``alpha``, mrad, for the spatial-coherence
            envelope (0.1; 0 = fully coherent).
        focal_spread_nm: standard deviation ``Delta`` of the defocus from the energy spread and
            lens current instability, nm, for the temporal-coherence envelope (5; 0 = none).
        aperture_mrad: objective aperture semi-angle, mrad (None: no aperture).
    """

    voltage_kv: float = 200.0
    defocus_nm: float = 500.0
    cs_mm: float = 1.0
    convergence_mrad: float = 0.1
    focal_spread_nm: float = 5.0
    aperture_mrad: float | None = None

    @property
    def wavelength_nm(self) -> float:
        return wavelength_nm(self.voltage_kv)

    def coherent(self) -> Optics:
        """The same optics with no envelopes and no aperture (an ideal coherent microscope)."""
        return Optics(self.voltage_kv, self.defocus_nm, self.cs_mm, 0.0, 0.0, None)


def frequencies(shape: tuple[int, int], pixel_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """``(ky, kx)``, float64 ``(H, 1)`` and ``(1, W)``: the FFT's spatial frequencies in cycles
    per nm of an ``(H, W)`` grid of ``pixel_nm`` pixels (numpy's FFT order)."""
    ky = fft.fftfreq(shape[0], d=pixel_nm)[:, np.newaxis]
    kx = fft.fftfreq(shape[1], d=pixel_nm)[np.newaxis, :]
    return ky, kx


def ctf_phase(k: np.ndarray, optics: Optics) -> np.ndarray:
    """The aberration phase ``chi(k) = pi lambda df k^2 - pi/2 Cs lambda^3 k^4`` in rad of
    spatial frequencies ``k`` (cycles per nm, any shape), positive ``df`` = under-focus."""
    lam = optics.wavelength_nm
    cs_nm = optics.cs_mm * 1e6
    k2 = np.square(k)
    return math.pi * lam * optics.defocus_nm * k2 - 0.5 * math.pi * cs_nm * lam**3 * k2**2


def envelope(k: np.ndarray, optics: Optics) -> np.ndarray:
    """The partial-coherence damping of frequencies ``k`` (cycles per nm), float64 in (0, 1]:
    spatial ``exp(-(pi alpha)^2 (df k - Cs lambda^2 k^3)^2)`` (``alpha`` the semi-angle in rad,
    i.e. ``(alpha / lambda)^2 (d chi / d k)^2 / 4``) times temporal
    ``exp(-(pi lambda Delta)^2 k^4 / 2)``, and the objective aperture's cut-off."""
    lam = optics.wavelength_nm
    cs_nm = optics.cs_mm * 1e6
    alpha = optics.convergence_mrad * 1e-3
    gradient = optics.defocus_nm * k - cs_nm * lam**2 * k**3
    damping = np.exp(-((math.pi * alpha * gradient) ** 2))
    damping *= np.exp(-0.5 * (math.pi * lam * optics.focal_spread_nm) ** 2 * k**4)
    if optics.aperture_mrad is not None:
        damping *= k <= optics.aperture_mrad * 1e-3 / lam
    return damping


def transfer_function(shape: tuple[int, int], pixel_nm: float, optics: Optics) -> np.ndarray:
    """The wave transfer function ``exp(i chi) E`` of an ``(H, W)`` grid of ``pixel_nm`` pixels,
    complex128 ``(H, W)`` in numpy's FFT order."""
    ky, kx = frequencies(shape, pixel_nm)
    k = np.sqrt(ky**2 + kx**2)
    return np.exp(1j * ctf_phase(k, optics)) * envelope(k, optics)


def image_intensity(exit_wave: np.ndarray, pixel_nm: float, optics: Optics) -> np.ndarray:
    """The image ``|F^-1[F[psi] H]|^2`` of the exit wave ``psi`` (complex ``(H, W)``, 1 for the
    unscattered beam) of ``pixel_nm`` pixels, float64 ``(H, W)`` (1 = the incident beam). The
    FFT is periodic: give the wave a margin wider than the blur ``lambda |df| k + Cs lambda^3
    k^3`` so that the edges do not wrap (see :func:`delocalization_nm`)."""
    spectrum = fft.fft2(exit_wave) * transfer_function(exit_wave.shape, pixel_nm, optics)
    wave = fft.ifft2(spectrum)
    return wave.real**2 + wave.imag**2


def delocalization_nm(pixel_nm: float, optics: Optics) -> float:
    """How far in nm the optics move detail at the grid's highest frequency ``1 / (2 pixel)``:
    ``|d chi / d k| / (2 pi)`` = ``lambda |df| k - Cs lambda^3 k^3`` in magnitude, the largest
    over the frequencies up to it."""
    lam = optics.wavelength_nm
    cs_nm = optics.cs_mm * 1e6
    k = np.linspace(0, 1 / (2 * pixel_nm), 256)
    return float(np.max(np.abs(lam * optics.defocus_nm * k - cs_nm * lam**3 * k**3)))
