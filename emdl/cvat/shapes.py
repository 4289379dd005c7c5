"""What CVAT gets from a run, whichever way it asks: the defects of one image above a confidence,
with each one's outline, mask crop, score and diameter, and the run's labels as CVAT declares them.

A run of the detector kind gives rectangles; U-Net and Mask R-CNN runs give masks, which CVAT
turns into polygons on request (``conv_mask_to_poly``), here traced as ``emdl predict`` traces
them for its CVAT XML (:func:`emdl.export.cvat_predictions.instance_shapes`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from emdl.analysis.statistics import instance_defects
from emdl.api import Run
from emdl.errors import EmdlError
from emdl.export.cvat_predictions import instance_shapes
from emdl.predict.instances import Instances

SCORE = "score"
"""Attribute with each shape's confidence in [0, 1], as text with 3 decimals."""
DIAMETER = "diameter_nm"
"""Attribute with each defect's equivalent diameter in nm, as text with 2 decimals."""

# PIL modes numpy reads as gray or RGB(A) as they are; others are converted to RGB first.
_DIRECT_MODES = ("L", "I", "I;16", "F", "RGB", "RGBA")


@dataclass(frozen=True)
class CvatObject:
    """One defect as CVAT takes it. ``label``: class name; ``label_id``: its index in the run's
    classes; ``score``: confidence in [0, 1]; ``box``: float ``(x0, y0, x1, y1)`` pixel edges;
    ``polygon``: flat ``[x0, y0, x1, y1, ...]`` outline vertices in pixels (None for a box);
    ``mask``: bool ``(h, w)``, the defect's pixels on their bounding box, whose top-left pixel
    is column ``origin[0]``, row ``origin[1]`` of the image (both None for a box);
    ``diameter_nm``: equivalent diameter in nm (None without a pixel size)."""

    label: str
    label_id: int
    score: float
    box: tuple[float, float, float, float]
    polygon: list[float] | None
    mask: np.ndarray | None
    origin: tuple[int, int] | None
    diameter_nm: float | None


def shape_type(run: Run) -> str:
    """CVAT's shape type of the run's labels: "rectangle" for a detector, "mask" for the kinds
    that give each defect's pixels (U-Net, Mask R-CNN)."""
    return "rectangle" if run.config.model_kind.target == "detection" else "mask"


def check_pixel_size(pixel_size_nm: float | str | None) -> float | None:
    """``pixel_size_nm`` as a positive float (a string is parsed, as ``cvat-cli -p`` may pass
    one); None stays None. An EmdlError naming the value otherwise."""
    if pixel_size_nm is None:
        return None
    try:
        value = float(pixel_size_nm)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise EmdlError(f"the pixel size must be a positive number of nm, got {pixel_size_nm!r}")
    return value


def image_array(image: Image.Image) -> np.ndarray:
    """A PIL image as the array :meth:`emdl.api.Run.predict` takes: ``(H, W)`` for gray
    modes, ``(H, W, 3|4)`` for colour (palette, CMYK and the rest converted to RGB)."""
    if image.mode not in _DIRECT_MODES:
        image = image.convert("RGB")
    return np.asarray(image)


def detect(
    run: Run,
    image: np.ndarray,
    conf_threshold: float | None = None,
    pixel_size_nm: float | None = None,
) -> list[CvatObject]:
    """The defects of ``image`` (any array :meth:`emdl.api.Run.predict` takes) whose score is
    at least ``conf_threshold`` (None: all that the run's own post-processing keeps).

    A detector or Mask R-CNN run predicts with ``conf_threshold`` as its score threshold when
    given (else its calibrated one); a U-Net keeps its calibrated foreground-probability
    threshold for the pixels and drops the objects whose score (mean foreground probability)
    is below ``conf_threshold``.
    """
    if conf_threshold is not None and not 0 <= conf_threshold <= 1:
        raise EmdlError(f"the confidence threshold must be in [0, 1], got {conf_threshold}")
    threshold = None
    if conf_threshold is not None and run.config.model_kind.target != "semantic":
        # predict takes thresholds in [0, 1); a threshold of 1 keeps only scores of exactly 1.
        threshold = min(conf_threshold, math.nextafter(1.0, 0.0))
    found = run.predict(image, threshold=threshold)
    return objects(found, run.classes, conf_threshold or 0.0, pixel_size_nm)


def objects(
    instances: Instances,
    classes: Sequence[str],
    conf_threshold: float = 0.0,
    pixel_size_nm: float | None = None,
) -> list[CvatObject]:
    """:class:`CvatObject` s of ``instances`` (class ``i`` named ``classes[i]``) whose score
    is at least ``conf_threshold``, in the instances' order."""
    defects = instance_defects(instances, classes)
    keep = [i for i in range(len(instances)) if instances.scores[i] >= conf_threshold]
    polygons: list = [None] * len(instances)
    crops: list = [None] * len(instances)
    origins: list = [None] * len(instances)
    if instances.labels is not None:
        polygons = [
            [float(v) for point in shape.points for v in point]
            for shape in instance_shapes(instances, classes)
        ]
        for index, found in enumerate(ndi.find_objects(instances.labels, len(instances))):
            if found is not None:
                crops[index] = instances.labels[found] == index + 1
                origins[index] = (found[1].start, found[0].start)
        # A mask defect without pixels (none are made so; kept out rather than sent empty).
        keep = [i for i in keep if crops[i] is not None]
    result = []
    for i in keep:
        diameter = None
        if pixel_size_nm is not None:
            diameter = defects[i].equivalent_diameter * pixel_size_nm
        result.append(
            CvatObject(
                label=classes[instances.classes[i]],
                label_id=int(instances.classes[i]),
                score=float(instances.scores[i]),
                box=tuple(float(v) for v in instances.boxes[i]),
                polygon=polygons[i],
                mask=crops[i],
                origin=origins[i],
                diameter_nm=diameter,
            )
        )
    return result


def attribute_values(found: CvatObject) -> dict[str, str]:
    """The attribute values of one defect by name: ``score``, and ``diameter_nm`` when known."""
    values = {SCORE: f"{found.score:.3f}"}
    if found.diameter_nm is not None:
        values[DIAMETER] = f"{found.diameter_nm:.2f}"
    return values
