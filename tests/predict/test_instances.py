"""emdl.predict.instances: objects from probability maps (touching ones split, edge flagged) and
from detector boxes, on synthetic discs and ellipses whose pixels are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from emdl.predict.instances import (
    foreground_probability,
    instances_from_borders,
    instances_from_boxes,
    instances_from_distance,
    instances_from_probabilities,
    split_touching,
)
from tests.conftest import disc, ellipse

SHAPE = (100, 120)


def probabilities_of(mask, value=0.9):
    return np.where(mask, value, 0.1).astype(np.float32)[..., np.newaxis]


def test_touching_discs_are_split_and_the_edge_is_flagged():
    left, right = disc(SHAPE, 30, 30, 10), disc(SHAPE, 48, 30, 10)  # centres 18 apart: touching
    alone = disc(SHAPE, 85, 60, 12)
    cut = disc(SHAPE, 4, 90, 8)  # cut by the left edge
    mask = left | right | alone | cut
    found = instances_from_probabilities(probabilities_of(mask))
    assert len(found) == 4
    labels = found.labels
    assert labels.dtype == np.int32 and labels.shape == SHAPE
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4}
    assert np.array_equal(labels > 0, mask)
    # Objects that touch nothing keep exactly their pixels.
    assert len(np.unique(labels[alone])) == 1 and (labels == labels[alone][0]).sum() == alone.sum()
    assert (labels == labels[cut][0]).sum() == cut.sum()
    # The two touching discs are split down the middle: equal halves of their union.
    a, b = labels[30, 30], labels[30, 48]
    assert a != b
    assert (labels == a).sum() == (labels == b).sum() == (left | right).sum() // 2
    assert found.touches_edge.tolist() == [labels[cut][0] == i for i in range(1, 5)]
    np.testing.assert_allclose(found.scores, 0.9, rtol=1e-6)
    assert found.classes.tolist() == [0, 0, 0, 0]
    i = labels[alone][0] - 1
    rows, cols = np.nonzero(alone)
    assert found.boxes[i].tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


@pytest.mark.parametrize(("distance", "objects"), [(19, 2), (12, 2), (4, 1), (0, 1)])
def test_discs_split_only_where_the_neck_is_deep_enough(distance, objects):
    # Radius 10: the default split depth is 1, and the neck's dip is 10 - sqrt(100 - d^2 / 4):
    # 6.9 at d = 19, 2 at d = 12, 0.2 at d = 4 (a pixel grid moves these by about half a pixel).
    mask = disc(SHAPE, 40, 50, 10) | disc(SHAPE, 40 + distance, 50, 10)
    assert split_touching(mask).max() == objects


@pytest.mark.parametrize("degrees", [0, 30, 90, -60])
def test_a_long_ellipse_stays_one_object(degrees):
    mask = ellipse(SHAPE, 60, 50, 35, 6, degrees)
    assert split_touching(mask).max() == 1


def test_a_thin_line_is_kept_whole_without_a_marker():
    mask = np.zeros((20, 20), bool)
    mask[5, 2:18] = True  # distance peak 1, below the split depth of 2
    labels = split_touching(mask, split_depth=2)
    assert labels.max() == 1 and np.array_equal(labels > 0, mask)


def test_min_area_drops_small_objects_and_renumbers():
    mask = disc(SHAPE, 20, 20, 3) | disc(SHAPE, 60, 50, 10) | disc(SHAPE, 100, 20, 2)
    areas = [disc(SHAPE, 20, 20, 3).sum(), disc(SHAPE, 100, 20, 2).sum()]
    assert areas == [32, 12]
    found = instances_from_probabilities(probabilities_of(mask), min_area=13)
    assert len(found) == 2 and found.labels.max() == 2
    assert sorted(np.bincount(found.labels.ravel())[1:].tolist()) == [32, 316]


def test_threshold_and_mean_probability_score():
    probabilities = np.zeros((20, 20, 1), np.float32)
    probabilities[2:6, 2:6, 0] = 0.6
    probabilities[2:6, 4:6, 0] = 0.8
    probabilities[10:14, 10:14, 0] = 0.4
    found = instances_from_probabilities(probabilities, threshold=0.5)
    assert len(found) == 1
    assert found.scores.tolist() == [pytest.approx(0.7)]
    assert len(instances_from_probabilities(probabilities, threshold=0.3)) == 2


def test_softmax_classes_by_mean_probability():
    probabilities = np.zeros((20, 30, 3), np.float32)
    probabilities[..., 0] = 1
    probabilities[2:8, 2:8] = (0.1, 0.2, 0.7)  # class index 1 (the second foreground class)
    probabilities[10:16, 20:26] = (0.2, 0.5, 0.3)  # class index 0
    np.testing.assert_allclose(foreground_probability(probabilities)[3, 3], 0.9)
    found = instances_from_probabilities(probabilities)
    assert found.classes.tolist() == [1, 0]
    np.testing.assert_allclose(found.scores, [0.9, 0.8], rtol=1e-6)


def test_nothing_found():
    found = instances_from_probabilities(np.zeros((16, 16, 1), np.float32))
    assert len(found) == 0 and found.boxes.shape == (0, 4) and found.touches_edge.shape == (0,)


def test_boxes_are_instances_with_edge_flags():
    boxes = [[0, 10, 20, 30], [10, 10, 20, 20], [50, 50, 64, 60], [30, 30, 31, 31], [5, 5, 9, 9]]
    found = instances_from_boxes(
        boxes, [0, 1, 0, 0, 1], [0.9, 0.8, 0.7, 0.95, 0.2], 60, 64, score_threshold=0.5, min_area=2
    )
    assert found.labels is None and (found.height, found.width) == (60, 64)
    assert found.boxes.tolist() == boxes[:3]
    assert found.classes.tolist() == [0, 1, 0]
    assert found.touches_edge.tolist() == [True, False, True]
    inside = instances_from_boxes([[1, 1, 63, 59]], [0], [1.0], 60, 64)
    assert inside.touches_edge.tolist() == [False]


def test_bad_settings():
    with pytest.raises(ValueError, match="threshold"):
        instances_from_probabilities(np.zeros((8, 8, 1), np.float32), threshold=1.5)
    with pytest.raises(ValueError, match="min_area"):
        instances_from_probabilities(np.zeros((8, 8, 1), np.float32), min_area=-1)
    with pytest.raises(ValueError, match="differ in length"):
        instances_from_boxes([[0, 0, 1, 1]], [0, 1], [1.0], 8, 8)


def border_probabilities(objects, border_width=2):
    """Softmax (H, W, 3) of a perfect instance-aware U-Net: background, object, border."""
    from emdl.labels.semantic import touching_borders

    labels = np.zeros(SHAPE, np.int32)
    for index, mask in enumerate(objects, start=1):
        labels[mask] = index
    border = touching_borders(labels, border_width)
    probabilities = np.zeros((*SHAPE, 3), np.float32)
    probabilities[..., 0] = labels == 0
    probabilities[..., 1] = (labels > 0) & ~border
    probabilities[..., 2] = border
    return 0.05 + 0.85 * probabilities, labels


def test_borders_part_touching_discs_exactly():
    # Three discs in a row, each overlapping the next: the distance-transform watershed needs
    # necks; the border class parts them wherever they meet, each with its whole outline.
    discs = [disc(SHAPE, 25, 40, 12), disc(SHAPE, 45, 40, 12), disc(SHAPE, 65, 40, 12)]
    objects = [discs[0], discs[1] & ~discs[0], discs[2] & ~discs[1]]
    probabilities, labels = border_probabilities(objects)
    found = instances_from_borders(probabilities, threshold=0.5)
    assert len(found) == 3
    assert np.array_equal(found.labels > 0, labels > 0)  # every object pixel kept
    for index in range(1, 4):
        # Parted midway across the border band: exact where the discs meet head-on, a few
        # pixels off where the band curves round the contact's ends.
        wrong = ((found.labels == index) != (labels == index)).sum()
        assert wrong <= 0.015 * (labels == index).sum(), (index, wrong)
    assert found.classes.tolist() == [0, 0, 0]
    assert np.allclose(found.scores, 0.95)


def test_borders_need_the_border_channel():
    with pytest.raises(ValueError, match="classes \\+ 2"):
        instances_from_borders(np.zeros((*SHAPE, 2), np.float32))


def distance_outputs(objects):
    """(H, W, 2) of a perfect distance U-Net: the foreground probability, then each object's
    normalized distance to its own outline (the maximum where objects overlap)."""
    from scipy import ndimage as ndi

    distance = np.zeros(SHAPE)
    for mask in objects:
        own = ndi.distance_transform_edt(mask)
        distance = np.maximum(distance, own / own.max())
    union = np.any(objects, axis=0)
    return np.stack([np.where(union, 0.9, 0.1), distance], axis=-1).astype(np.float32)


def test_distance_peaks_part_overlapping_discs_that_the_union_cannot():
    # Radius 14, centres 8 apart: the union's neck dips 0.6 px, below the default split depth
    # (1 px), so the distance-transform watershed sees one object; each disc's own normalized
    # distance dips between the centres by about 8 / 2 / 14 = 0.29, above the peak depth 0.15.
    first, second = disc(SHAPE, 40, 50, 14), disc(SHAPE, 48, 50, 14)
    alone = disc(SHAPE, 95, 50, 9)
    outputs = distance_outputs([first, second, alone])
    assert split_touching(first | second).max() == 1
    found = instances_from_distance(outputs, threshold=0.5)
    assert len(found) == 3
    union = first | second | alone
    assert np.array_equal(found.labels > 0, union)  # every foreground pixel kept
    a, b = found.labels[50, 40], found.labels[50, 48]
    assert a != b and 0 not in (a, b)
    # The two overlapping discs share their union's pixels equally (mirror images of each other).
    assert (found.labels == a).sum() == (found.labels == b).sum() == (first | second).sum() // 2
    assert (found.labels == found.labels[50, 95]).sum() == alone.sum()
    np.testing.assert_allclose(found.scores, 0.9, rtol=1e-6)
    # A peak depth deeper than the dip leaves the pair one object.
    assert len(instances_from_distance(outputs, threshold=0.5, peak_depth=0.4)) == 2


def test_distance_settings_and_shapes():
    with pytest.raises(ValueError, match="channels \\+ 1"):
        instances_from_distance(np.zeros((*SHAPE, 1), np.float32))
    with pytest.raises(ValueError, match="peak_depth must be in"):
        instances_from_distance(np.zeros((*SHAPE, 2), np.float32), peak_depth=1.5)
    assert len(instances_from_distance(np.zeros((*SHAPE, 2), np.float32))) == 0


def test_on_the_lectures_labeled_bubbles_distance_peaks_find_each_overlapping_bubble(data_dir):
    # Image 1's 37 labeled bubbles overlap into 21 connected blobs. A perfect distance U-Net
    # (its map the labels' own, object_distance) gives back all 37; the union's distance
    # transform at the default split depth only 28: the necks between overlapping bubbles are
    # shallower than the rule's depth.
    from emdl.io.cvat import read_cvat
    from emdl.labels import object_distance, semantic_mask

    (annotation,) = read_cvat(data_dir / "bubbles" / "DL_for_Microscopy_Train_Lab_1.xml").images
    union = semantic_mask(annotation, ["bubble"]) > 0
    outputs = np.stack([np.where(union, 0.9, 0.1), object_distance(annotation)], -1)
    assert len(instances_from_distance(outputs.astype(np.float32))) == 37
    assert split_touching(union).max() == 28
