"""emdl.predict.detect: detections of overlapping tiles merged into one set per image."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import label, regionprops

from emdl.data.resize import Resize
from emdl.predict import detect_image


def fake_detector(tiles: np.ndarray, seen: list | None = None) -> dict:
    """Boxes around bright regions of each tile in keras-cv's YOLOV8Detector.predict format.

    Squares are class 0, discs (regions filling < 90 % of their box) class 1. Smaller boxes get
    higher confidence, so cut views outrank whole ones and the merge cannot rely on scores."""
    if seen is not None:
        seen.append(tiles)
    found = []
    for tile in tiles[..., 0]:
        regions = regionprops(label(tile > 0.5))
        found.append(
            [
                (
                    (r.bbox[1], r.bbox[0], r.bbox[3], r.bbox[2]),
                    int(r.extent < 0.9),
                    1 - r.area / tile.size,
                )
                for r in regions
            ]
        )
    k = max(map(len, found)) + 2
    out = {
        "boxes": -np.ones((len(tiles), k, 4), np.float32),
        "classes": -np.ones((len(tiles), k), np.int64),
        "confidence": -np.ones((len(tiles), k), np.float32),
        "num_detections": np.array([len(f) for f in found], np.int32),
    }
    for b, detections in enumerate(found):
        for j, (box, cls, score) in enumerate(detections):
            out["boxes"][b, j], out["classes"][b, j], out["confidence"][b, j] = box, cls, score
    return out


def squares(shape: tuple[int, int], boxes: list) -> np.ndarray:
    image = np.zeros(shape, np.float32)
    for x0, y0, x1, y1 in boxes:
        image[y0:y1, x0:x1] = 1
    return image


def assert_same_boxes(found: np.ndarray, expected: list, atol: float = 1) -> None:
    """Each expected box matched by exactly one found box, and nothing else found."""
    assert len(found) == len(expected), found
    for box in expected:
        close = np.all(np.abs(found - np.float32(box)) <= atol, axis=1)
        assert close.sum() == 1, (box, found)


def test_object_across_a_tile_border_is_found_once_with_its_whole_box():
    # tile 64, stride 32: x edges at 32, 64, 96; the square is cut by the tiles at x 0 and 64,
    # whole only in the tile at x 32; the sliver 64..70 has IoU < 0.5 with the whole box.
    box = (50, 40, 70, 56)
    seen = []
    out = detect_image(
        lambda t: fake_detector(t, seen), squares((128, 160), [box]), tile=64, overlap=32
    )
    assert_same_boxes(out["boxes"], [box], atol=0)
    assert out["classes"].tolist() == [0]
    assert out["boxes"].dtype == np.float32 and out["scores"].dtype == np.float32
    assert out["classes"].dtype == np.int32
    tiles = np.concatenate(seen)
    assert tiles.shape[1:] == (64, 64, 1) and tiles.dtype == np.float32
    assert tiles.min() >= 0 and tiles.max() <= 1


def test_all_objects_found_once_at_any_image_size():
    height, width = 150, 170  # padded to 160 x 192
    boxes = [
        (0, 0, 10, 12),  # top-left corner
        (width - 9, height - 11, width, height),  # bottom-right corner, mirrored into padding
        (width - 14, 0, width - 4, 8),  # near the right border: its mirror is in the padding
        (0, height - 6, 16, height),
        (28, 28, 38, 38),  # on the corner of four tiles
        (60, 5, 70, 20),
        (90, 60, 105, 70),
        (120, 90, 140, 100),
        (40, 100, 55, 125),
        (75, 125, 100, 140),
        (150, 40, 160, 70),
        (5, 60, 20, 75),
    ]
    image = squares((height, width), boxes)
    image += np.float32(0.1) * np.random.default_rng(0).random(image.shape, np.float32)
    out = detect_image(fake_detector, image, tile=64, overlap=32, batch_size=3)
    assert_same_boxes(out["boxes"], boxes, atol=0)
    assert np.all(np.diff(out["scores"]) <= 0)


def test_classes_are_merged_separately():
    image = squares((96, 96), [(20, 20, 44, 44)])
    yy, xx = np.mgrid[:96, :96]
    image[(yy - 70) ** 2 + (xx - 70) ** 2 < 12**2] = 1  # a disc across the tile edges at 64
    out = detect_image(fake_detector, image, tile=64, overlap=32)
    assert sorted(out["classes"].tolist()) == [0, 1]
    assert_same_boxes(out["boxes"], [(20, 20, 44, 44), (59, 59, 82, 82)])

    def two_classes_on_one_box(tiles):
        return {
            "boxes": np.float32([[[8, 8, 20, 20]] * 2] * len(tiles)),
            "classes": np.int64([[0, 1]] * len(tiles)),
            "confidence": np.float32([[0.9, 0.8]] * len(tiles)),
            "num_detections": np.int32([2] * len(tiles)),
        }

    out = detect_image(two_classes_on_one_box, np.zeros((32, 32), np.float32), tile=32, overlap=0)
    assert out["classes"].tolist() == [0, 1]


def test_scale_maps_boxes_back_to_original_pixels():
    boxes = [(20, 30, 60, 70), (150, 100, 190, 150), (230, 260, 270, 296)]
    image = squares((300, 290), boxes)
    out = detect_image(fake_detector, image, tile=64, overlap=32, resize=Resize(0.5))
    assert_same_boxes(out["boxes"], boxes, atol=2)


def test_image_smaller_than_a_tile():
    boxes = [(3, 4, 13, 10), (30, 20, 44, 37)]
    out = detect_image(fake_detector, squares((40, 50), boxes), tile=64, overlap=16)
    assert_same_boxes(out["boxes"], boxes, atol=0)


def test_detections_in_the_padding_are_dropped_and_boxes_clipped():
    def detector(tiles):
        boxes = [[[2, 2, 10, 10], [36, 2, 50, 12], [20, 15, 45, 40], [-1, -1, -1, -1]]]
        return {
            "boxes": np.float32(boxes * len(tiles)),
            "classes": np.int64([[0, 0, 0, -1]] * len(tiles)),
            "confidence": np.float32([[0.9, 0.8, 0.7, -1]] * len(tiles)),
            "num_detections": np.int32([3] * len(tiles)),
        }

    # 40 x 30 pixels padded to 64 x 64: the box centred at x 43 lies in the padding; the box
    # centred in the image but reaching into the padding is clipped to it.
    out = detect_image(detector, np.zeros((30, 40), np.float32), tile=64, overlap=0)
    np.testing.assert_array_equal(out["boxes"], [[2, 2, 10, 10], [20, 15, 40, 30]])
    np.testing.assert_array_equal(out["scores"], np.float32([0.9, 0.7]))


def test_score_threshold_and_max_detections():
    boxes = [(5, 5, 10, 10), (20, 20, 40, 40), (45, 5, 60, 12)]
    image = squares((64, 64), boxes)
    out = detect_image(fake_detector, image, tile=64, overlap=0, score_threshold=0.97)
    assert_same_boxes(out["boxes"], [(5, 5, 10, 10), (45, 5, 60, 12)], atol=0)
    out = detect_image(fake_detector, image, tile=64, overlap=0, max_detections=1)
    assert_same_boxes(out["boxes"], [(5, 5, 10, 10)], atol=0)


def test_nothing_found():
    out = detect_image(fake_detector, np.zeros((70, 70), np.float32), tile=32, overlap=8)
    assert out["boxes"].shape == (0, 4) and out["classes"].shape == out["scores"].shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tile": 48}, "tile must be a positive multiple of 32"),
        ({"tile": 64, "overlap": 64}, "overlap must be in"),
        ({"tile": 64, "overlap": -1}, "overlap must be in"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        detect_image(fake_detector, np.zeros((40, 40), np.float32), **kwargs)


def test_image_must_be_2d():
    with pytest.raises(ValueError, match="image must be 2-D"):
        detect_image(fake_detector, np.zeros((40, 40, 1), np.float32))
