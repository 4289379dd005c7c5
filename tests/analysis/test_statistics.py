"""emdl.analysis: defect properties against exact values on hand-made arrays, against the analytic
truth on synthetic discs and ellipses, summaries and comparisons with truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2, ks_2samp, poisson

from emdl.analysis.statistics import (
    COMPARISON_COLUMNS,
    DEFECT_COLUMNS,
    SUMMARY_COLUMNS,
    Defect,
    bootstrap_mean_interval,
    box_defect,
    compare_image,
    compare_sets,
    instance_defects,
    mask_defects,
    poisson_interval,
    sphere_volume_nm3,
    summarize,
    swelling,
)
from emdl.analysis.truth import truth_defects
from emdl.annotations import Box, Ellipse, ImageAnnotation, Polygon, Polyline
from emdl.predict.instances import instances_from_boxes, instances_from_probabilities
from tests.conftest import disc, ellipse


def test_a_rectangle_of_pixels_exactly():
    labels = np.zeros((10, 12), np.int32)
    labels[2:4, 3:7] = 1  # 2 rows x 4 columns
    labels[5:9, 8:10] = 2  # 4 rows x 2 columns
    wide, tall = mask_defects(labels, ["bubble", "void"])
    # A run of n pixels has variance (n^2 - 1) / 12 along it; an axis is 4 standard deviations.
    assert wide == Defect(
        id=1,
        label="bubble",
        score=1.0,
        centroid_x=5.0,
        centroid_y=3.0,
        area=8.0,
        equivalent_diameter=math.sqrt(32 / math.pi),
        major_axis=pytest.approx(4 * math.sqrt(15 / 12)),
        minor_axis=pytest.approx(2.0),
        orientation=0.0,
        eccentricity=pytest.approx(math.sqrt(1 - 4 / 20)),
        touches_edge=False,
    )
    assert (tall.centroid_x, tall.centroid_y, tall.orientation) == (9.0, 7.0, 90.0)
    assert tall.label == "void" and tall.id == 2


def test_edge_flag_from_the_pixels_or_given():
    labels = np.zeros((8, 8), np.int32)
    labels[0:2, 3:5] = 1
    labels[3:5, 3:5] = 2
    labels[6:8, 6:8] = 3
    found = mask_defects(labels, ["a"] * 3)
    assert [d.touches_edge for d in found] == [True, False, True]
    given = mask_defects(labels, ["a"] * 3, np.array([0.5, 0.6, 0.7]), np.array([0, 1, 0], bool))
    assert [d.touches_edge for d in given] == [False, True, False]
    assert [d.score for d in given] == [0.5, 0.6, 0.7]


def test_a_box_as_the_module_documents():
    defect = box_defect((10, 20, 40, 30), "loop", id=3, score=0.8, touches_edge=True)
    assert defect == Defect(
        id=3,
        label="loop",
        score=0.8,
        centroid_x=25.0,
        centroid_y=25.0,
        area=300.0,
        equivalent_diameter=math.sqrt(1200 / math.pi),
        major_axis=30.0,
        minor_axis=10.0,
        orientation=0.0,
        eccentricity=math.sqrt(1 - 1 / 9),
        touches_edge=True,
    )
    assert box_defect((0, 0, 5, 8), "loop", id=1).orientation == 90.0
    assert box_defect((0, 0, 6, 6), "loop", id=1).eccentricity == 0.0


# Synthetic truth: (cx, cy, a, b, degrees clockwise) of discs and ellipses in a 200 x 240 image.
# Tolerances: centroids within 0.1 px, diameters and axes within 1.5 % (the pixel grid), the
# orientation of an ellipse with axis ratio 2 within 1 degree, eccentricity within 0.01.
SHAPE = (200, 240)
WHOLE = [
    (40.0, 40.0, 12.0, 12.0, 0.0),
    (110.3, 50.7, 20.0, 10.0, 30.0),
    (180.0, 60.0, 16.0, 8.0, -45.0),
    (60.0, 140.0, 8.0, 16.0, 0.0),  # taller than wide: major axis at 90 degrees
    (150.0, 150.0, 9.0, 9.0, 0.0),
]


@pytest.mark.parametrize(("cx", "cy", "a", "b", "degrees"), WHOLE)
def test_one_object_against_its_analytic_truth(cx, cy, a, b, degrees):
    labels = ellipse(SHAPE, cx, cy, a, b, degrees).astype(np.int32)
    (defect,) = mask_defects(labels, ["bubble"])
    major, minor = 2 * max(a, b), 2 * min(a, b)
    assert defect.centroid_x == pytest.approx(cx, abs=0.1)
    assert defect.centroid_y == pytest.approx(cy, abs=0.1)
    assert defect.area == pytest.approx(math.pi * a * b, rel=0.015)
    assert defect.equivalent_diameter == pytest.approx(2 * math.sqrt(a * b), rel=0.015)
    assert defect.major_axis == pytest.approx(major, rel=0.015)
    assert defect.minor_axis == pytest.approx(minor, rel=0.015)
    assert defect.eccentricity == pytest.approx(math.sqrt(1 - (minor / major) ** 2), abs=0.01)
    if a != b:
        expected = degrees if a > b else degrees + 90
        assert defect.orientation == pytest.approx(expected, abs=1.0)
    assert not defect.touches_edge


def synthetic_scene():
    """A mask of the WHOLE objects, two discs of radius 10 touching (centres 19 apart), and two
    discs cut by the image edge; returns (mask, the whole objects' true diameters)."""
    mask = np.zeros(SHAPE, bool)
    diameters = []
    for cx, cy, a, b, degrees in WHOLE:
        mask |= ellipse(SHAPE, cx, cy, a, b, degrees)
        diameters.append(2 * math.sqrt(a * b))
    mask |= disc(SHAPE, 100, 110, 10) | disc(SHAPE, 119, 110, 10)
    diameters += [20.0, 20.0]
    mask |= disc(SHAPE, 3, 100, 9) | disc(SHAPE, 230, 195, 14)
    return mask, diameters


def test_a_scene_of_touching_and_cut_objects_summarized():
    mask, diameters = synthetic_scene()
    probabilities = np.where(mask, 0.95, 0.02).astype(np.float32)[..., np.newaxis]
    instances = instances_from_probabilities(probabilities)
    defects = instance_defects(instances, ["bubble"])
    assert len(defects) == 9
    assert sum(d.touches_edge for d in defects) == 2
    assert [d.id for d in defects] == list(range(1, 10))
    row = summarize("scene.png", defects, SHAPE[1], SHAPE[0], pixel_size_nm=0.5)
    truth = np.array(diameters)
    assert row["count"] == 9 and row["touching_edge"] == 2
    # 9 defects in 240 x 200 pixels of 0.5 nm = 0.12 x 0.1 um.
    assert row["density_per_um2"] == pytest.approx(9 / 0.012)
    assert row["areal_fraction"] == mask.sum() / mask.size
    assert row["mean_diameter"] == pytest.approx(truth.mean(), rel=0.01)
    assert row["median_diameter"] == pytest.approx(np.median(truth), rel=0.01)
    assert row["std_diameter"] == pytest.approx(truth.std(ddof=1), rel=0.05)
    assert row["mean_diameter_nm"] == pytest.approx(row["mean_diameter"] * 0.5)
    # The touching discs each come out at their own size (the watershed cuts at the neck).
    split = sorted(
        (d for d in defects if 100 <= d.centroid_y <= 120 and 90 <= d.centroid_x <= 130),
        key=lambda d: d.centroid_x,
    )
    assert [round(d.centroid_x) for d in split] == [100, 119]
    for d in split:
        assert d.equivalent_diameter == pytest.approx(20.0, abs=0.6)


def test_defect_rows_with_and_without_a_pixel_size():
    defect = box_defect((0, 0, 4, 2), "loop", id=1)
    row = defect.row("a.png", 2.0)
    assert list(row) == list(DEFECT_COLUMNS)
    assert (row["area_nm2"], row["major_axis_nm"], row["centroid_x_nm"]) == (32.0, 8.0, 4.0)
    blank = defect.row("a.png", None)
    assert blank["area_nm2"] == blank["equivalent_diameter_nm"] == ""
    assert blank["area"] == 8.0


def test_summary_without_pixel_size_or_defects():
    row = summarize("empty.png", [], 100, 50)
    assert row["count"] == 0 and row["areal_fraction"] == 0.0
    assert row["density_per_um2"] == row["mean_diameter"] == row["std_diameter"] == ""
    cut_only = [box_defect((0, 0, 4, 4), "loop", id=1, touches_edge=True)]
    row = summarize("cut.png", cut_only, 100, 50)
    assert (row["count"], row["touching_edge"], row["mean_diameter"]) == (1, 1, "")


def sized(*diameters, edge=False):
    """Defects (boxes) whose equivalent diameters are ``diameters``."""
    sides = [d * math.sqrt(math.pi) / 2 for d in diameters]
    return [box_defect((0, 0, s, s), "a", id=i + 1, touches_edge=edge) for i, s in enumerate(sides)]


def test_comparison_with_truth_exactly():
    predicted = sized(10, 12, 14) + sized(30, edge=True)
    truth = sized(12, 14, 16)
    row = compare_image("a.png", predicted, truth)
    assert row["count_predicted"] == 4 and row["count_truth"] == 3 and row["count_error"] == 1
    assert row["mean_diameter_predicted"] == pytest.approx(12.0)
    assert row["mean_diameter_truth"] == pytest.approx(14.0)
    assert row["mean_diameter_error"] == pytest.approx(-2.0)
    # Empirical CDFs of {10, 12, 14} and {12, 14, 16} differ by at most 1/3.
    assert row["ks_statistic"] == pytest.approx(1 / 3)
    pooled = compare_sets(predicted + sized(20), truth + sized(20))
    assert pooled["image"] == "all" and pooled["count_error"] == 1
    expected = ks_2samp([10, 12, 14, 20], [12, 14, 16, 20])
    assert pooled["ks_statistic"] == pytest.approx(expected.statistic)
    assert pooled["ks_pvalue"] == pytest.approx(expected.pvalue)
    nothing = compare_image("b.png", [], truth)
    assert nothing["count_error"] == -3 and nothing["ks_statistic"] == ""


def test_truth_measured_like_predictions():
    image = ImageAnnotation(
        "a.png",
        120,
        100,
        [
            Ellipse(label="bubble", cx=40.0, cy=50.0, rx=12.0, ry=6.0, rotation=30.0),
            Box(label="loop", xtl=0.0, ytl=10.0, xbr=20.0, ybr=30.0),
            Polyline(label="line", points=((1.0, 1.0), (50.0, 50.0))),
            Polygon(
                label="bubble", points=((80.0, 80.0), (90.0, 80.0), (90.0, 90.0), (80.0, 90.0))
            ),
        ],
    )
    ellipse_, box, square = truth_defects(image)
    assert [d.id for d in (ellipse_, box, square)] == [1, 2, 3]
    assert ellipse_.equivalent_diameter == pytest.approx(2 * math.sqrt(72), rel=0.02)
    assert ellipse_.orientation == pytest.approx(30.0, abs=1.5)
    assert box == box_defect((0, 10, 20, 30), "loop", id=2, touches_edge=True)
    assert (square.area, square.centroid_x, square.centroid_y) == (100.0, 85.0, 85.0)
    as_boxes = truth_defects(image, as_boxes=True)
    assert as_boxes[0].area == pytest.approx(
        (2 * math.hypot(12 * math.cos(math.radians(30)), 6 * math.sin(math.radians(30))))
        * (2 * math.hypot(12 * math.sin(math.radians(30)), 6 * math.cos(math.radians(30))))
    )


def test_detector_boxes_become_defects_in_order():
    instances = instances_from_boxes([[0, 0, 10, 4], [20, 20, 30, 40]], [1, 0], [0.9, 0.6], 64, 64)
    first, second = instance_defects(instances, ["bubble", "loop"])
    scores = np.float32([0.9, 0.6])  # as the detector gives them
    assert first == box_defect((0, 0, 10, 4), "loop", id=1, score=scores[0], touches_edge=True)
    assert second == box_defect((20, 20, 30, 40), "bubble", id=2, score=scores[1])


def test_volume_density_and_swelling_by_hand():
    # 100 x 50 pixels of 2 nm: 200 x 100 nm = 2e4 nm^2; 50 nm thick: 1e6 nm^3 = 1e-21 m^3.
    defects = sized(5, 5, 10) + sized(4, edge=True)  # 10, 10, 20 nm whole, 8 nm cut
    row = summarize("a.png", defects, 100, 50, pixel_size_nm=2.0, thickness_nm=50.0)
    assert list(row) == list(SUMMARY_COLUMNS)
    assert (row["pixel_size_nm"], row["thickness_nm"], row["count"]) == (2.0, 50.0, 4)
    assert row["density_per_um2"] == pytest.approx(4 / 0.02, rel=1e-12)
    assert row["density_per_m3"] == pytest.approx(4e21, rel=1e-12)
    # Spheres of every defect's equivalent diameter, the cut one's too: 1000 + 1000 + 8000 + 512.
    volume = math.pi / 6 * 10512
    assert sphere_volume_nm3(defects, 2.0) == pytest.approx(volume, rel=1e-12)
    assert row["swelling"] == pytest.approx(volume / (1e6 - volume), rel=1e-12)
    assert row["swelling"] == pytest.approx(0.005535, abs=1e-6)
    # The density intervals are the exact Poisson interval of the count 4 over area and volume.
    low, high = chi2.ppf(0.025, 8) / 2, chi2.ppf(0.975, 10) / 2
    assert row["density_ci_low_per_um2"] == pytest.approx(low / 0.02, rel=1e-12)
    assert row["density_ci_high_per_um2"] == pytest.approx(high / 0.02, rel=1e-12)
    assert row["density_ci_low_per_m3"] == pytest.approx(low * 1e21, rel=1e-12)
    assert row["density_ci_high_per_m3"] == pytest.approx(high * 1e21, rel=1e-12)


def test_volume_columns_need_the_thickness_and_the_pixel_size():
    defects = sized(5, 10)
    no_thickness = summarize("a.png", defects, 100, 50, pixel_size_nm=2.0)
    assert no_thickness["thickness_nm"] == ""
    assert no_thickness["density_per_um2"] == pytest.approx(100.0)
    assert no_thickness["density_per_m3"] == no_thickness["swelling"] == ""
    assert no_thickness["density_ci_low_per_m3"] == no_thickness["density_ci_high_per_m3"] == ""
    no_pixel_size = summarize("a.png", defects, 100, 50, thickness_nm=50.0)
    assert no_pixel_size["thickness_nm"] == 50.0
    for name in ("density_per_um2", "density_ci_low_per_um2", "density_per_m3", "swelling"):
        assert no_pixel_size[name] == "", name
    # A 20 nm sphere in 20 x 20 x 1 nm of foil: the matrix volume would be negative.
    assert summarize("b.png", sized(10), 10, 10, 2.0, 1.0)["swelling"] == ""
    assert swelling(500.0, 400.0) == swelling(400.0, 400.0) == ""
    assert swelling(100.0, 400.0) == 100 / 300


def test_exact_poisson_interval():
    assert poisson_interval(0) == (0.0, pytest.approx(-math.log(0.025)))  # 3.689
    low, high = poisson_interval(10)
    assert (low, high) == (pytest.approx(4.7954, abs=1e-4), pytest.approx(18.3904, abs=1e-4))
    for count in (1, 4, 10, 137):
        low, high = poisson_interval(count)
        assert low == pytest.approx(chi2.ppf(0.025, 2 * count) / 2, rel=1e-12)
        assert high == pytest.approx(chi2.ppf(0.975, 2 * count + 2) / 2, rel=1e-12)
        # The ends are the means under which the count or more / or fewer has probability 2.5 %.
        assert poisson.sf(count - 1, low) == pytest.approx(0.025, rel=1e-9)
        assert poisson.cdf(count, high) == pytest.approx(0.025, rel=1e-9)
        assert low < count < high
    with pytest.raises(ValueError, match="a count must be >= 0"):
        poisson_interval(-1)


def test_bootstrap_interval_of_the_mean():
    values = np.random.default_rng(7).normal(20.0, 4.0, 400)
    first = bootstrap_mean_interval(values)
    assert bootstrap_mean_interval(values) == first  # the same every time
    assert bootstrap_mean_interval(values, seed=1) != first
    low, high = first
    assert low < values.mean() < high
    # About the normal interval, mean +- 1.96 standard errors.
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
    assert low == pytest.approx(values.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(values.mean() + half, abs=0.1 * half)
    # Resamples of {a, b} have means a, (a + b) / 2, b with probabilities 1/4, 1/2, 1/4.
    assert bootstrap_mean_interval([3.0, 7.0]) == (3.0, 7.0)
    assert bootstrap_mean_interval([5.0] * 9) == (5.0, 5.0)
    assert bootstrap_mean_interval([2.0], resamples=10) == (2.0, 2.0)
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_mean_interval([])


def test_summary_intervals_of_the_mean_diameter():
    defects = sized(10, 12, 14, 20, 9) + sized(40, edge=True)  # the cut one is left out
    row = summarize("a.png", defects, 100, 50, pixel_size_nm=0.5)
    assert (row["mean_diameter_ci_low"], row["mean_diameter_ci_high"]) == bootstrap_mean_interval(
        [d.equivalent_diameter for d in defects[:5]]
    )
    assert row["mean_diameter_ci_low"] < row["mean_diameter"] < row["mean_diameter_ci_high"]
    assert row["mean_diameter_ci_low"] >= 9 - 1e-9 and row["mean_diameter_ci_high"] <= 20 + 1e-9
    assert row["mean_diameter_ci_low_nm"] == row["mean_diameter_ci_low"] * 0.5
    assert row["mean_diameter_ci_high_nm"] == row["mean_diameter_ci_high"] * 0.5
    assert summarize("a.png", defects, 100, 50) == {
        **row,
        "pixel_size_nm": "",
        **{name: "" for name in row if name.endswith(("_nm", "_um2", "_m3"))},
    }
    one = summarize("b.png", sized(10), 100, 50, pixel_size_nm=0.5)
    assert one["mean_diameter"] == pytest.approx(10.0)
    assert one["mean_diameter_ci_low"] == one["mean_diameter_ci_high_nm"] == ""


def test_comparison_in_nm_and_ks_pvalue_per_image():
    predicted = sized(10, 12, 14) + sized(30, edge=True)
    truth = sized(12, 14, 16)
    row = compare_image("a.png", predicted, truth, pixel_size_nm=0.5)
    assert list(row) == list(COMPARISON_COLUMNS)
    assert row["mean_diameter_predicted_nm"] == pytest.approx(6.0)
    assert row["mean_diameter_truth_nm"] == pytest.approx(7.0)
    assert row["mean_diameter_error_nm"] == pytest.approx(-1.0)
    assert row["ks_pvalue"] == pytest.approx(ks_2samp([10, 12, 14], [12, 14, 16]).pvalue)
    blank = compare_image("a.png", predicted, truth)
    assert blank["mean_diameter_error_nm"] == blank["mean_diameter_truth_nm"] == ""
    assert {k: v for k, v in blank.items() if not k.endswith("_nm")} == {
        k: v for k, v in row.items() if not k.endswith("_nm")
    }
    assert compare_image("b.png", [], truth, 0.5)["ks_pvalue"] == ""


def test_pooled_comparison_over_images_of_different_pixel_sizes():
    # Image 1 (1 nm pixels): predicted 10, true 12 px; image 2 (2 nm): predicted 10, true 9 px.
    predicted = sized(10) + sized(10) + sized(50, edge=True)
    truth = sized(12) + sized(9)
    sizes = ([1.0, 2.0, 2.0], [1.0, 2.0])
    row = compare_sets(predicted, truth, sizes)
    assert row["mean_diameter_error"] == pytest.approx(-0.5)  # 10 - 10.5 px
    assert row["mean_diameter_predicted_nm"] == pytest.approx(15.0)  # (10 + 20) / 2
    assert row["mean_diameter_truth_nm"] == pytest.approx(15.0)  # (12 + 18) / 2
    assert row["mean_diameter_error_nm"] == pytest.approx(0.0, abs=1e-12)
    # Pooled over pixel sizes, the test compares nm: {10, 20} against {12, 18}.
    expected = ks_2samp([10, 20], [12, 18])
    assert (row["ks_statistic"], row["ks_pvalue"]) == (
        pytest.approx(expected.statistic),
        pytest.approx(expected.pvalue),
    )
    unknown = compare_sets(predicted, truth, ([1.0, None, None], [1.0, None]))
    assert unknown["mean_diameter_error_nm"] == ""
    assert unknown["ks_statistic"] == pytest.approx(ks_2samp([10, 10], [12, 9]).statistic)
    one = compare_sets(predicted, truth, 2.0)
    assert one["mean_diameter_error_nm"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="2 pixel sizes for 3 defects"):
        compare_sets(predicted, truth, ([1.0, 2.0], [1.0, 2.0]))
