"""Synthetic micrographs with exact labels: a physically grounded TEM image model.

``optics`` (wavelength, CTF, Fresnel propagation), ``detector`` (dose, shot noise, MTF, gain,
bits, scan jitter), ``objects`` (cavities, precipitates, loops, dots, lines: their exit-wave
contrast and labels), ``populations`` (densities, size distributions, placement), ``scene`` (a
foil imaged and recorded), ``presets`` (the settings of each ``--kind``), ``dataset`` (a folder
as real data: images and CVAT or COCO labels) and ``preview`` (synthetic beside real).
"""

from emdl.synth.dataset import DatasetReport, read_pixel_size, write_dataset
from emdl.synth.detector import Detector
from emdl.synth.optics import Optics, interaction_constant, wavelength_nm
from emdl.synth.populations import Population
from emdl.synth.presets import KINDS, preset
from emdl.synth.scene import Foil, Scene, SceneSettings, make_scene

__all__ = [
    "KINDS",
    "DatasetReport",
    "Detector",
    "Foil",
    "Optics",
    "Population",
    "Scene",
    "SceneSettings",
    "interaction_constant",
    "make_scene",
    "preset",
    "read_pixel_size",
    "wavelength_nm",
    "write_dataset",
]
