"""A picture of synthetic micrographs beside real ones, to judge the image model by eye."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emdl.errors import InputError
from emdl.io.image import SUPPORTED_SUFFIXES, read_image
from emdl.synth.scene import SceneSettings


def real_images(folder: str | os.PathLike, count: int = 3) -> list[tuple[str, np.ndarray]]:
    """The first ``count`` micrographs (by name) in ``folder``, each ``(name, float32 (H, W)
    in [0, 1])``; an InputError when the folder is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "no such folder of real micrographs")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES)
    if not files:
        raise InputError(folder, "holds no micrographs (PNG, JPEG, TIFF, ...)")
    return [(p.name, read_image(p)) for p in files[:count]]


def write_preview(
    path: str | os.PathLike,
    synthetic: Sequence[np.ndarray],
    real: Sequence[tuple[str, np.ndarray]],
    settings: SceneSettings,
) -> None:
    """A PNG at ``path``: the ``synthetic`` images (any dtype ``(H, W)``) in the top row, the
    ``real`` ones (``(name, image)``, :func:`real_images`) in the bottom row, each in its own
    gray range, the synthetic row titled with the pixel size, defocus and dose."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(len(synthetic), len(real))
    figure, axes = plt.subplots(2, columns, figsize=(3.2 * columns, 6.8), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    optics, detector = settings.optics, settings.detector
    for ax, pixels in zip(axes[0], synthetic, strict=False):
        ax.imshow(pixels, cmap="gray", interpolation="nearest")
        ax.set_title(
            f"synthetic: {settings.pixel_size_nm:g} nm/px, df {optics.defocus_nm:g} nm,\n"
            f"{detector.dose:g} e-/A^2",
            fontsize=9,
        )
    for ax, (name, pixels) in zip(axes[1], real, strict=False):
        ax.imshow(pixels, cmap="gray", interpolation="nearest")
        ax.set_title(f"real: {name}", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
