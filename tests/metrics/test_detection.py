"""emdl.metrics.detection: IoU, greedy matching and COCO AP against hand-worked numbers.

pycocotools divides by ``tp + fp + eps``, so an AP of 1 comes out as 1 - 1e-16: compare with
``pytest.approx``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from emdl.metrics import box_iou, detection_errors, match_detections, score_detections

BOX = [0.0, 0.0, 10.0, 10.0]
FAR = [50.0, 50.0, 60.0, 60.0]


def predicted(boxes, scores, classes=None) -> dict:
    classes = [0] * len(scores) if classes is None else classes
    return {"boxes": np.array(boxes, float).reshape(-1, 4), "classes": classes, "scores": scores}


def truth(boxes, classes=None) -> dict:
    boxes = np.array(boxes, float).reshape(-1, 4)
    return {"boxes": boxes, "classes": [0] * len(boxes) if classes is None else classes}


def test_box_iou_exact():
    # [0,0,10,5]: intersection 50, union 100 -> 1/2; [5,0,15,10]: 50 / 150 -> 1/3; FAR: 0.
    iou = box_iou(np.array([BOX]), np.array([[0, 0, 10, 5], [5, 0, 15, 10], FAR]))
    assert iou.dtype == np.float64 and iou.shape == (1, 3)
    assert iou[0, 0] == 0.5 and iou[0, 1] == pytest.approx(1 / 3) and iou[0, 2] == 0.0
    assert box_iou(np.zeros((0, 4)), np.array([BOX])).shape == (0, 1)
    assert box_iou([[1, 1, 1, 1]], [[1, 1, 1, 1]])[0, 0] == 0.0  # empty union, not NaN


def test_match_prefers_the_highest_iou_and_takes_scores_in_any_order():
    a, b = [0, 0, 10, 10], [2, 0, 12, 10]
    # Detection 1 (score 0.9) is A exactly (IoU with B 80/120); detection 0 (0.5) overlaps B by
    # 80/120 and A by 60/140 < 0.5. Taking the first truth above 0.5 (B) would leave detection 0
    # unmatched.
    flags = match_detections([[4, 0, 14, 10], a], [0.5, 0.9], [b, a])
    assert flags.dtype == bool and flags.tolist() == [True, True]
    # Duplicates: the higher score (listed second) takes the one truth.
    assert match_detections([BOX, BOX], [0.8, 0.9], [BOX]).tolist() == [False, True]
    assert match_detections([BOX], [0.9], np.zeros((0, 4))).tolist() == [False]


def test_perfect_prediction():
    boxes = [BOX, [20, 20, 30, 40], FAR]
    images = [
        ("a", predicted(boxes, [0.9, 0.8, 0.7]), truth(boxes)),
        ("b", predicted([], []), truth([])),
    ]
    result = score_detections(images, ["loop"])
    json.dumps(result)  # plain Python numbers only
    assert result["ap50"] == pytest.approx(1) and result["ap50_95"] == pytest.approx(1)
    assert (result["precision50"], result["recall50"], result["f1_50"]) == (1.0, 1.0, 1.0)
    assert result["score_threshold"] == 0.7
    assert (result["count_error"], result["count_bias"]) == (0.0, 0.0)
    assert (result["detections"], result["objects"]) == (3, 3)
    assert result["images"] == [
        {"name": "a", "true": 3, "detected": 3, "tp": 3},
        {"name": "b", "true": 0, "detected": 0, "tp": 0},
    ]


def test_iou_of_one_half_counts_only_at_threshold_one_half():
    # IoU exactly 0.5 >= 0.5 matches; fails 0.55 ... 0.95. AP 1 at one of ten thresholds -> 0.1.
    result = score_detections([("a", predicted([[0, 0, 10, 5]], [0.9]), truth([BOX]))], ["loop"])
    assert result["ap50"] == pytest.approx(1) and result["ap50_95"] == pytest.approx(0.1)
    assert result["f1_50"] == 1.0


def test_hand_worked_ap_and_best_threshold():
    # 3 truths; scores 0.9 TP, 0.8 FP, 0.7 TP, 0.6 TP.
    # Recall 1/3, 1/3, 2/3, 1; precision 1, 1/2, 2/3, 3/4, made non-increasing: 1, 3/4, 3/4, 3/4.
    # Recall points 0.00..0.33 (34 of them) read precision 1, 0.34..1.00 (67) read 3/4:
    # AP = (34 + 67 * 0.75) / 101. The TPs have IoU 1, so every IoU threshold gives the same AP.
    # F1 = 2 TP / (detections + 3): 2/4, 2/5, 4/6, 6/7 -> threshold 0.6, P 3/4, R 1, F1 6/7.
    truths = [BOX, [20, 0, 30, 10], [40, 0, 50, 10]]
    found = predicted([truths[0], FAR, truths[1], truths[2]], [0.9, 0.8, 0.7, 0.6])
    result = score_detections([("a", found, truth(truths))], ["loop"])
    assert result["ap50"] == pytest.approx((34 + 67 * 0.75) / 101)
    assert result["ap50_95"] == pytest.approx((34 + 67 * 0.75) / 101)
    assert result["score_threshold"] == 0.6
    assert result["precision50"] == pytest.approx(0.75) and result["recall50"] == 1.0
    assert result["f1_50"] == pytest.approx(6 / 7)


def test_equal_f1_takes_the_lowest_threshold():
    # 3 truths; 0.9 TP, 0.8 0.7 0.6 FP, 0.5 TP: F1 2/4, 2/5, 2/6, 2/7, 4/8 -> 0.9 and 0.5 tie.
    truths = [BOX, [20, 0, 30, 10], [40, 0, 50, 10]]
    found = predicted([BOX, FAR, FAR, FAR, truths[1]], [0.9, 0.8, 0.7, 0.6, 0.5])
    result = score_detections([("a", found, truth(truths))], ["loop"])
    assert result["score_threshold"] == 0.5 and result["f1_50"] == 0.5
    assert result["precision50"] == pytest.approx(2 / 5) and result["recall50"] == pytest.approx(
        2 / 3
    )


def test_duplicate_detection_is_one_tp_and_one_fp():
    # 0.9 TP, 0.8 FP: F1 1 at 0.9, 2/3 at 0.8. AP: precision 1, 1/2 at recall 1, 1 -> AP 1.
    result = score_detections([("a", predicted([BOX, BOX], [0.9, 0.8]), truth([BOX]))], ["loop"])
    assert result["ap50"] == pytest.approx(1) and result["score_threshold"] == 0.9
    assert (result["precision50"], result["recall50"], result["f1_50"]) == (1.0, 1.0, 1.0)
    assert result["images"] == [{"name": "a", "true": 1, "detected": 1, "tp": 1}]
    assert result["detections"] == 2


def test_no_detections():
    empty = {"boxes": [], "classes": [], "scores": []}
    result = score_detections([("a", empty, truth([BOX, FAR]))], ["loop"])
    assert (result["ap50"], result["ap50_95"]) == (0.0, 0.0)
    assert (result["precision50"], result["recall50"], result["f1_50"]) == (0.0, 0.0, 0.0)
    assert result["score_threshold"] == 0.0
    assert (result["count_error"], result["count_bias"]) == (2.0, -2.0)
    assert (result["detections"], result["objects"]) == (0, 2)
    assert score_detections([], ["loop"])["count_error"] == 0.0


def test_detections_on_an_image_without_truth_are_false_positives():
    # Alone: no truth anywhere, so no class has AP (0.0), F1 0 at the one score 0.8, 1 too many.
    background = ("b", predicted([BOX], [0.8]), truth([]))
    alone = score_detections([background], ["loop"])
    assert (alone["ap50"], alone["precision50"], alone["recall50"], alone["f1_50"]) == (0, 0, 0, 0)
    assert alone["score_threshold"] == 0.8
    assert (alone["count_error"], alone["count_bias"]) == (1.0, 1.0)
    # Beside a perfect image: 0.9 TP, 0.8 FP; AP 1 (see duplicates), F1 best at 0.9, where "b"
    # shows no detection.
    both = score_detections([("a", predicted([BOX], [0.9]), truth([BOX])), background], ["loop"])
    assert both["ap50"] == pytest.approx(1) and both["score_threshold"] == 0.9
    assert both["images"][1] == {"name": "b", "true": 0, "detected": 0, "tp": 0}


def test_a_detection_of_the_wrong_class_does_not_match():
    # Truth: loop at BOX, bubble at FAR. Detections: bubble at BOX 0.9 (FP), loop at BOX 0.8 (TP).
    # AP loop 1, bubble 0 (truth, no match) -> 0.5. F1 0 at 0.9, 2/(2+2) at 0.8: P 1/2, R 1/2.
    found = predicted([BOX, BOX], [0.9, 0.8], classes=[1, 0])
    result = score_detections([("a", found, truth([BOX, FAR], [0, 1]))], ["loop", "bubble"])
    assert result["ap50"] == pytest.approx(0.5) and result["ap50_95"] == pytest.approx(0.5)
    assert result["score_threshold"] == 0.8
    assert (result["precision50"], result["recall50"], result["f1_50"]) == (0.5, 0.5, 0.5)
    # Without the bubble truth the bubble class has no AP and leaves the mean: loop's 1.
    only_loop = score_detections([("a", found, truth([BOX]))], ["loop", "bubble"])
    assert only_loop["ap50"] == pytest.approx(1)


def test_count_error_at_the_threshold():
    # a: 3 truths, 0.9 TP. b: 1 truth, 0.8 TP, 0.7 and 0.6 FP. Pooled F1 = 2 TP / (n + 4):
    # 2/5, 4/6, 4/7, 4/8 -> threshold 0.8. Detected - true: a 1 - 3 = -2, b 1 - 1 = 0:
    # error (2 + 0) / 2 = 1, bias -1. (Counting all detections would give 2 and 0.)
    a = ("a", predicted([BOX], [0.9]), truth([BOX, [20, 0, 30, 10], [40, 0, 50, 10]]))
    b = ("b", predicted([BOX, FAR, [20, 20, 30, 30]], [0.8, 0.7, 0.6]), truth([BOX]))
    result = score_detections([a, b], ["loop"])
    assert result["score_threshold"] == 0.8
    assert (result["count_error"], result["count_bias"]) == (1.0, -1.0)
    assert [image["detected"] for image in result["images"]] == [1, 1]
    assert [image["tp"] for image in result["images"]] == [1, 1]


def test_no_cap_of_100_detections_per_image():
    # 150 perfect detections on one image; COCO's default cap of 100 would give recall 2/3.
    boxes = [[20 * i, 20 * j, 20 * i + 10, 20 * j + 10] for i in range(15) for j in range(10)]
    scores = list(np.linspace(0.99, 0.5, 150))
    result = score_detections([("a", predicted(boxes, scores), truth(boxes))], ["loop"])
    assert result["ap50"] == pytest.approx(1) and result["ap50_95"] == pytest.approx(1)


@pytest.mark.parametrize(
    ("found", "expected", "message"),
    [
        (predicted([BOX], [0.9]) | {"boxes": np.zeros((1, 5))}, truth([BOX]), "must be .N, 4."),
        (predicted([BOX], [0.9]) | {"boxes": np.zeros(4)}, truth([BOX]), "must be .N, 4."),
        (predicted([BOX], [0.9, 0.8]), truth([BOX]), "differ in length"),
        (predicted([BOX], [0.9], classes=[0, 0]), truth([BOX]), "differ in length"),
        (predicted([BOX], [0.9]), truth([BOX], classes=[]), "differ in length"),
        (predicted([BOX], [0.9], classes=[1]), truth([BOX]), "integer indices"),
        (predicted([BOX], [0.9], classes=[0.5]), truth([BOX]), "integer indices"),
    ],
)
def test_mismatched_inputs_raise(found, expected, message):
    with pytest.raises(ValueError, match=message):
        score_detections([("a", found, expected)], ["loop"])
    with pytest.raises(ValueError, match="2 scores for 1 boxes"):
        match_detections([BOX], [0.9, 0.8], [BOX])


def _one_image(classes=(0, 0, 0, 0, 0)):
    """Four labeled squares of 10, 20, 30 and 40 px; detections: the 20 exactly, the 30 a fifth
    too large (IoU 0.69), the 40 stretched to IoU 0.44, one far from any label, and one on the
    10 below the threshold of 0.05."""
    truth = {
        "boxes": [[0, 0, 10, 10], [100, 100, 120, 120], [200, 200, 230, 230], [300, 300, 340, 340]],
        "classes": [0, 0, 0, 0],
    }
    found = {
        "boxes": [[100, 100, 120, 120], [200, 200, 236, 236], [300, 300, 340, 390],
                  [500, 500, 510, 510], [0, 0, 10, 10]],
        "classes": list(classes),
        "scores": [0.9, 0.8, 0.7, 0.6, 0.01],
    }  # fmt: skip
    return [("a.png", found, truth)]


def test_detection_errors_tell_misses_by_size_from_unlabeled_and_misplaced_boxes():
    errors = detection_errors(_one_image(), ["loop"], 0.05, size_groups=2)
    assert errors["missed_by_size"] == [
        {"smallest_px": 10.0, "largest_px": 20.0, "objects": 2, "missed": 1},
        {"smallest_px": 30.0, "largest_px": 40.0, "objects": 2, "missed": 1},
    ]
    assert (errors["detections"], errors["unlabeled"]) == (4, 1)
    assert errors["f1_50"] == pytest.approx(4 / 8)  # 2 matched of 4 kept and 4 labeled
    assert errors["f1_loose"] == pytest.approx(6 / 8)  # the stretched box counts at IoU 0.3
    assert errors["size_ratio_median"] == pytest.approx(1.1)  # 1.0 and 36 / 30
    single = detection_errors(_one_image(), ["loop"], 0.0, size_groups=4)["missed_by_size"]
    assert [group["missed"] for group in single] == [0, 0, 0, 1]  # the 10 found below 0.05


def test_detection_errors_match_within_class_and_refuse_no_groups():
    errors = detection_errors(_one_image((1, 0, 0, 0, 0)), ["loop", "void"], 0.05)
    assert (errors["detections"], errors["unlabeled"]) == (4, 2)  # no void is labeled
    assert [group["missed"] for group in errors["missed_by_size"]] == [1, 1, 0, 1]
    with pytest.raises(ValueError, match="size_groups must be >= 1, not 0"):
        detection_errors(_one_image(), ["loop"], 0.05, size_groups=0)
    empty = detection_errors([], ["loop"], 0.5)
    assert empty == {"missed_by_size": [], "detections": 0, "unlabeled": 0, "f1_50": 0.0,
                     "f1_loose": 0.0, "size_ratio_median": 0.0}  # fmt: skip
