"""Label geometry: ellipse polygons of the exact area, clipping to the image."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emdl.annotations import Polygon
from emdl.synth.geometry import (
    clip_polygon,
    clip_polyline,
    distance_to_points,
    ellipse_curve,
    ellipse_polygon,
)


@pytest.mark.parametrize(("rx", "ry", "rotation"), [(5.0, 5.0, 0.0), (30.0, 12.0, 35.0)])
def test_ellipse_polygon_has_the_ellipse_area(rx, ry, rotation):
    points = ellipse_polygon(50.0, 40.0, rx, ry, rotation)
    area = Polygon(label="x", points=tuple(map(tuple, points))).area
    assert area == pytest.approx(math.pi * rx * ry, rel=1e-12)
    assert points.mean(axis=0) == pytest.approx([50.0, 40.0])


def test_ellipse_polygon_turns_clockwise_on_the_screen():
    points = ellipse_polygon(0.0, 0.0, 10.0, 1.0, 90.0)  # the long axis along +y (down)
    assert np.ptp(points[:, 1]) > 19 and np.ptp(points[:, 0]) < 3


def test_clip_polygon_is_the_exact_intersection():
    square = np.array([[-5.0, -5.0], [5.0, -5.0], [5.0, 5.0], [-5.0, 5.0]])
    clipped = clip_polygon(square, 10, 10)
    assert Polygon(label="x", points=tuple(map(tuple, clipped))).area == pytest.approx(25.0)
    diamond = np.array([[0.0, -4.0], [4.0, 0.0], [0.0, 4.0], [-4.0, 0.0]])  # centred on a corner
    clipped = clip_polygon(diamond, 10, 10)
    assert Polygon(label="x", points=tuple(map(tuple, clipped))).area == pytest.approx(8.0)
    assert clip_polygon(square + 100, 10, 10).shape == (0, 2)
    assert np.array_equal(clip_polygon(square + 6, 20, 20), square + 6)


def test_clip_polyline_cuts_at_the_border_and_splits():
    line = np.array([[-5.0, 5.0], [5.0, 5.0], [15.0, 5.0], [15.0, 8.0], [5.0, 8.0]])
    pieces = clip_polyline(line, 10, 10)
    assert [p.tolist() for p in pieces] == [
        [[0.0, 5.0], [5.0, 5.0], [10.0, 5.0]],
        [[10.0, 8.0], [5.0, 8.0]],
    ]
    assert clip_polyline(line + 100, 10, 10) == []


def test_distance_to_a_circle():
    curve = ellipse_curve(20.0, 20.0, 10.0, 10.0, 0.0, spacing=0.05)
    distance = distance_to_points(curve, np.arange(40), np.arange(40), reach=3.0)
    yy, xx = np.mgrid[0:40, 0:40]
    exact = np.abs(np.hypot(xx + 0.5 - 20, yy + 0.5 - 20) - 10)
    near = exact < 2.9
    assert np.allclose(distance[near], exact[near], atol=0.01)  # 0.05-pixel sampling
    assert np.isinf(distance[exact > 3.1]).all()
