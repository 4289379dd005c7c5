"""emdl.rasterize: exact pixels for every shape type on tiny images."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import measure

from emdl.annotations import Box, Ellipse, Mask, Points, Polygon, Polyline
from emdl.rasterize import shape_mask


def grid(text: str) -> np.ndarray:
    """A bool array from rows of '.' and '#'."""
    return np.array([[char == "#" for char in row] for row in text.split()], dtype=bool)


def test_box_covers_the_pixels_whose_centres_it_holds():
    expected = grid("...... ...... .###.. .###.. .###.. ......")
    assert np.array_equal(shape_mask(Box(label="a", xtl=1, ytl=2, xbr=4, ybr=5), 6, 6), expected)


def test_rotated_box():
    # 4 x 2 box centred at (3, 2) turned 90 degrees is 2 x 4.
    expected = grid("..##.. ..##.. ..##.. ..##.. ...... ......")
    box = Box(label="a", xtl=1, ytl=1, xbr=5, ybr=3, rotation=90)
    assert np.array_equal(shape_mask(box, 6, 6), expected)


def test_polygon_includes_its_boundary():
    expected = grid("####. ###.. ##... #.... .....")
    triangle = Polygon(label="a", points=((0, 0), (4, 0), (0, 4)))
    assert np.array_equal(shape_mask(triangle, 5, 5), expected)


def test_tiny_polygon_keeps_the_pixel_at_its_centre():
    tiny = Polygon(label="a", points=((2.1, 2.1), (2.3, 2.1), (2.2, 2.3)))
    assert np.argwhere(shape_mask(tiny, 5, 5)).tolist() == [[2, 2]]


def test_ellipse_and_its_rotation():
    flat = Ellipse(label="a", cx=5, cy=5, rx=3, ry=1)
    expected = np.zeros((9, 10), dtype=bool)
    expected[4:6, 2:8] = True
    assert np.array_equal(shape_mask(flat, 9, 10), expected)
    upright = Ellipse(label="a", cx=5, cy=5, rx=3, ry=1, rotation=90)
    expected = np.zeros((9, 10), dtype=bool)
    expected[2:8, 4:6] = True
    assert np.array_equal(shape_mask(upright, 9, 10), expected)


def test_ellipse_rotation_is_clockwise_on_screen():
    # Turned 30 degrees clockwise (y down), the long axis points to the lower right.
    mask = shape_mask(Ellipse(label="a", cx=20, cy=20, rx=12, ry=3, rotation=30), 40, 40)
    assert mask[24, 27] and not mask[15, 27]


def test_polyline_width():
    line = Polyline(label="a", points=((0.5, 2.5), (5.5, 2.5)))
    thin = grid("........ ........ ######.. ........ ........")
    assert np.array_equal(shape_mask(line, 5, 8), thin)
    # 3 pixels wide with round ends half the width long.
    thick = grid("........ #######. #######. #######. ........")
    assert np.array_equal(shape_mask(line, 5, 8, line_width=3), thick)


def test_diagonal_polyline_stays_connected():
    line = Polyline(label="a", points=((0.5, 0.5), (6.5, 3.5), (0.5, 6.5)))
    mask = shape_mask(line, 8, 8)
    assert measure.label(mask, connectivity=2).max() == 1
    assert mask[0, 0] and mask[3, 6] and mask[6, 0]


def test_points():
    points = Points(label="a", points=((0.5, 2.5), (5.2, 3.9)))
    assert np.argwhere(shape_mask(points, 5, 8)).tolist() == [[2, 0], [3, 5]]
    wide = shape_mask(Points(label="a", points=((4.5, 4.5),)), 9, 9, line_width=5)
    assert wide.sum() == 21  # a disc of radius 2.5 on the pixel grid


def test_mask_is_pasted_and_clipped():
    bitmap = np.array([[1, 0, 1], [1, 1, 0]], dtype=bool)
    mask = Mask.from_array(bitmap, left=3, top=2, label="a")
    expected = np.zeros((4, 5), dtype=bool)
    expected[2:4, 3:5] = bitmap[:, :2]
    assert np.array_equal(shape_mask(mask, 4, 5), expected)


@pytest.mark.parametrize("left, top", [(0, 0), (2, 1)])
def test_mask_array_round_trip(left, top):
    rng = np.random.default_rng(0)
    bitmap = rng.random((6, 7)) > 0.5
    mask = Mask.from_array(bitmap, left=left, top=top, crop=False, label="a")
    assert sum(mask.rle) == 42
    assert np.array_equal(mask.to_array(), bitmap)
    assert mask.area == bitmap.sum()
