"""emdl.predict.tta: the eight orientations of the square, and per-pixel and detection batch
functions with test-time augmentation, on small synthetic tiles with exactly known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from skimage.measure import label, regionprops

from emdl.predict import DIHEDRAL, tta_detections, tta_pixels

T = 16  # tile size: not a multiple of 32, the functions work for any square tile
BOX = (3, 2, 9, 12)  # xyxy: off-centre and taller than wide, so every orientation differs
# An L: a column down the box's left side and a foot along its bottom, in box pixels (10 x 6).
L_SHAPE = np.zeros((10, 6), np.float32)
L_SHAPE[:, :2] = 1
L_SHAPE[-3:, :] = 1


def tile_with(box=BOX, shape: np.ndarray | None = None, size: int = T) -> np.ndarray:
    """float32 ``(size, size)``: 1 on the box's pixels (or on ``shape`` placed in the box)."""
    tile = np.zeros((size, size), np.float32)
    x0, y0, x1, y1 = box
    tile[y0:y1, x0:x1] = 1 if shape is None else shape
    return tile


def pixel_box(tile: np.ndarray) -> np.ndarray:
    """xyxy box of the pixels > 0.5 of a 2-D tile, in continuous pixel coordinates."""
    rows, cols = np.nonzero(tile > 0.5)
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], np.float64)


def batch_dict(found: list[list[tuple]], m: int | None = None) -> dict:
    """keras-cv style batch output from per-tile lists of (box, class, score[, mask])."""
    k = max(map(len, found)) + 1  # one padding entry, as a real detector has
    out = {
        "boxes": -np.ones((len(found), k, 4), np.float32),
        "classes": -np.ones((len(found), k), np.int64),
        "confidence": -np.ones((len(found), k), np.float32),
        "num_detections": np.array([len(f) for f in found], np.int32),
    }
    if m is not None:
        out["masks"] = -np.ones((len(found), k, m, m), np.float32)
    for b, detections in enumerate(found):
        for j, (box, cls, score, *mask) in enumerate(detections):
            out["boxes"][b, j], out["classes"][b, j], out["confidence"][b, j] = box, cls, score
            if m is not None:
                out["masks"][b, j] = mask[0]
    return out


def bright_box_detector(tiles: np.ndarray, score: float = 0.9) -> dict:
    """Finds the box of a tile's bright pixels (class 0), computed from the pixels so that it
    turns with the tile; nothing in a dark tile."""
    return batch_dict([[(pixel_box(t), 0, score)] if t.max() > 0.5 else [] for t in tiles[..., 0]])


def view_of(tile: np.ndarray, original: np.ndarray) -> int | None:
    """Which transform of DIHEDRAL turned ``original`` (t, t) into ``tile`` (t, t), if any."""
    for v, transform in enumerate(DIHEDRAL):
        if np.array_equal(transform.forward(original[None, :, :, None])[0, :, :, 0], tile):
            return v
    return None


# --- the eight transforms ------------------------------------------------------------------


def test_each_inverse_undoes_its_transform_exactly():
    x = np.random.default_rng(0).random((3, 7, 7, 2)).astype(np.float32)
    grids = np.random.default_rng(1).random((4, 5, 5))
    for transform in DIHEDRAL:
        assert np.array_equal(transform.inverse(transform.forward(x)), x)
        assert np.array_equal(transform.forward(transform.inverse(x)), x)
        assert transform.forward(x).shape == x.shape
        turned = transform.forward(grids, axes=(-2, -1))
        assert np.array_equal(transform.inverse(turned, axes=(-2, -1)), grids)
        box = np.array([[1.5, 2, 6, 4.25]])
        assert np.array_equal(transform.inverse_boxes(transform.forward_boxes(box, 7), 7), box)


def test_the_eight_transforms_are_distinct_and_the_first_is_the_identity():
    x = np.arange(16).reshape(1, 4, 4, 1)
    outputs = [transform.forward(x) for transform in DIHEDRAL]
    assert len(DIHEDRAL) == 8 and len({t.name for t in DIHEDRAL}) == 8
    assert np.array_equal(outputs[0], x)
    for a, b in itertools.combinations(outputs, 2):
        assert not np.array_equal(a, b)
    # A quarter turn is np.rot90's, counter-clockwise with row 0 on top.
    square = np.array([[1, 2], [3, 4]])[None, :, :, None]
    assert DIHEDRAL[1].forward(square)[0, :, :, 0].tolist() == [[2, 4], [1, 3]]


@pytest.mark.parametrize("transform", DIHEDRAL, ids=lambda t: t.name)
def test_boxes_and_mask_grids_move_with_the_pixels(transform):
    tile = tile_with(shape=L_SHAPE)
    turned = transform.forward(tile[None, :, :, None])[0, :, :, 0]
    box = transform.forward_boxes(np.float64(BOX), T)
    assert np.array_equal(box, pixel_box(turned))
    # The grid spanning the box, turned as the tile, is the grid spanning the turned box.
    x0, y0, x1, y1 = box.astype(int)
    assert np.array_equal(transform.forward(L_SHAPE, axes=(-2, -1)), turned[y0:y1, x0:x1])


# --- per-pixel outputs --------------------------------------------------------------------------


def pointwise(tiles: np.ndarray) -> np.ndarray:
    return np.concatenate([1 / (1 + np.exp(-tiles)), tiles**2], axis=-1)


def blur(tiles: np.ndarray) -> np.ndarray:
    """3 x 3 binomial blur with symmetric padding: commutes with every turn and flip."""
    padded = np.pad(tiles, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="symmetric")
    kernel = np.outer([1, 2, 1], [1, 2, 1]) / 16
    size = tiles.shape[1]
    return sum(
        kernel[i, j] * padded[:, i : i + size, j : j + size] for i in range(3) for j in range(3)
    ).astype(np.float32)


@pytest.mark.parametrize("size", [7, 12])
@pytest.mark.parametrize("function", [pointwise, blur])
def test_an_equivariant_function_is_unchanged(function, size):
    tiles = np.random.default_rng(2).random((3, size, size, 1)).astype(np.float32)
    out = tta_pixels(function)(tiles)
    assert out.dtype == np.float32 and out.shape == function(tiles).shape
    np.testing.assert_allclose(out, function(tiles), atol=1e-6)


def test_a_coordinate_ramp_averages_to_its_symmetric_mean():
    def x_ramp(tiles):
        return np.broadcast_to(np.arange(tiles.shape[2], dtype=np.float32)[:, None], tiles.shape)

    # The eight views turn the ramp c into c, r, 7 - c and 7 - r, twice each: mean 3.5.
    out = tta_pixels(x_ramp)(np.zeros((2, 8, 8, 1), np.float32))
    np.testing.assert_allclose(out, 3.5, atol=1e-6)


def test_a_shift_averages_to_the_mean_of_the_four_shifts():
    tiles = np.random.default_rng(3).random((2, 9, 9, 1)).astype(np.float32)
    out = tta_pixels(lambda t: np.roll(t, 1, axis=2))(tiles)
    four = sum(np.roll(tiles, s, axis=a) for s in (1, -1) for a in (1, 2)) / 4
    np.testing.assert_allclose(out, four, atol=1e-6)


def test_views_are_batched_at_most_max_batch_at_a_time():
    tiles = np.random.default_rng(4).random((3, 8, 8, 1)).astype(np.float32)
    sizes = {}
    for max_batch in (None, 5, 24, 100):
        seen = []

        def counted(t, seen=seen):
            seen.append(len(t))
            return blur(t)

        out = tta_pixels(counted, max_batch=max_batch)(tiles)
        np.testing.assert_allclose(out, blur(tiles), atol=1e-6)
        sizes[max_batch] = seen
    assert sizes == {None: [3] * 8, 5: [5, 5, 5, 5, 4], 24: [24], 100: [24]}


def test_bad_tiles_and_max_batch_are_refused():
    with pytest.raises(ValueError, match="square"):
        tta_pixels(blur)(np.zeros((1, 8, 6, 1), np.float32))
    with pytest.raises(ValueError, match="max_batch"):
        tta_pixels(blur, max_batch=0)
    with pytest.raises(ValueError, match="square"):
        tta_detections(bright_box_detector)(np.zeros((8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="must return"):
        tta_pixels(lambda t: t[:, :, :-1])(np.zeros((1, 8, 8, 1), np.float32))


# --- detections ---------------------------------------------------------------------------


def test_an_object_found_in_every_view_is_one_box_with_the_detectors_score():
    tiles = tile_with()[None, :, :, None]
    out = tta_detections(bright_box_detector)(tiles)
    assert out["num_detections"].tolist() == [1]
    assert out["boxes"].shape == (1, 1, 4) and out["boxes"].dtype == np.float32
    np.testing.assert_allclose(out["boxes"][0, 0], BOX, atol=1e-5)
    np.testing.assert_allclose(out["confidence"][0, 0], 0.9, atol=1e-6)
    assert out["confidence"].dtype == np.float32 and out["num_detections"].dtype == np.int32
    assert out["classes"].tolist() == [[0]]
    assert "masks" not in out


def test_an_object_seen_in_one_orientation_gets_an_eighth_of_its_score():
    original = tile_with()

    def identity_only(tiles):
        return batch_dict(
            [[(pixel_box(t), 0, 0.9)] if view_of(t, original) == 0 else [] for t in tiles[..., 0]]
        )

    out = tta_detections(identity_only)(original[None, :, :, None])
    assert out["num_detections"].tolist() == [1]
    np.testing.assert_allclose(out["boxes"][0, 0], BOX, atol=1e-5)
    np.testing.assert_allclose(out["confidence"][0, 0], 0.9 / 8, atol=1e-6)


def test_a_detector_biased_in_its_own_frame_is_corrected():
    # One pixel too far right in every view: mapped back, the errors point four ways and cancel.
    def biased(tiles):
        out = bright_box_detector(tiles)
        out["boxes"][:, 0] += np.float32([1, 0, 1, 0])
        return out

    out = tta_detections(biased)(tile_with()[None, :, :, None])
    assert out["num_detections"].tolist() == [1]
    np.testing.assert_allclose(out["boxes"][0, 0], BOX, atol=1e-5)
    np.testing.assert_allclose(out["confidence"][0, 0], 0.9, atol=1e-6)


def test_views_are_fused_by_score_weighted_boxes_and_classes_stay_apart():
    original = tile_with()
    rng = np.random.default_rng(5)
    # Per view, in the original tile's frame: the object's box jittered, and its score.
    jittered = np.float64(BOX) + rng.uniform(-0.5, 0.5, (8, 4))
    scores = np.linspace(0.5, 0.9, 8)
    far = np.float64([12, 12, 15, 15])  # another object, found only by views 2 and 5

    def planted(tiles):
        found = []
        for t in tiles[..., 0]:
            v = view_of(t, original)
            transform = DIHEDRAL[v]
            detections = [
                (transform.forward_boxes(jittered[v], T), 0, scores[v]),
                # the same place as class 1, which must not merge with class 0
                (transform.forward_boxes(np.float64(BOX), T), 1, 0.3),
            ]
            if v in (2, 5):
                detections.append((transform.forward_boxes(far, T), 0, 0.8))
            found.append(detections)
        return batch_dict(found)

    out = tta_detections(planted, max_batch=3)(original[None, :, :, None])
    assert out["num_detections"].tolist() == [3]
    # Sorted by confidence: the class-0 object (mean 0.7), class 1 (0.3), the far one (0.2).
    np.testing.assert_allclose(out["confidence"][0], [0.7, 0.3, 0.8 * 2 / 8], atol=1e-6)
    assert out["classes"][0].tolist() == [0, 1, 0]
    expected = scores @ jittered / scores.sum()
    np.testing.assert_allclose(out["boxes"][0], [expected, BOX, far], atol=1e-5)


def test_tiles_are_padded_to_the_largest_count_in_the_batch():
    tiles = np.stack(
        [tile_with(), tile_with((2, 2, 5, 4)) + tile_with((10, 9, 14, 15)), 0 * tile_with()]
    )

    def boxes_of_squares(batch):
        return batch_dict(
            [
                [((r.bbox[1], r.bbox[0], r.bbox[3], r.bbox[2]), 0, 0.6) for r in regions]
                for regions in (regionprops(label(t > 0.5)) for t in batch[..., 0])
            ]
        )

    out = tta_detections(boxes_of_squares)(tiles[..., None])
    assert out["num_detections"].tolist() == [1, 2, 0]
    assert out["boxes"].shape == (3, 2, 4)
    np.testing.assert_allclose(out["boxes"][0, 0], BOX, atol=1e-5)
    assert np.all(out["boxes"][0, 1] == -1) and np.all(out["boxes"][2] == -1)
    assert out["classes"][0, 1] == -1 and out["confidence"][2].tolist() == [-1, -1]
    found = sorted(map(tuple, out["boxes"][1].round(4).tolist()))
    assert found == [(2, 2, 5, 4), (10, 9, 14, 15)]
    np.testing.assert_allclose(out["confidence"][1], 0.6, atol=1e-6)


def test_no_objects_give_an_empty_batch():
    out = tta_detections(bright_box_detector)(np.zeros((2, T, T, 1), np.float32))
    assert out["num_detections"].tolist() == [0, 0]
    assert out["boxes"].shape == (2, 0, 4) and out["confidence"].shape == (2, 0)


def test_the_merged_mask_of_an_l_shaped_object_is_in_the_original_orientation():
    # The box is 6 x 10 pixels; a 30 x 30 grid spans it with 5 x 3 cells per pixel, exactly.
    m = 30
    expected = np.repeat(np.repeat(L_SHAPE, 3, axis=0), 5, axis=1)
    # The L is asymmetric: a grid turned wrongly cannot pass for it.
    for transform in DIHEDRAL[1:]:
        assert not np.array_equal(transform.forward(expected, axes=(-2, -1)), expected)

    def segmenter(tiles):
        found = []
        for t in tiles[..., 0]:
            box = pixel_box(t)
            x0, y0, x1, y1 = box.astype(int)
            crop = t[y0:y1, x0:x1]
            grid = np.repeat(np.repeat(crop, m // crop.shape[0], 0), m // crop.shape[1], 1)
            found.append([(box, 0, 0.9, grid)])
        return batch_dict(found, m)

    out = tta_detections(segmenter)(tile_with(shape=L_SHAPE)[None, :, :, None])
    assert out["num_detections"].tolist() == [1]
    assert out["masks"].shape == (1, 1, m, m) and out["masks"].dtype == np.float32
    np.testing.assert_allclose(out["boxes"][0, 0], BOX, atol=1e-5)
    np.testing.assert_allclose(out["masks"][0, 0], expected, atol=1e-6)


def test_masks_from_some_calls_only_are_refused():
    calls = []

    def sometimes(tiles):
        calls.append(1)
        out = bright_box_detector(tiles)
        if len(calls) == 1:
            out["masks"] = np.ones((len(tiles), out["boxes"].shape[1], 4, 4), np.float32)
        return out

    with pytest.raises(ValueError, match="masks"):
        tta_detections(sometimes)(tile_with()[None, :, :, None])


def test_two_boxes_of_one_view_stay_two_objects():
    # A view's own boxes are distinct objects to its detector, however much they overlap.
    original = tile_with()
    twin = np.float64(BOX) + 0.5

    def twins(tiles):
        return batch_dict(
            [
                [(BOX, 0, 0.9), (twin, 0, 0.8)] if view_of(t, original) == 0 else []
                for t in tiles[..., 0]
            ]
        )

    out = tta_detections(twins)(original[None, :, :, None])
    assert out["num_detections"].tolist() == [2]
    np.testing.assert_allclose(out["boxes"][0], [BOX, twin], atol=1e-5)
    np.testing.assert_allclose(out["confidence"][0], [0.9 / 8, 0.8 / 8], atol=1e-6)
