"""A run as a CVAT auto-annotation function (``cvat_sdk.auto_annotation``'s detection-function
protocol), so that CVAT's command-line client pre-annotates a task with it::

    cvat-cli task auto-annotate TASK_ID --function-module emdl.cvat.function \\
        -p run=str:runs/unet_bubbles [-p pixel_size_nm=float:0.5] \\
        [--conf-threshold 0.6] [--conv-mask-to-poly] [--allow-unmatched-labels]

``cvat-cli`` calls :func:`create` with the ``-p`` parameters and then, for every image of the
task, ``detect(context, image)``. The spec declares the run's classes as labels (ids 0, 1, ...
in the run's order): of type "mask" for U-Net and Mask R-CNN runs (polygons instead when CVAT
asks with ``--conv-mask-to-poly``), "rectangle" for a detector. Each label has the text
attribute ``score`` (the confidence, 3 decimals; also the shape's own ``score``) and, with a
pixel size, ``diameter_nm`` (the equivalent diameter, 2 decimals). CVAT matches labels and
attributes by name: the task needs labels of these names, with text attributes of these names
(or ``--allow-unmatched-labels`` drops what it lacks).

Needs cvat-sdk (``pip install "emdl[cvat]"``), imported only when a function is made.
"""

from __future__ import annotations

import os

from PIL import Image

from emdl.api import Run, load_run
from emdl.cvat.shapes import (
    DIAMETER,
    SCORE,
    attribute_values,
    check_pixel_size,
    detect,
    image_array,
    shape_type,
)

# The attributes' ids within each label (the SDK wants them distinct per label).
ATTRIBUTE_IDS = {SCORE: 0, DIAMETER: 1}


class RunFunction:
    """A detection function of ``run``; ``pixel_size_nm`` (nm per pixel) adds the
    ``diameter_nm`` attribute."""

    def __init__(self, run: Run, pixel_size_nm: float | str | None = None) -> None:
        import cvat_sdk.auto_annotation as cvataa

        self.run = run
        self.pixel_size_nm = check_pixel_size(pixel_size_nm)
        self._type = shape_type(run)
        names = [SCORE] + ([DIAMETER] if self.pixel_size_nm is not None else [])
        attributes = [cvataa.text_attribute_spec(name, ATTRIBUTE_IDS[name]) for name in names]
        # The spec validates itself (distinct ids, attribute values) when it is made.
        self.spec = cvataa.DetectionFunctionSpec(
            labels=[
                cvataa.label_spec(name, index, type=self._type, attributes=attributes)
                for index, name in enumerate(run.classes)
            ]
        )

    def detect(self, context, image: Image.Image) -> list:
        """The run's defects of ``image`` as ``cvat_sdk.models.LabeledShapeRequest`` s (frame
        0, label ids of the spec, no id or source, as the protocol wants): rectangles, masks, or
        with ``context.conv_mask_to_poly`` polygons; only scores >= ``context.conf_threshold``
        (None: the run's own post-processing)."""
        import cvat_sdk.auto_annotation as cvataa
        from cvat_sdk.attributes import attribute_vals_from_dict

        found = detect(self.run, image_array(image), context.conf_threshold, self.pixel_size_nm)
        shapes = []
        for item in found:
            extra = {
                "score": item.score,
                "attributes": attribute_vals_from_dict(
                    {ATTRIBUTE_IDS[k]: v for k, v in attribute_values(item).items()}
                ),
            }
            if item.mask is None:
                shapes.append(cvataa.rectangle(item.label_id, list(item.box), **extra))
            elif context.conv_mask_to_poly:
                shapes.append(cvataa.polygon(item.label_id, item.polygon, **extra))
            else:
                shapes.append(cvataa.mask(item.label_id, _encoded(item), **extra))
        return shapes


def _encoded(item) -> list[float]:
    """CVAT's mask points of a defect: run lengths over its box's pixels (row by row, starting
    with background), then the box's first and last column and row (inclusive), as
    ``cvat_sdk.masks.encode_mask`` gives for the whole image's bitmap."""
    from cvat_sdk.masks import encode_mask

    # Encoded on the crop (the crop is the defect's bounding box, so encode_mask's own box is
    # the whole crop), then moved to the crop's place: the same numbers without an image-sized
    # bitmap per defect.
    *runs, _, _, right, bottom = encode_mask(item.mask)
    left, top = item.origin
    return [*runs, left, top, left + right, top + bottom]


def create(run: str | os.PathLike, pixel_size_nm: float | str | None = None) -> RunFunction:
    """The detection function of the finished run in ``run`` (``cvat-cli ... -p
    run=str:RUN_DIR``), with ``pixel_size_nm`` nm per pixel when given (``-p
    pixel_size_nm=float:0.5``). An InputError naming ``run`` when it is not a finished run."""
    return RunFunction(load_run(run), pixel_size_nm)
