"""emdl.metrics.instances: mask AP, union IoU and their bookkeeping against hand-worked numbers.

pycocotools divides by ``tp + fp + eps``, so an AP of 1 comes out as 1 - 1e-16: compare with
``pytest.approx``. The AP hand work follows tests/metrics/test_detection.py: precision made
non-increasing, read at the 101 recall points 0.00, 0.01, ..., 1.00.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from emdl.annotations import Box, ImageAnnotation
from emdl.labels import instance_targets as truth_instances
from emdl.labels import semantic_mask
from emdl.metrics.instances import score_instances, union_mask
from emdl.predict.instances import Instances

SHAPE = (40, 40)


def square(r0: int, c0: int, r1: int, c1: int, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[r0:r1, c0:c1] = True
    return mask


def box_of(mask: np.ndarray) -> list[float]:
    rows, cols = np.nonzero(mask)
    return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


def predicted(masks, scores, classes=None, shape=SHAPE) -> Instances:
    """Instances painted in order (a later mask covers an earlier one), boxes around the masks."""
    labels = np.zeros(shape, np.int32)
    for number, mask in enumerate(masks, start=1):
        labels[mask] = number
    boxes = np.array([box_of(mask) for mask in masks], np.float32).reshape(-1, 4)
    classes = [0] * len(masks) if classes is None else classes
    return Instances(
        labels,
        boxes,
        np.array(classes, np.int32),
        np.array(scores, np.float32),
        np.zeros(len(masks), bool),
        *shape,
    )


def truth(masks, classes=None, shape=SHAPE) -> dict:
    masks = np.array(masks, np.uint8).reshape(-1, *shape)
    return {
        "boxes": np.array([box_of(mask) for mask in masks], np.float32).reshape(-1, 4),
        "classes": np.array([0] * len(masks) if classes is None else classes, np.int32),
        "masks": masks,
    }


A = square(0, 0, 10, 10)  # 100 pixels
B = square(20, 20, 30, 30)  # 100 pixels
INSIDE_B = square(21, 21, 29, 29)  # 64 pixels inside B: IoU 64 / 100, masks and boxes alike
STRAY = square(0, 30, 5, 35)  # 25 pixels, far from any truth


def test_union_mask_keeps_scores_strictly_above_the_threshold():
    found = predicted([A, B, STRAY], [0.9, 0.7, 0.8], classes=[1, 0, 2])
    union = union_mask(found)  # 0.7 by default: B (score 0.7) is dropped
    assert union.dtype == np.uint8 and union.shape == SHAPE
    expected = np.zeros(SHAPE, np.uint8)
    expected[A], expected[STRAY] = 2, 3
    np.testing.assert_array_equal(union, expected)
    expected[B] = 1
    np.testing.assert_array_equal(union_mask(found, 0.5), expected)
    assert not union_mask(found, 0.9).any()
    assert not union_mask(predicted([], [])).any()
    with pytest.raises(ValueError, match="labels is None"):
        union_mask(Instances(None, np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros(0), 4, 4))


def test_hand_worked_mask_ap_and_union():
    # Truth A and B; found A exactly (0.9), INSIDE_B (0.8, IoU 0.64), STRAY (0.3).
    # IoU thresholds 0.50, 0.55, 0.60: TP, TP, FP -> recall 1 at precision 1 -> AP 1.
    # Thresholds 0.65 ... 0.95 (7): TP, FP, FP -> recall 1/2 at precision 1, never more: the
    # points 0.00..0.50 (51) read 1, the rest 0 -> AP 51/101. Mean (3 + 7 * 51/101) / 10 = 66/101.
    found = predicted([A, INSIDE_B, STRAY], [0.9, 0.8, 0.3])
    result = score_instances([("a", found, truth([A, B]))], ["loop"])
    json.dumps(result)  # plain Python numbers only
    assert result["mask_ap50"] == pytest.approx(1)
    assert result["mask_ap50_95"] == pytest.approx(66 / 101)
    # The masks are their boxes: the box AP is the same. Box F1 2/3, 1, 4/5 -> threshold 0.8.
    assert result["ap50"] == pytest.approx(1) and result["ap50_95"] == pytest.approx(66 / 101)
    assert result["score_threshold"] == pytest.approx(0.8)
    assert (result["precision50"], result["recall50"], result["f1_50"]) == (1.0, 1.0, 1.0)
    assert (result["count_error"], result["count_bias"]) == (0.0, 0.0)
    # Above 0.7: A and INSIDE_B, 164 pixels, all inside the 200 of the truth.
    assert result["iou"] == 164 / 200 and result["iou_loop"] == 164 / 200
    assert result["dice"] == pytest.approx(2 * 164 / (164 + 200))
    assert result["pixel_accuracy"] == (1600 - 36) / 1600
    assert result["mask_score_threshold"] == 0.7
    assert (result["instances"], result["detections"], result["objects"]) == (3, 3, 2)
    assert result["images"] == [{"name": "a", "true": 2, "detected": 2, "iou": 164 / 200}]


def test_the_score_threshold_moves_only_the_union_and_the_detected_count():
    found = predicted([A, INSIDE_B, STRAY], [0.9, 0.8, 0.3])
    every = score_instances([("a", found, truth([A, B]))], ["loop"], score_threshold=0.2)
    assert every["iou"] == pytest.approx(164 / 225)  # STRAY's 25 pixels join the union
    assert every["images"][0]["detected"] == 3
    # 0.8 itself is not above 0.8: INSIDE_B drops, A alone covers 100 of 200.
    strict = score_instances([("a", found, truth([A, B]))], ["loop"], score_threshold=0.8)
    assert strict["iou"] == 0.5 and strict["images"][0]["detected"] == 1
    for result in every, strict:
        assert result["mask_ap50_95"] == pytest.approx(66 / 101)
        assert result["score_threshold"] == pytest.approx(0.8)


def test_a_score_of_exactly_the_threshold_is_left_out():
    found = predicted([A, STRAY], [0.9, 0.7])
    result = score_instances([("a", found, truth([A]))], ["loop"])
    assert result["iou"] == 1.0 and result["images"][0]["detected"] == 1


def test_mask_ap_scores_the_masks_not_the_boxes():
    # A one-pixel ring around A's edge: 36 pixels, its box A's box. Box IoU 1, mask IoU 0.36.
    ring = A & ~square(1, 1, 9, 9)
    result = score_instances([("a", predicted([ring], [0.9]), truth([A]))], ["loop"])
    assert (result["mask_ap50"], result["mask_ap50_95"]) == (0.0, 0.0)
    assert result["ap50"] == pytest.approx(1) and result["ap50_95"] == pytest.approx(1)
    assert result["iou"] == 0.36


def test_mask_ap_equals_box_ap_when_the_masks_fill_their_boxes():
    # Two 100 x 100 images of 20 x 20 cells, each with a truth rectangle and/or a prediction
    # jittered in it, of two classes; cells keep the predictions apart, so each fills its box.
    rng = np.random.default_rng(7)
    shape = (100, 100)
    images = []
    for name in "ab":
        found, scores, found_classes, true, true_classes = [], [], [], [], []
        for top in range(0, 100, 20):
            for left in range(0, 100, 20):
                r0, c0 = top + rng.integers(2, 5), left + rng.integers(2, 5)
                r1, c1 = r0 + rng.integers(6, 14), c0 + rng.integers(6, 14)
                label = int(rng.integers(0, 2))
                if rng.random() < 0.8:
                    true.append(square(r0, c0, r1, c1, shape))
                    true_classes.append(label)
                if rng.random() < 0.8:
                    dr, dc = rng.integers(-2, 3, size=2)
                    found.append(square(r0 + dr, c0 + dc, r1 + dr, c1 + dc, shape))
                    scores.append(rng.random())
                    found_classes.append(label if rng.random() < 0.9 else 1 - label)
        images.append(
            (
                name,
                predicted(found, scores, found_classes, shape),
                truth(true, true_classes, shape),
            )
        )
    result = score_instances(images, ["loop", "bubble"])
    assert 0 < result["ap50_95"] < result["ap50"] < 1  # not a trivial 0 or 1
    assert result["mask_ap50"] == pytest.approx(result["ap50"], abs=1e-12)
    assert result["mask_ap50_95"] == pytest.approx(result["ap50_95"], abs=1e-12)


def test_images_without_predictions():
    # a: A found (0.9). b: B missed. c: nothing either way. Recall 1/2 at precision 1 at every
    # IoU threshold: AP 51/101. Union: 100 of 200 truth pixels; per image 1, 0, and 1 (empty).
    nothing = predicted([], [])
    images = [
        ("a", predicted([A], [0.9]), truth([A])),
        ("b", nothing, truth([B])),
        ("c", nothing, truth([])),
    ]
    result = score_instances(images, ["loop"])
    assert result["mask_ap50"] == pytest.approx(51 / 101)
    assert result["mask_ap50_95"] == pytest.approx(51 / 101)
    assert result["iou"] == 0.5
    assert result["images"] == [
        {"name": "a", "true": 1, "detected": 1, "iou": 1.0},
        {"name": "b", "true": 1, "detected": 0, "iou": 0.0},
        {"name": "c", "true": 0, "detected": 0, "iou": 1.0},
    ]
    assert (result["instances"], result["objects"]) == (1, 2)
    empty = score_instances([("c", nothing, truth([]))], ["loop"])
    assert (empty["mask_ap50"], empty["mask_ap50_95"], empty["iou"]) == (0.0, 0.0, 1.0)
    assert score_instances([], ["loop"])["images"] == []


def test_two_classes():
    # Truth: loop A, bubble B. Found: loop A (0.9), loop on B (0.8): loop AP 1, bubble AP 0
    # (truth, nothing found) -> 0.5 at every threshold. Union: loop 100 right and 100 too many,
    # IoU 1/2, Dice 2/3; bubble 100 missed, 0 and 0; means 1/4 and 1/3.
    found = predicted([A, B], [0.9, 0.8], classes=[0, 0])
    result = score_instances([("a", found, truth([A, B], [0, 1]))], ["loop", "bubble"])
    assert result["mask_ap50"] == pytest.approx(0.5)
    assert result["mask_ap50_95"] == pytest.approx(0.5)
    assert result["ap50"] == pytest.approx(0.5)
    assert (result["iou_loop"], result["iou_bubble"], result["iou"]) == (0.5, 0.0, 0.25)
    assert result["dice_loop"] == pytest.approx(2 / 3) and result["dice_bubble"] == 0.0
    assert result["dice"] == pytest.approx(1 / 3)
    assert result["images"][0]["iou"] == 0.25


def test_a_later_truth_mask_covers_an_earlier_one_in_the_union():
    # Truth loop A, then bubble on A's lower half and the 5 rows below. Found: loop A exactly.
    # Mask AP uses the full masks: loop 1, bubble 0. In the union the bubble covers rows 5..9:
    # loop 50 right, 50 too many -> 1/2.
    lower = square(5, 0, 15, 10)
    found = predicted([A], [0.9])
    result = score_instances([("a", found, truth([A, lower], [0, 1]))], ["loop", "bubble"])
    assert result["mask_ap50"] == pytest.approx(0.5)
    assert (result["iou_loop"], result["iou_bubble"]) == (0.5, 0.0)


def test_truth_from_labels_unions_to_the_semantic_mask():
    # Overlapping boxes of two classes: predictions painted in the shapes' order reproduce the
    # semantic mask, so the union IoU is 1 (it would not be were the truth painted otherwise).
    image = ImageAnnotation(
        "a.png",
        24,
        16,
        [
            Box(label="loop", xtl=2, ytl=2, xbr=12, ybr=10),
            Box(label="bubble", xtl=8, ytl=6, xbr=20, ybr=14),
            Box(label="loop", xtl=14, ytl=1, xbr=22, ybr=8),
        ],
    )
    classes = ["loop", "bubble"]
    targets = truth_instances(image, classes)
    masks = targets["masks"].astype(bool)
    found = predicted(masks, [0.9, 0.9, 0.9], targets["classes"], shape=(16, 24))
    np.testing.assert_array_equal(union_mask(found), semantic_mask(image, classes))
    result = score_instances([("a.png", found, targets)], classes)
    assert (result["iou_loop"], result["iou_bubble"]) == (1.0, 1.0)
    assert result["objects"] == 3


def test_mismatched_inputs_raise():
    found = predicted([A], [0.9])
    with pytest.raises(ValueError, match="b.png: predicted labels .40, 40. and truth masks"):
        score_instances([("b.png", found, truth([A[:30]], shape=(30, 40)))], ["loop"])
    with pytest.raises(ValueError, match="b.png: predicted labels"):
        score_instances([("b.png", found, truth([A]) | {"masks": A})], ["loop"])
    boxes_only = Instances(None, np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros(0), 40, 40)
    with pytest.raises(ValueError, match="b.png: .*labels is None"):
        score_instances([("b.png", boxes_only, truth([A]))], ["loop"])
    with pytest.raises(ValueError, match="b.png: classes must be integer indices"):
        score_instances([("b.png", predicted([A], [0.9], classes=[1]), truth([A]))], ["loop"])
    with pytest.raises(ValueError, match="b.png: 2 truth classes for 1 masks"):
        score_instances([("b.png", found, truth([A]) | {"classes": [0, 0]})], ["loop"])
