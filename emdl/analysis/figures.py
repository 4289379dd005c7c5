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
from emdl.io.atomic import atomic_path
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
    for (rr, cc), edge in zip(_perimeters(instances), instances.touches_edge, strict=True):
        rgb[rr, cc] = CUT if edge else WHOLE
    return rgb


def _perimeters(instances: Instances):
    """The rows and columns of the one-pixel frame around each box's pixels (columns
    x0 .. x1 - 1, rows y0 .. y1 - 1 of its "xyxy" box), so the defect itself stays visible;
    clipped to the image."""
    for x0, y0, x1, y1 in instances.boxes:
        start = (int(np.floor(y0)), int(np.floor(x0)))
        end = (max(int(np.ceil(y1)) - 1, start[0]), max(int(np.ceil(x1)) - 1, start[1]))
        yield rectangle_perimeter(start, end, shape=(instances.height, instances.width), clip=True)


def uncertainty_pixels(
    image: np.ndarray, instances: Instances, uncertainty: np.ndarray
) -> np.ndarray:
    """uint8 ``(H, W, 3)``: the gray ``image`` float ``(H, W)`` in [0, 1] with each defect (a
    mask's pixels, a box's perimeter) painted by its ``uncertainty`` float ``(N,)`` in [0, 1]:
    green where every view agrees (0), through yellow, to red where only one does (7/8 and up).
    A mask is blended half and half with the image, so that the micrograph shows through."""
    uncertainty = np.clip(np.asarray(uncertainty, np.float64), 0, 1)
    if len(uncertainty) != len(instances):
        raise ValueError(f"{len(instances)} defects but {len(uncertainty)} uncertainties")
    gray = np.repeat((np.clip(image, 0, 1) * 255)[..., np.newaxis], 3, axis=-1)
    # 0 -> green (0, 200, 0), 0.5 -> yellow (230, 200, 0), 1 -> red (230, 0, 0).
    colours = np.stack(
        [
            np.minimum(2 * uncertainty, 1) * 230,
            np.minimum(2 * (1 - uncertainty), 1) * 200,
            np.zeros_like(uncertainty),
        ],
        axis=-1,
    )
    if instances.labels is not None:
        painted = instances.labels > 0
        colour = colours[np.maximum(instances.labels - 1, 0)]
        gray[painted] = 0.5 * gray[painted] + 0.5 * colour[painted]
        return np.round(gray).astype(np.uint8)
    rgb = np.round(gray).astype(np.uint8)
    for (rr, cc), colour in zip(_perimeters(instances), colours, strict=True):
        rgb[rr, cc] = np.round(colour).astype(np.uint8)
    return rgb


def write_uncertainty_map(
    path: str | os.PathLike, image: np.ndarray, instances: Instances, uncertainty: np.ndarray
) -> None:
    """A PNG of :func:`uncertainty_pixels` at the image's own size, written whole."""
    from skimage import io as skio

    with atomic_path(path) as temporary:
        skio.imsave(
            temporary, uncertainty_pixels(image, instances, uncertainty), check_contrast=False
        )


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
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=dpi, pil_kwargs={"compress_level": 3})
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
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)
