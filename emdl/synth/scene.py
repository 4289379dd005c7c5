"""A synthetic micrograph and its exact labels: a thin foil with defects, imaged by the optics
and recorded by the detector.

The exit wave of the foil is ``psi = exp(i phase - attenuation)``: the matrix of thickness
``t(x, y)`` (a thickness gradient across the field) absorbs ``sigma kappa V0 t`` (``kappa`` the
ratio of the imaginary to the real potential) and bend contours (bands where the bent foil
diffracts strongly) absorb more; its uniform phase ``sigma V0 t`` is left out, it changes no
intensity. Each defect adds its phase and attenuation (:mod:`emdl.synth.objects`). The wave is
propagated by the defocus (:func:`emdl.synth.optics.image_intensity`) on a field with a margin
around the image (defects are placed in the margin too, so the image edges look like the rest),
cropped, and recorded (:mod:`emdl.synth.detector`).

Labels are the defects' shapes clipped to the image exactly (polygons by Sutherland-Hodgman,
polylines cut at the border), coordinates rounded to CVAT's 0.01 pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import fft, ndimage

from emdl.annotations import ImageAnnotation, Polygon, Polyline, Shape
from emdl.synth.detector import Detector, record, scan_jitter
from emdl.synth.geometry import clip_polygon, clip_polyline
from emdl.synth.objects import Defect, Field
from emdl.synth.optics import Optics, delocalization_nm, image_intensity, interaction_constant
from emdl.synth.populations import Population, sample


@dataclass(frozen=True)
class Foil:
    """The specimen.

    Attributes:
        thickness_nm: mean foil thickness ``t``, nm (50).
        mean_inner_potential_v: the matrix's mean inner potential ``V0``, V (20, a typical
            metal: Al 13, Cu 23, Fe 21).
        absorption_ratio: ``kappa``, imaginary over real potential (0.08): how much of the
            beam the matrix scatters out of the aperture per nm.
        thickness_gradient: fractional change of the thickness across the field (0.3), in a
            random direction.
        bend_contrast: peak attenuation of a bend contour (0.3; 0: none).
        bend_length_nm: correlation length of the foil's bending, nm (100).
    """

    thickness_nm: float = 50.0
    mean_inner_potential_v: float = 20.0
    absorption_ratio: float = 0.08
    thickness_gradient: float = 0.3
    bend_contrast: float = 0.3
    bend_length_nm: float = 100.0


@dataclass(frozen=True)
class SceneSettings:
    """Everything that makes a micrograph: pixel size (nm), the optics, the detector, the foil
    and the defect populations in it."""

    pixel_size_nm: float = 0.5
    optics: Optics = field(default_factory=Optics)
    detector: Detector = field(default_factory=Detector)
    foil: Foil = field(default_factory=Foil)
    populations: tuple[Population, ...] = ()

    @property
    def label_names(self) -> list[str]:
        """The populations' labels, each once, in their order."""
        return list(dict.fromkeys(p.label for p in self.populations))


@dataclass
class Scene:
    """A synthetic micrograph.

    Attributes:
        image: the recorded image, uint8 or uint16 ``(H, W)``.
        intensity: the noiseless image before the detector, float64 ``(H, W)`` (1 = the
            incident beam).
        phase: the exit wave's phase of the defects, rad, float64 ``(H, W)``.
        attenuation: the exit wave's amplitude exponent, float64 ``(H, W)``.
        defects: every defect placed, those in the margin too (nm, the image's frame).
        annotation: the labels of the defects in the image, clipped to it.
    """

    image: np.ndarray
    intensity: np.ndarray
    phase: np.ndarray
    attenuation: np.ndarray
    defects: list[Defect]
    annotation: ImageAnnotation


def margin_px(settings: SceneSettings) -> int:
    """Pixels added on every side of the image so that the periodic FFT does not wrap: the
    optics' delocalization, the largest defect and some room for the MTF."""
    p = settings.pixel_size_nm
    largest = max((pop.max_diameter_nm for pop in settings.populations), default=0.0)
    blur = delocalization_nm(p, settings.optics) + largest / 2
    return math.ceil(blur / p) + 8


def _background(
    shape: tuple[int, int], settings: SceneSettings, rng: np.random.Generator
) -> np.ndarray:
    """The matrix's attenuation, float64 ``shape``: thickness gradient and bend contours."""
    foil, p = settings.foil, settings.pixel_size_nm
    sigma = interaction_constant(settings.optics.voltage_kv)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    angle = rng.uniform(0, 2 * math.pi)
    span = max(shape) - 1 or 1
    ramp = ((cols * math.cos(angle) + rows * math.sin(angle)) / span) - 0.5
    thickness = foil.thickness_nm * (1 + foil.thickness_gradient * ramp)
    attenuation = sigma * foil.absorption_ratio * foil.mean_inner_potential_v * thickness
    if foil.bend_contrast > 0:
        # A smooth random tilt field; a contour is where it passes a Bragg condition.
        noise = rng.normal(size=shape)
        smooth = ndimage.gaussian_filter(noise, foil.bend_length_nm / p / 2, mode="wrap")
        smooth /= smooth.std() or 1.0
        level = rng.normal(0, 1)
        attenuation += foil.bend_contrast * np.exp(-0.5 * ((smooth - level) / 0.35) ** 2)
    return attenuation


def make_scene(
    settings: SceneSettings,
    height: int,
    width: int,
    rng: np.random.Generator,
    name: str = "synthetic.png",
) -> Scene:
    """A ``height x width`` micrograph of ``settings`` drawn with ``rng``, named ``name`` in its
    labels."""
    p = settings.pixel_size_nm
    margin = margin_px(settings)
    shape = (fft.next_fast_len(height + 2 * margin), fft.next_fast_len(width + 2 * margin))
    extent = (-margin * p, -margin * p, (shape[1] - margin) * p, (shape[0] - margin) * p)
    defects: list[Defect] = []
    for population in settings.populations:
        defects += sample(rng, population, extent, settings.foil.thickness_nm)
    foil = settings.foil
    wave = Field(
        phase=np.zeros(shape),
        attenuation=_background(shape, settings, rng),
        pixel_nm=p,
        margin=margin,
        sigma=interaction_constant(settings.optics.voltage_kv),
        mean_inner_potential_v=foil.mean_inner_potential_v,
        absorption_ratio=foil.absorption_ratio,
    )
    for defect in defects:
        defect.paint(wave)
    exit_wave = np.exp(1j * wave.phase - wave.attenuation)
    intensity = image_intensity(exit_wave, p, settings.optics)
    intensity = scan_jitter(intensity, settings.detector.scan_jitter_px, rng)
    crop = (slice(margin, margin + height), slice(margin, margin + width))
    intensity = intensity[crop]
    image = record(intensity, p, settings.detector, rng)
    shapes = [s for defect in defects for s in clipped_shapes(defect.shapes(p), width, height)]
    annotation = ImageAnnotation(name, width, height, shapes)
    return Scene(image, intensity, wave.phase[crop], wave.attenuation[crop], defects, annotation)


def _rounded(points: np.ndarray) -> tuple[tuple[float, float], ...]:
    return tuple((round(float(x), 2), round(float(y), 2)) for x, y in points)


def clipped_shapes(shapes: list[Shape], width: int, height: int) -> list[Shape]:
    """``shapes`` (polygons, polylines) clipped to the ``width x height`` image, coordinates
    rounded to 0.01 pixel; shapes wholly outside (or left with no area) are dropped, a polyline
    leaving and re-entering the image becomes several."""
    out: list[Shape] = []
    for shape in shapes:
        if isinstance(shape, Polygon):
            points = clip_polygon(np.asarray(shape.points), width, height)
            if len(points) >= 3:
                clipped = Polygon(label=shape.label, points=_rounded(points))
                if clipped.area > 0:
                    out.append(clipped)
        elif isinstance(shape, Polyline):
            for piece in clip_polyline(np.asarray(shape.points), width, height):
                points = _rounded(piece)
                if len(set(points)) >= 2:
                    out.append(Polyline(label=shape.label, points=points))
        else:
            raise TypeError(f"cannot clip {type(shape).__name__}")
    return out
