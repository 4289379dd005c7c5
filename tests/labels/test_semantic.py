"""emdl.labels.semantic: class-index masks painted in CVAT's drawing order."""

from __future__ import annotations

import numpy as np
import pytest

from emdl.annotations import Box, ImageAnnotation, Polyline
from emdl.io.cvat import read_cvat
from emdl.labels import semantic_mask

CLASSES = ["void", "precipitate", "line"]


def image_with(*shapes) -> ImageAnnotation:
    return ImageAnnotation("a.png", width=6, height=4, shapes=list(shapes))


def test_classes_follow_label_order_and_later_shapes_cover_earlier():
    image = image_with(
        Box(label="precipitate", xtl=0, ytl=0, xbr=4, ybr=4),
        Box(label="void", xtl=2, ytl=1, xbr=6, ybr=3, z_order=1),
    )
    expected = np.array(
        [[2, 2, 2, 2, 0, 0], [2, 2, 1, 1, 1, 1], [2, 2, 1, 1, 1, 1], [2, 2, 2, 2, 0, 0]],
        dtype=np.uint8,
    )
    mask = semantic_mask(image, CLASSES)
    assert mask.dtype == np.uint8
    assert np.array_equal(mask, expected)


def test_one_hot_has_a_background_channel():
    image = image_with(
        Box(label="void", xtl=0, ytl=0, xbr=2, ybr=2),
        Polyline(label="line", points=((0, 3.5), (6, 3.5))),
    )
    one_hot = semantic_mask(image, CLASSES, one_hot=True)
    assert one_hot.shape == (4, 6, 4)
    assert one_hot.dtype == np.uint8
    assert np.array_equal(one_hot.sum(axis=-1), np.ones((4, 6)))
    assert one_hot[..., 1].sum() == 4
    assert one_hot[..., 2].sum() == 0
    assert one_hot[3, :, 3].tolist() == [1] * 6
    assert np.array_equal(one_hot.argmax(axis=-1), semantic_mask(image, CLASSES))


def test_line_width_applies_to_lines():
    image = image_with(Polyline(label="line", points=((0, 2), (6, 2))))
    assert (semantic_mask(image, CLASSES, line_width=1) == 3).sum() == 6
    assert (semantic_mask(image, CLASSES, line_width=2) == 3).sum() == 12


def test_a_label_outside_the_classes_is_an_error():
    image = image_with(Box(label="loop", xtl=0, ytl=0, xbr=2, ybr=2))
    with pytest.raises(ValueError, match="image 'a.png': label 'loop' is not among the classes"):
        semantic_mask(image, CLASSES)


def test_real_bubble_masks(data_dir):
    for number, count in ((1, 37), (2, 70)):
        annotations = read_cvat(data_dir / f"bubbles/DL_for_Microscopy_Train_Lab_{number}.xml")
        masks = [semantic_mask(image, annotations.label_names) for image in annotations.images]
        assert sum(len(image.shapes) for image in annotations.images) == count
        for mask in masks:
            assert mask.shape == (512, 512)
            assert set(np.unique(mask)) <= {0, 1}
        foreground = np.mean([mask.mean() for mask in masks])
        assert 0.05 < foreground < 0.6  # bubbles cover part of each image, not all of it


def test_borders_mark_where_objects_touch_and_nowhere_else():
    # Two boxes side by side (columns 0-3 and 4-7), a third alone: only the touching columns
    # within the border width become the border class.
    image = ImageAnnotation(
        "a.png",
        width=14,
        height=4,
        shapes=[
            Box(label="void", xtl=0, ytl=0, xbr=4, ybr=4),
            Box(label="void", xtl=4, ytl=0, xbr=8, ybr=4),
            Box(label="precipitate", xtl=10, ytl=0, xbr=14, ybr=4),
        ],
    )
    mask = semantic_mask(image, CLASSES, border_width=1)
    border = len(CLASSES) + 1
    assert mask[0].tolist() == [1, 1, 1, border, border, 1, 1, 1, 0, 0, 2, 2, 2, 2]
    assert (mask == mask[0]).all()  # every row alike
    wide = semantic_mask(image, CLASSES, border_width=2)
    assert wide[0].tolist() == [1, 1, border, border, border, border, 1, 1, 0, 0, 2, 2, 2, 2]
    # An object 2 pixels from another (a gap of 1) is bordered too at width 2, not at width 1.
    gap = ImageAnnotation(
        "b.png",
        width=9,
        height=2,
        shapes=[
            Box(label="void", xtl=0, ytl=0, xbr=4, ybr=2),
            Box(label="void", xtl=5, ytl=0, xbr=9, ybr=2),
        ],
    )
    assert semantic_mask(gap, CLASSES, border_width=1)[0].tolist() == [1] * 4 + [0] + [1] * 4
    assert semantic_mask(gap, CLASSES, border_width=2)[0].tolist() == [1, 1, 1, 4, 0, 4, 1, 1, 1]


def test_the_border_width_must_be_a_pixel_or_more():
    from emdl.labels.semantic import touching_borders

    with pytest.raises(ValueError, match="at least 1 pixel"):
        touching_borders(np.zeros((3, 3), np.int32), 0)


def test_object_distance_peaks_at_one_in_each_object_and_dips_between_overlapping_ones():
    from emdl.annotations import Ellipse
    from emdl.labels import object_distance

    image = ImageAnnotation(
        "a.png",
        width=60,
        height=40,
        shapes=[
            Ellipse(label="void", cx=20, cy=20, rx=10, ry=10),
            Ellipse(label="void", cx=30, cy=20, rx=10, ry=10),  # overlaps the first
            Box(label="void", xtl=0, ytl=0, xbr=4, ybr=3),  # cut by the edge: not an outline
        ],
    )
    distance = object_distance(image)
    assert distance.dtype == np.float32 and distance.shape == (40, 60)
    assert np.array_equal(distance > 0, semantic_mask(image, CLASSES) > 0)
    # The pixels at the centres are 1; midway between them each disc's own distance, what the
    # first has as far from its centre on its far side (column 15): a dip of 0.38, where the
    # union's distance transform would not dip at all.
    assert distance[19, 19] == distance[19, 29] == 1.0
    assert distance[19, 24] == distance[19, 15] == np.float32(0.61807966)
    # The box's distances reach from its outline inside the image, not from the image edge:
    # rows 0 to 2, so row 0 is 3 rows from the background and row 2 one.
    assert distance[0, 0] == 1.0 and distance[2, 0] == np.float32(1 / 3)
