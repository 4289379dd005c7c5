"""emdl.labels.instances (box_targets, instance_targets): one box, class and mask per shape,
in keras-cv's box formats."""

from __future__ import annotations

import numpy as np
import pytest

from emdl.annotations import Box, Ellipse, ImageAnnotation, Points, Polygon
from emdl.io.cvat import read_cvat
from emdl.labels import box_targets as boxes
from emdl.labels import instance_targets as instances
from emdl.rasterize import shape_mask

CLASSES = ["bubble", "loop"]
IMAGE = ImageAnnotation(
    "a.png",
    width=20,
    height=10,
    shapes=[
        Box(label="loop", xtl=2, ytl=1, xbr=6, ybr=5),
        Ellipse(label="bubble", cx=14, cy=5, rx=4, ry=2),
        Points(label="bubble", points=((0.5, 9.5),)),
    ],
)


def test_instances_one_row_per_shape():
    targets = instances(IMAGE, CLASSES)
    assert targets["classes"].tolist() == [1, 0, 0]
    assert targets["classes"].dtype == np.int32
    assert targets["boxes"].dtype == np.float32
    assert targets["boxes"].tolist() == [[2, 1, 6, 5], [10, 3, 18, 7], [0, 9, 1, 10]]
    assert targets["masks"].shape == (3, 10, 20)
    assert targets["masks"].dtype == np.uint8
    for mask, shape in zip(targets["masks"], IMAGE.shapes, strict=True):
        assert np.array_equal(mask, shape_mask(shape, 10, 20))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("xyxy", [2, 1, 6, 5]),
        ("xywh", [2, 1, 4, 4]),
        ("center_xywh", [4, 3, 4, 4]),
        ("yxyx", [1, 2, 5, 6]),
        ("rel_xyxy", [0.1, 0.1, 0.3, 0.5]),
    ],
)
def test_box_formats(name, expected):
    first = boxes(IMAGE, CLASSES, bounding_box_format=name)["boxes"][0]
    np.testing.assert_allclose(first, expected, rtol=1e-6)


def test_boxes_are_clipped_to_the_image():
    image = ImageAnnotation(
        "a.png", 10, 10, shapes=[Polygon(label="loop", points=((-3, 2), (4, -1), (12, 12)))]
    )
    assert boxes(image, CLASSES)["boxes"].tolist() == [[0, 0, 10, 10]]


def test_an_image_without_shapes():
    targets = instances(ImageAnnotation("e.png", 4, 3), CLASSES)
    assert targets["boxes"].shape == (0, 4)
    assert targets["classes"].shape == (0,)
    assert targets["masks"].shape == (0, 3, 4)


def test_real_loops_boxes(data_dir):
    annotations = read_cvat(data_dir / "loops111/annotations.xml")
    image = annotations.images[0]
    targets = boxes(image, annotations.label_names)
    assert targets["boxes"][0].tolist() == [468, 440, 549, 560]
    assert targets["classes"].tolist() == [0] * 7
    total = sum(len(boxes(i, annotations.label_names)["boxes"]) for i in annotations.images)
    assert total == 7383
