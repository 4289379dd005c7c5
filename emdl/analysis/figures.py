"""Pictures of predicted defects: an overlay per micrograph and a size histogram per set."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on prediction machines
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from skimage.draw import rectangle_perimeter
from skimage.segmentation import find_boundaries

from emdl.analysis.statistics import Defect
from emdl.predict.instances import Instances

WHOLE = (0, 230, 255)  # outline colour of a defect inside the image
CUT = (255, 140, 0)  # outline colour of a defect touching the image edge


def overlay_pixels(image: np.ndarray, instances: Instances) -> np.ndarray:
    """uint8 ``(H, W, 3)``: the gray ``image`` float ``(H, W)`` in [0, 1] with each defect's
    outline (a mask's inner boundary, a box's perimeter) painted, cut ones in another colour."""
    rgb = np.repeat((np.clip(image, 0, 1) * 255).astype(np.uint8)[..., np.newaxis], 3, axis=-1)
    if instances.labels is not None:
        boundary = find_boundaries(instances.labels, mode="inner")
        cut = np.concatenate([[False], instances.touches_edge])[instances.labels]
        rgb[boundary & ~cut] = WHOLE
        rgb[boundary & cut] = CUT
        return rgb
    for (x0, y0, x1, y1), edge in zip(instances.boxes, instances.touches_edge, strict=True):
        # The box's outermost pixels: columns x0 .. x1 - 1, rows y0 .. y1 - 1.
        start = (int(np.floor(y0)), int(np.floor(x0)))
        end = (max(int(np.ceil(y1)) - 1, start[0]), max(int(np.ceil(x1)) - 1, start[1]))
        rr, cc = rectangle_perimeter(start, end, shape=image.shape, clip=True)
        rgb[rr, cc] = CUT if edge else WHOLE
    return rgb


class _Pixels(Artist):
    """An RGB uint8 ``(H, W, 3)`` picture drawn opaque as it is, its top-left pixel on the
    canvas's, a pixel per canvas pixel: what ``imshow`` of a picture the size of the canvas
    draws, without resampling it through float RGBA copies (seconds and a gigabyte for a
    4096 x 4096 picture)."""

    def __init__(self, rgb: np.ndarray) -> None:
        super().__init__()
        height, width = rgb.shape[:2]
        self._rows_up = np.empty((height, width, 4), np.uint8)  # the renderer's rows go up
        self._rows_up[..., :3] = rgb[::-1]
        self._rows_up[..., 3] = 255

    def draw(self, renderer) -> None:
        gc = renderer.new_gc()
        renderer.draw_image(gc, 0, 0, self._rows_up)
        gc.restore()


def write_overlay(
    path: str | os.PathLike, image: np.ndarray, instances: Instances, defects: Sequence[Defect]
) -> None:
    """A PNG of ``image`` float ``(H, W)`` at its own size with the outlines of
    :func:`overlay_pixels` and each defect's id at its centroid."""
    height, width = image.shape
    dpi = 100
    figure = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    # The axes span the figure with pixel (r, c) at data (c, r), where imshow would put it.
    axis = figure.add_axes((0, 0, 1, 1))
    axis.set_xlim(-0.5, width - 0.5)
    axis.set_ylim(height - 0.5, -0.5)
    axis.set_axis_off()
    axis.add_artist(_Pixels(overlay_pixels(image, instances)))
    for defect in defects:
        axis.text(
            defect.centroid_x - 0.5,
            defect.centroid_y - 0.5,
            str(defect.id),
            color="yellow",
            fontsize=6,
            ha="center",
            va="center",
        )
    # zlib level 3 instead of 6: half the time for a 4096 x 4096 overlay, a file 15 % larger.
    figure.savefig(path, dpi=dpi, pil_kwargs={"compress_level": 3})
    plt.close(figure)


def write_histogram(
    path: str | os.PathLike,
    diameters: Sequence[float],
    *,
    unit: str = "pixels",
    truth: Sequence[float] | None = None,
    title: str = "",
) -> None:
    """A PNG histogram of equivalent ``diameters`` (in ``unit``), with the ``truth`` diameters'
    histogram over it when given."""
    figure, axis = plt.subplots(figsize=(6, 4))
    values = np.asarray(diameters, np.float64)
    both = np.concatenate([values, np.asarray(truth or [], np.float64)])
    bins = np.histogram_bin_edges(both, bins="auto") if len(both) else 10
    axis.hist(values, bins=bins, alpha=0.7, label=f"predicted ({len(values)})")
    if truth is not None:
        axis.hist(truth, bins=bins, histtype="step", linewidth=2, label=f"truth ({len(truth)})")
    axis.set_xlabel(f"equivalent diameter ({unit})")
    axis.set_ylabel("defects")
    axis.set_title(title or "defect sizes (defects cut by the image edge left out)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
