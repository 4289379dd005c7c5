"""Scenes: seeded, labels that rasterize exactly onto the generated objects, clipped."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from emdl.annotations import Polygon, Polyline
from emdl.rasterize import shape_mask
from emdl.synth import Foil, make_scene, preset
from emdl.synth.objects import Cavity, Line, Loop
from emdl.synth.presets import KINDS
from emdl.synth.scene import clipped_shapes

SIZE = 192


def cavities_only(pixel: float = 0.5):
    settings = preset("bubbles", pixel_size_nm=pixel)
    return dataclasses.replace(settings, foil=Foil(bend_contrast=0.0))


def test_same_seed_same_image_and_labels():
    settings = preset("mixed")
    a = make_scene(settings, SIZE, SIZE, np.random.default_rng(7))
    b = make_scene(settings, SIZE, SIZE, np.random.default_rng(7))
    c = make_scene(settings, SIZE, SIZE, np.random.default_rng(8))
    assert np.array_equal(a.image, b.image) and a.annotation == b.annotation
    assert not np.array_equal(a.image, c.image)


def test_labels_rasterize_onto_the_cavities():
    p = 0.5
    scene = make_scene(cavities_only(p), SIZE, SIZE, np.random.default_rng(5))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    whole = 0
    for cavity, shape in zip(scene.defects, [d.shapes(p)[0] for d in scene.defects], strict=True):
        x, y, r = cavity.x_nm / p, cavity.y_nm / p, cavity.radius_nm / p
        if not (r < x < SIZE - r and r < y < SIZE - r):
            continue
        whole += 1
        assert shape.area == pytest.approx(math.pi * r * r, rel=1e-12)
        label = shape_mask(shape, SIZE, SIZE)
        disc = (xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 < r * r  # the sphere's projection
        assert (label ^ disc).sum() <= 3
        assert abs(label.sum() - math.pi * r * r) <= 0.02 * math.pi * r * r
    assert whole >= 5
    # All labels together against the pixels whose phase the cavities lowered.
    union = np.zeros((SIZE, SIZE), bool)
    for shape in scene.annotation.shapes:
        union |= shape_mask(shape, SIZE, SIZE)
    assert (union ^ (scene.phase < 0)).sum() <= 0.002 * union.sum()


def test_labels_are_clipped_to_the_image():
    scene = make_scene(preset("mixed"), SIZE, SIZE, np.random.default_rng(3))
    cut = 0
    for shape in scene.annotation.shapes:
        xy = np.asarray(shape.points)
        assert xy.min() >= 0 and xy[:, 0].max() <= SIZE and xy[:, 1].max() <= SIZE
        cut += int(xy.min() == 0 or xy.max() == SIZE)
    assert cut > 0
    # A cavity centred on the corner keeps the quarter of its disc inside.
    (quarter,) = clipped_shapes(Cavity(0.0, 0.0, 10.0, 10.0).shapes(0.5), SIZE, SIZE)
    assert quarter.area == pytest.approx(math.pi * 400 / 4, rel=1e-3)


def test_loops_dots_and_lines_are_dark_where_labeled():
    for kind, cls in (("loops", Loop), ("lines", Line)):
        settings = preset(kind)
        scene = make_scene(settings, SIZE, SIZE, np.random.default_rng(4))
        defects = [d for d in scene.defects if isinstance(d, cls)]
        assert defects
        covered = np.zeros((SIZE, SIZE), bool)
        for shape in scene.annotation.shapes:
            assert isinstance(shape, Polygon if kind == "loops" else Polyline)
            covered |= shape_mask(shape, SIZE, SIZE, line_width=3)
        # The defects' own attenuation: above the smooth background where labeled.
        excess = scene.attenuation - np.median(scene.attenuation)
        assert excess[covered].mean() > 5 * excess[~covered].mean()


def test_an_edge_on_loop_is_labeled_as_a_thin_ellipse():
    loop = Loop(50.0, 50.0, 20.0, 10.0, tilt_deg=90.0, azimuth_deg=30.0, width_nm=0.8)
    (shape,) = loop.shapes(0.5)
    assert shape.area == pytest.approx(math.pi * 20 * 1.6, rel=1e-12)


def test_every_kind_makes_labeled_images():
    for kind in KINDS:
        settings = preset(kind)
        scene = make_scene(settings, 128, 128, np.random.default_rng(0))
        assert scene.image.shape == (128, 128) and scene.image.dtype == np.uint8
        assert {s.label for s in scene.annotation.shapes} <= set(settings.label_names)
    with pytest.raises(ValueError, match="kind must be one of"):
        preset("craters")
