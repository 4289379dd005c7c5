"""emdl.predict.masks: box-relative mask grids pasted into whole images, instances from them,
and tiled Mask R-CNN prediction (with emdl.predict.detect's masks) on synthetic discs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from emdl.data.datasets import window_starts
from emdl.data.normalize import min_max
from emdl.data.resize import Resize
from emdl.predict import detect_image, instances_from_masks, segment_instances
from emdl.predict.masks import paste_mask
from emdl.predict.tiled import pad_to_multiple

M = 28  # the Mask R-CNN's mask grid


def ones(m: int = M) -> np.ndarray:
    return np.ones((m, m), np.float32)


def disc_pixels(shape, cx, cy, r) -> np.ndarray:
    """bool mask of the pixels whose centre lies in the disc (centre in continuous pixels)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def disc_grid(box, cx, cy, r, m: int = M) -> np.ndarray:
    """float32 ``(m, m)`` grid spanning the xyxy ``box``: 1 where the cell centre is in the disc."""
    x0, y0, x1, y1 = box
    x = x0 + (np.arange(m) + 0.5) * (x1 - x0) / m
    y = y0 + (np.arange(m) + 0.5) * (y1 - y0) / m
    return ((x[None, :] - cx) ** 2 + (y[:, None] - cy) ** 2 <= r * r).astype(np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


# paste_mask


def test_ones_fill_exactly_the_pixels_of_an_integer_box():
    (rows, cols), pasted = paste_mask(ones(), np.float32([10, 20, 30, 50]), 100, 100)
    assert (rows, cols) == (slice(20, 50), slice(10, 30))
    assert pasted.dtype == bool and pasted.shape == (30, 20) and pasted.all()


def test_ones_fill_the_pixels_whose_centre_is_in_a_fractional_box():
    # Column centres c + 0.5 in [10.3, 29.5): 10..28; row centres in [20.6, 49.4): 21..48.
    (rows, cols), pasted = paste_mask(ones(), np.float32([10.3, 20.6, 29.5, 49.4]), 100, 100)
    assert (rows, cols) == (slice(21, 49), slice(10, 29))
    assert pasted.all()


@pytest.mark.parametrize("width", [28, 56])
def test_left_half_pastes_the_left_half(width):
    mask = np.zeros((M, M), np.float32)
    mask[:, : M // 2] = 1
    (rows, cols), pasted = paste_mask(mask, np.float32([10, 5, 10 + width, 33]), 40, 100)
    assert (rows, cols) == (slice(5, 33), slice(10, 10 + width))
    expected = np.zeros((28, width), bool)
    expected[:, : width // 2] = True
    np.testing.assert_array_equal(pasted, expected)


def test_values_beyond_the_outer_cell_centres_come_from_the_nearest_cell():
    # Two pixels per cell: pixel 0's centre is a quarter cell before cell 0's centre (clamped to
    # 1), pixel 1's a quarter after (0.75), pixel 2's three quarters (0.25).
    mask = np.zeros((M, M), np.float32)
    mask[:, 0] = 1
    _, pasted = paste_mask(mask, np.float32([0, 0, 56, 56]), 56, 56)
    expected = np.zeros((56, 56), bool)
    expected[:, :2] = True
    np.testing.assert_array_equal(pasted, expected)


def test_a_box_partly_outside_the_image_is_clipped():
    (rows, cols), pasted = paste_mask(ones(), np.float32([-10, 90, 20, 130]), 100, 100)
    assert (rows, cols) == (slice(90, 100), slice(0, 20))
    assert pasted.shape == (10, 20) and pasted.all()
    # The grid keeps its place: its right half, beyond x = 5, pastes the pixels from 5 on.
    mask = np.zeros((M, M), np.float32)
    mask[:, M // 2 :] = 1
    (rows, cols), pasted = paste_mask(mask, np.float32([-23, -28, 33, 28]), 100, 100)
    assert (rows, cols) == (slice(0, 28), slice(0, 33))
    np.testing.assert_array_equal(pasted.any(axis=0), np.arange(33) >= 5)


def test_a_box_outside_the_image_or_empty_pastes_nothing():
    for box in ([110, 10, 130, 30], [10, -40, 30, -5], [10, 10, 10, 30], [10.2, 10, 10.4, 30]):
        _, pasted = paste_mask(ones(), np.float32(box), 100, 100)
        assert pasted.size == 0


def test_matches_map_coordinates_with_nearest_edges():
    rng = np.random.default_rng(1)
    mask = rng.random((M, 20))
    box = np.array([-7.3, 12.6, 61.2, 45.9])
    (rows, cols), pasted = paste_mask(mask, box, 40, 50, threshold=0.4)
    yy, xx = np.mgrid[rows, cols] + 0.5
    y = (yy - box[1]) / (box[3] - box[1]) * mask.shape[0] - 0.5
    x = (xx - box[0]) / (box[2] - box[0]) * mask.shape[1] - 0.5
    expected = ndi.map_coordinates(mask, [y, x], order=1, mode="nearest") > 0.4
    np.testing.assert_array_equal(pasted, expected)


def test_a_disc_grid_pastes_a_disc_of_the_right_area():
    box = np.float32([30, 20, 86, 76])  # 56 pixels: two per cell
    grid = disc_grid((0, 0, M, M), M / 2, M / 2, M / 2)
    (rows, cols), pasted = paste_mask(grid, box, 100, 120)
    assert pasted.sum() == pytest.approx(np.pi * 28**2, rel=0.03)
    truth = disc_pixels((100, 120), 58, 48, 28)
    whole = np.zeros((100, 120), bool)
    whole[rows, cols] = pasted
    assert iou(whole, truth) > 0.95


# instances_from_masks


def test_higher_scores_own_overlaps_and_number_first():
    # a: 0.6 at [10, 10, 40, 40], half covered by b: 0.9; c: 0.7 alone. Numbered b, c, a.
    mask_boxes = np.float32([[10, 10, 40, 40], [70, 5, 90, 25], [25, 0, 60, 60]])
    found = instances_from_masks(
        np.stack([ones()] * 3),
        mask_boxes,
        np.int64([2, 1, 0]),
        np.float32([0.6, 0.7, 0.9]),
        80,
        100,
    )
    expected = np.zeros((80, 100), np.int32)
    expected[10:40, 10:40] = 3
    expected[0:60, 25:60] = 1
    expected[5:25, 70:90] = 2
    assert found.labels.dtype == np.int32
    np.testing.assert_array_equal(found.labels, expected)
    np.testing.assert_array_equal(found.boxes, [[25, 0, 60, 60], [70, 5, 90, 25], [10, 10, 25, 40]])
    assert found.boxes.dtype == np.float32
    assert found.classes.tolist() == [0, 1, 2] and found.classes.dtype == np.int32
    np.testing.assert_array_equal(found.scores, np.float32([0.9, 0.7, 0.6]))
    assert found.touches_edge.tolist() == [True, False, False]
    assert (found.height, found.width, len(found)) == (80, 100, 3)


def test_hidden_small_and_low_scoring_detections_are_dropped():
    mask_boxes = np.float32(
        [
            [10, 10, 40, 40],  # 0.9
            [20, 20, 30, 30],  # 0.5, wholly under the first: no pixels left
            [50, 50, 54, 54],  # 0.8, 16 pixels
            [60, 10, 70, 20],  # 0.2
        ]
    )
    scores = np.float32([0.9, 0.5, 0.8, 0.2])

    def found(**kwargs):
        return instances_from_masks(
            np.stack([ones()] * 4), mask_boxes, np.zeros(4), scores, 80, 80, **kwargs
        )

    everything = found()
    np.testing.assert_array_equal(everything.scores, np.float32([0.9, 0.8, 0.2]))
    assert (everything.labels == 2).sum() == 16
    assert found(min_area=16).scores.tolist() == everything.scores.tolist()
    smaller = found(min_area=17)
    np.testing.assert_array_equal(smaller.scores, np.float32([0.9, 0.2]))
    np.testing.assert_array_equal(np.unique(smaller.labels), [0, 1, 2])
    assert (smaller.labels[50:54, 50:54] == 0).all() and (smaller.labels[10:20, 60:70] == 2).all()
    confident = found(score_threshold=0.5)
    np.testing.assert_array_equal(confident.scores, np.float32([0.9, 0.8]))
    assert (confident.labels[10:20, 60:70] == 0).all()


def test_the_mask_threshold_applies():
    mask = np.full((M, M), 0.6, np.float32)
    mask[:, : M // 2] = 0.8
    args = (np.float32([[10, 10, 38, 38]]), [0], [0.9], 50, 50)
    found = instances_from_masks(mask[np.newaxis], *args)
    expected = np.zeros((50, 50), np.int32)
    expected[10:38, 10:38] = 1
    np.testing.assert_array_equal(found.labels, expected)
    found = instances_from_masks(mask[np.newaxis], *args, mask_threshold=0.7)
    expected[:, 24:] = 0
    np.testing.assert_array_equal(found.labels, expected)


def test_nothing_found_gives_empty_instances():
    none = np.zeros((0, 4), np.float32)
    found = instances_from_masks(np.zeros((0, M, M)), none, [], [], 30, 40)
    assert len(found) == 0 and found.labels.shape == (30, 40) and not found.labels.any()
    assert found.boxes.shape == (0, 4) and found.touches_edge.shape == (0,)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"masks": np.ones((2, M))}, r"masks must be \(N, Mh, Mw\)"),
        ({"mask_boxes": np.zeros((2, 3))}, r"mask_boxes must have shape \(2, 4\)"),
        ({"classes": [0]}, r"classes must have shape \(2,\)"),
        ({"scores": [[0.5, 0.5]]}, r"scores must have shape \(2,\)"),
        ({"height": 0}, "image size must be positive"),
        ({"mask_threshold": 1.0}, "mask_threshold must be in"),
        ({"min_area": -1}, "min_area must be >= 0"),
    ],
)
def test_bad_arguments(change, message):
    kwargs = {
        "masks": np.ones((2, M, M)),
        "mask_boxes": np.zeros((2, 4)),
        "classes": [0, 0],
        "scores": [0.5, 0.5],
        "height": 10,
        "width": 10,
    } | change
    with pytest.raises(ValueError, match=message):
        instances_from_masks(**kwargs)


# detect_image with masks, segment_instances


def test_masks_follow_their_detections_through_the_padding_and_score_filters():
    def detector(tiles):
        # Mask i is filled with i / 10 so that it names its detection.
        boxes = [[[12, 2, 20, 9], [2, 2, 10, 10], [36, 2, 50, 12], [20, 15, 45, 40]]]
        masks = np.stack([np.full((M, M), i / 10, np.float32) for i in range(4)])
        return {
            "boxes": np.float32(boxes * len(tiles)),
            "classes": np.int64([[0, 0, 0, 0]] * len(tiles)),
            "confidence": np.float32([[0.3, 0.9, 0.8, 0.7]] * len(tiles)),
            "masks": np.stack([masks] * len(tiles)),
            "num_detections": np.int32([4] * len(tiles)),
        }

    # 40 x 30 pixels padded to 64 x 64: detection 0 scores too low, detection 2 is centred in
    # the padding, detection 3 reaches into it (its box is clipped, its mask box is not). Each
    # filter drops a detection before one that is kept, so a mask that skipped it would shift.
    image = np.zeros((30, 40), np.float32)
    out = detect_image(detector, image, tile=64, overlap=0, score_threshold=0.5)
    np.testing.assert_array_equal(out["boxes"], [[2, 2, 10, 10], [20, 15, 40, 30]])
    np.testing.assert_array_equal(out["mask_boxes"], [[2, 2, 10, 10], [20, 15, 45, 40]])
    assert out["masks"].shape == (2, M, M) and out["masks"].dtype == np.float32
    np.testing.assert_array_equal(out["masks"], np.float32([0.1, 0.3])[:, None, None] * ones())
    assert out["mask_boxes"].dtype == np.float32

    plain = detect_image(
        lambda t: {k: v for k, v in detector(t).items() if k != "masks"},
        image,
        tile=64,
        overlap=0,
        score_threshold=0.5,
    )
    assert sorted(plain) == ["boxes", "classes", "scores"]
    for key in plain:
        np.testing.assert_array_equal(plain[key], out[key])

    nothing = detect_image(detector, image, tile=64, overlap=0, score_threshold=1)
    assert nothing["masks"].shape == (0, M, M) and nothing["mask_boxes"].shape == (0, 4)


class DiscSegmenter:
    """A fake Mask R-CNN that knows the discs ``(cx, cy, r)`` of an image (original pixels).

    For each tile it reports every disc that reaches into it: the disc's box clipped to the tile
    and a grid of the disc's cells over that box (a disc crossing the tile's edge is seen cut; so
    is one crossing the image's top or left border, as a real detector sees it).
    It finds where a tile lies by comparing it with the tiles of the image as detect_image cuts
    them (resized, padded, min-max normalized); noise in the image tells all tiles apart. Cut
    views score ``cut_bonus`` above whole ones: by default higher, so that the merge cannot rely
    on scores.
    """

    def __init__(self, image, discs, tile, overlap, resize=None, cut_bonus=0.3):
        resize = resize or Resize()
        resized = resize.image(np.asarray(image, np.float32))
        factor = resized.shape[1] / image.shape[1]
        assert resized.shape[0] / image.shape[0] == factor
        self.discs = [(cx * factor, cy * factor, r * factor) for cx, cy, r in discs]
        padded, _ = pad_to_multiple(resized, 32, tile)
        self.tile = tile
        self.cut_bonus = cut_bonus
        self.size = padded.shape[::-1]
        self.corners = [
            (t, c)
            for t in window_starts(padded.shape[0], tile, tile - overlap)
            for c in window_starts(padded.shape[1], tile, tile - overlap)
        ]
        stacked = np.stack([padded[t : t + tile, c : c + tile] for t, c in self.corners])
        self.tiles = np.asarray(min_max(stacked[..., np.newaxis]))[..., 0]

    def __call__(self, tiles):
        assert tiles.dtype == np.float32 and tiles.shape[1:] == (self.tile, self.tile, 1)
        found = []
        for tile in tiles[..., 0]:
            differences = np.abs(self.tiles - tile).max(axis=(1, 2))
            assert differences.min() < 1e-5
            t, c = self.corners[int(differences.argmin())]
            detections = []
            for index, (cx, cy, r) in enumerate(self.discs):
                whole = np.array([cx - r, cy - r, cx + r, cy + r])
                box = np.clip(whole, [c, t, c, t], [c + self.tile, t + self.tile] * 2)
                if np.any(box[2:] <= box[:2]):
                    continue
                cut = not np.array_equal(box, np.clip(whole, 0, self.size * 2))
                grid = disc_grid(box - [c, t, c, t], cx - c, cy - t, r)
                score = 0.5 + 0.01 * index + self.cut_bonus * cut
                detections.append((box - [c, t, c, t], grid, score))
            found.append(detections)
        k = max(map(len, found)) + 1
        out = {
            "boxes": -np.ones((len(tiles), k, 4), np.float32),
            "classes": np.zeros((len(tiles), k), np.int64),
            "confidence": -np.ones((len(tiles), k), np.float32),
            "masks": np.zeros((len(tiles), k, M, M), np.float32),
            "num_detections": np.array([len(f) for f in found], np.int32),
        }
        for b, detections in enumerate(found):
            for j, (box, grid, score) in enumerate(detections):
                out["boxes"][b, j], out["masks"][b, j], out["confidence"][b, j] = box, grid, score
        return out


SIZE = 300
# tile 128, overlap 64: the image is padded to 320 and tiles start at 0, 64, 128 and 192.
DISCS = [
    (128, 40, 20),  # across the edges at x 128 (tile at 0) and 128 (tile at 128)
    (64, 190, 25),  # on the corner of four tiles
    (200, 90, 28),  # across x 192 and y 64
    (230, 230, 15),
    (292, 150, 16),  # cut by the right image border: its box reaches into the padding
    (12, 280, 18),  # cut by the left border
]
ON_EDGE = [False, False, False, False, True, True]
# The discs' boxes as the detector sees them, in descending score: cut by the image's left
# border, where the image ends, but not by its right border, beyond which is the padding.
SEEN_BOXES = np.maximum(
    np.float32([[cx - r, cy - r, cx + r, cy + r] for cx, cy, r in DISCS])[::-1], 0
)


def disc_image():
    image = 0.1 * np.random.default_rng(0).random((SIZE, SIZE))
    for cx, cy, r in DISCS:
        image[disc_pixels(image.shape, cx, cy, r)] = 0.8
    return image.astype(np.float32)


def assert_discs_found_once(found, resize=None):
    assert len(found) == len(DISCS)
    assert found.labels.shape == (SIZE, SIZE)
    # The whole views are kept (a cut view would have scored 0.3 higher).
    scores = np.float32([0.5 + 0.01 * i for i in range(len(DISCS))])
    np.testing.assert_array_equal(found.scores, scores[::-1])
    for index, (cx, cy, r) in enumerate(DISCS):
        truth = disc_pixels((SIZE, SIZE), cx, cy, r)
        label = len(DISCS) - index
        assert iou(found.labels == label, truth) > 0.9, (index, iou(found.labels == label, truth))
        assert found.touches_edge[label - 1] == ON_EDGE[index]


def test_discs_across_tile_borders_are_found_once_with_their_whole_masks():
    image = disc_image()
    segmenter = DiscSegmenter(image, DISCS, 128, 64)
    found = segment_instances(segmenter, image, tile=128, overlap=64, batch_size=3)
    assert_discs_found_once(found)
    # detect_image's mask boxes are the whole discs' boxes, unclipped; the boxes are clipped.
    out = detect_image(segmenter, image, tile=128, overlap=64)
    np.testing.assert_array_equal(out["mask_boxes"], SEEN_BOXES)
    np.testing.assert_array_equal(out["boxes"], np.clip(SEEN_BOXES, 0, SIZE))
    assert out["mask_boxes"][1, 2] == 308 and out["boxes"][1, 2] == SIZE


def test_resize_keeps_masks_on_the_original_pixels():
    image = disc_image()
    resize = Resize(scale=0.5)
    segmenter = DiscSegmenter(image, DISCS, 128, 64, resize)
    found = segment_instances(segmenter, image, tile=128, overlap=64, resize=resize)
    assert_discs_found_once(found)
    # The fake's grids scale with the image: half-size boxes give the same grids, pasted back
    # into the same boxes of the original image, so the same pixels as without resizing.
    same = segment_instances(DiscSegmenter(image, DISCS, 128, 64), image, tile=128, overlap=64)
    np.testing.assert_array_equal(found.labels, same.labels)
    out = detect_image(segmenter, image, tile=128, overlap=64, resize=resize)
    np.testing.assert_allclose(out["mask_boxes"], SEEN_BOXES, atol=1e-4)
    np.testing.assert_allclose(out["boxes"], np.clip(SEEN_BOXES, 0, SIZE), atol=1e-4)


def test_min_area_and_score_threshold_reach_the_instances():
    image = disc_image()
    segmenter = DiscSegmenter(image, DISCS, 128, 64)
    # The disc cut by the right border keeps about 650 pixels, the smallest other about 700.
    found = segment_instances(segmenter, image, tile=128, overlap=64, min_area=680)
    np.testing.assert_array_equal(found.scores, np.float32([0.55, 0.53, 0.52, 0.51, 0.5]))
    # Cut views score lower here, as a real detector's do: a threshold that drops a disc's whole
    # view drops its pieces too. (With cut views scoring higher, the pieces would be found: the
    # threshold applies before the merge.)
    segmenter = DiscSegmenter(image, DISCS, 128, 64, cut_bonus=-0.3)
    found = segment_instances(segmenter, image, tile=128, overlap=64, score_threshold=0.52)
    np.testing.assert_array_equal(found.scores, np.float32([0.55, 0.54, 0.53, 0.52]))


def test_segment_instances_needs_masks():
    def boxes_only(tiles):
        return {
            "boxes": np.zeros((len(tiles), 1, 4), np.float32),
            "classes": np.zeros((len(tiles), 1), np.int64),
            "confidence": np.zeros((len(tiles), 1), np.float32),
            "num_detections": np.zeros(len(tiles), np.int32),
        }

    with pytest.raises(ValueError, match='no "masks"'):
        segment_instances(boxes_only, np.zeros((64, 64), np.float32), tile=64, overlap=0)
