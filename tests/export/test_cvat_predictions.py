"""emdl.export: predicted masks as polygons on pixel edges that rasterize back to the same pixels,
boxes as boxes, and a CVAT file that re-imports with the same shapes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import find_objects
from skimage.measure import find_contours

from emdl.annotations import Box, ImageAnnotation, Polygon
from emdl.export.cvat_predictions import instance_shapes, mask_polygon, write_predictions
from emdl.io.cvat import read_cvat
from emdl.predict.instances import instances_from_boxes, instances_from_probabilities
from emdl.rasterize import shape_mask
from tests.conftest import disc, ellipse


def test_polygons_of_tiny_masks_exactly():
    # Vertices on pixel edges, corners cut through the edge midpoints.
    assert mask_polygon(np.ones((1, 1), bool), left=3, top=5) == (
        (3.5, 6.0),
        (3.0, 5.5),
        (3.5, 5.0),
        (4.0, 5.5),
    )
    assert mask_polygon(np.ones((2, 3), bool)) == (
        (2.5, 2.0),
        (0.5, 2.0),
        (0.0, 1.5),
        (0.0, 0.5),
        (0.5, 0.0),
        (2.5, 0.0),
        (3.0, 0.5),
        (3.0, 1.5),
    )
    assert mask_polygon(np.zeros((3, 3), bool)) == ()


@pytest.mark.parametrize(
    "mask",
    [
        disc((40, 40), 20, 20.3, 1.5),
        disc((40, 40), 20, 20, 10),
        ellipse((60, 60), 30, 30, 25, 7, 30),
        ellipse((60, 60), 30, 30, 12, 5, -70),
    ],
)
def test_polygons_rasterize_back_to_the_mask(mask):
    polygon = Polygon(label="bubble", points=mask_polygon(mask))
    assert np.array_equal(shape_mask(polygon, *mask.shape), mask)
    traced = len(max(find_contours(np.pad(mask, 1).astype(float), 0.5), key=len)) - 1
    assert len(polygon.points) < traced or traced == len(polygon.points) == 8  # simplified


def scene():
    shape = (80, 100)
    mask = disc(shape, 20, 20, 8) | disc(shape, 35, 20, 8) | disc(shape, 97, 60, 10)
    mask |= ellipse(shape, 60, 40, 15, 5, 20)
    return np.where(mask, 0.9, 0.1).astype(np.float32)[..., np.newaxis]


def test_predicted_masks_and_boxes_round_trip_through_cvat(tmp_path):
    instances = instances_from_probabilities(scene())
    polygons = instance_shapes(instances, ["bubble"])
    assert len(polygons) == 4 and all(isinstance(p, Polygon) for p in polygons)
    assert all(p.source == "auto" and p.label == "bubble" for p in polygons)
    for index, polygon in enumerate(polygons, start=1):
        pixels = instances.labels == index
        assert np.array_equal(shape_mask(polygon, *pixels.shape), pixels)
    boxes = instances_from_boxes(
        [[0.0, 1.5, 10.25, 20.0], [30.0, 30.0, 64.0, 48.0]], [1, 0], [0.9, 0.8], 48, 64
    )
    box_shapes = instance_shapes(boxes, ["bubble", "loop"])
    assert box_shapes == [
        Box(label="loop", xtl=0.0, ytl=1.5, xbr=10.25, ybr=20.0, source="auto"),
        Box(label="bubble", xtl=30.0, ytl=30.0, xbr=64.0, ybr=48.0, source="auto"),
    ]
    images = [
        ImageAnnotation("masks.png", 100, 80, polygons),
        ImageAnnotation("boxes.tif", 64, 48, box_shapes),
        ImageAnnotation("nothing.png", 32, 32, []),
    ]
    path = tmp_path / "annotations.xml"
    write_predictions(images, ["bubble", "loop"], path)
    again = read_cvat(path)
    assert again.label_names == ["bubble", "loop"]
    assert [(i.name, i.width, i.height, i.shapes) for i in again.images] == [
        (i.name, i.width, i.height, i.shapes) for i in images
    ]
    assert not again.report.skipped and again.report.clipped == 0


def test_polygons_of_all_instances_at_once_are_those_of_approximate_polygon():
    # instance_shapes simplifies every outline (each traced on its bounding box) in one batch;
    # mask_polygon, one outline with skimage's approximate_polygon. Same vertices.
    rng = np.random.default_rng(0)
    shape = (200, 200)
    mask = np.zeros(shape, bool)
    for _ in range(40):
        cx, cy, a, b = *rng.uniform(0, 200, 2), *rng.uniform(1, 15, 2)
        mask |= ellipse(shape, cx, cy, a, b, rng.uniform(-90, 90))
    instances = instances_from_probabilities(np.where(mask, 0.9, 0.1).astype(np.float32)[..., None])
    polygons = instance_shapes(instances, ["bubble"])
    assert len(polygons) > 20
    for index, (polygon, (rows, cols)) in enumerate(
        zip(polygons, find_objects(instances.labels), strict=True)
    ):
        own = instances.labels[rows, cols] == index + 1
        assert polygon.points == mask_polygon(own, left=cols.start, top=rows.start)
