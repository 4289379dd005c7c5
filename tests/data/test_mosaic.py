"""emdl.data.mosaic: four crops into four, each pixel used once, boxes clipped to their quadrant."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from emdl.data import Augmentation, Effect, build_dataset, load_labeled_images
from emdl.data.mosaic import mosaic_crops
from tests.conftest import box_image, box_xml

S = 8  # the window of the hand-made group


def group() -> dict:
    """Crop k filled with k; one box per crop near its own corner, and one across crop 3's
    centre."""
    boxes = [
        [[0.0, 0.0, 2.0, 2.0]],
        [[6.0, 0.0, 8.0, 2.0]],
        [[0.0, 6.0, 2.0, 8.0]],
        [[3.0, 3.0, 5.0, 5.0], [6.0, 6.0, 8.0, 8.0]],
    ]
    return {
        "image": tf.stack([tf.fill((S, S, 1), float(k)) for k in range(4)]),
        "boxes": tf.ragged.constant(boxes, ragged_rank=1, inner_shape=(4,)),
        "classes": tf.ragged.constant([[0.0], [1.0], [0.0], [1.0, 0.0]]),
    }


def test_a_mosaic_cut_at_the_centre_takes_quadrant_q_from_crop_j_plus_q():
    out = mosaic_crops(group(), tf.constant([1, 2], tf.int64), Effect(1.0, 0.5, 0.5), S, 0.5)
    half = S // 2
    for j in range(4):
        image = out["image"][j, :, :, 0].numpy()
        quadrants = [
            image[:half, :half],
            image[:half, half:],
            image[half:, :half],
            image[half:, half:],
        ]
        for q, pixels in enumerate(quadrants):
            assert (pixels == (j + q) % 4).all()
    # Crop j's corner box lies in its own quadrant j, so only mosaic 0 keeps them; the box across
    # crop 3's centre keeps a quarter in each quadrant, less than min_visible 0.5, and is dropped.
    assert out["boxes"][0].numpy().tolist() == [
        [0, 0, 2, 2],
        [6, 0, 8, 2],
        [0, 6, 2, 8],
        [6, 6, 8, 8],
    ]
    assert out["classes"][0].numpy().tolist() == [0, 1, 0, 0]
    assert [len(out["boxes"][j]) for j in range(1, 4)] == [0, 0, 0]


def test_boxes_cut_by_a_quadrant_are_clipped_and_kept_by_min_visible():
    out = mosaic_crops(group(), tf.constant([1, 2], tf.int64), Effect(1.0, 0.5, 0.5), S, 0.25)
    # Mosaic 3 takes its top-left quadrant from crop 3: a quarter of the box across its centre.
    assert out["boxes"][3].numpy().tolist() == [[3, 3, 4, 4]]
    assert out["classes"][3].numpy().tolist() == [1]


def test_a_group_the_draw_passes_over_stays_as_it_was():
    crops = group()
    out = mosaic_crops(crops, tf.constant([1, 2], tf.int64), Effect(0.0, 0.5, 0.5), S, 0.5)
    assert np.array_equal(out["image"].numpy(), crops["image"].numpy())
    assert out["boxes"].to_list() == crops["boxes"].to_list()
    assert out["classes"].to_list() == crops["classes"].to_list()


@pytest.fixture
def two_images(labeled_folder):
    other = [(2, 2, 30, 10), (44, 40, 60, 60)]
    return load_labeled_images(
        *labeled_folder(
            {
                "a.png": (box_image(64), box_xml("a.png", 64)),
                "b.png": (box_image(64, other), box_xml("b.png", 64, other)),
            }
        )
    )


def crops(records, classes, target, probability: float, **settings) -> list:
    augmentation = Augmentation.from_dict(
        {"mosaic": {"probability": probability}}, interpolation="nearest"
    )
    dataset = build_dataset(
        records, classes, target, window=32, batch_size=8, augmentation=augmentation, **settings
    )
    return [batch for _, batch in zip(range(3), dataset, strict=False)]


def test_mosaic_masks_are_the_same_pixels_rearranged(two_images):
    plain = crops(*two_images, "semantic", 0.0, seed=4)
    mixed = crops(*two_images, "semantic", 1.0, seed=4)
    for (_, before), (images, after) in zip(plain, mixed, strict=True):
        # The image is its own mask: the mosaic cuts both alike.
        assert np.array_equal(images.numpy() > 0.5, after.numpy() > 0)
        for start in (0, 4):  # each group of four crops shares its pixels out once
            group_before = before.numpy()[start : start + 4].sum(axis=0)
            group_after = after.numpy()[start : start + 4].sum(axis=0)
            assert np.array_equal(group_before, group_after)
        assert not np.array_equal(before.numpy(), after.numpy())


def test_mosaic_boxes_cover_exactly_the_bright_pixels(two_images):
    records, classes = two_images
    for images, targets in crops(records, classes, "detection", 1.0, seed=1, min_visible=0.0):
        centres = np.arange(32) + 0.5
        for image, boxes in zip(images.numpy()[..., 0], targets["boxes"].to_list(), strict=True):
            covered = np.zeros((32, 32), bool)
            for x0, y0, x1, y1 in boxes:
                rows = (centres > y0) & (centres < y1)
                cols = (centres > x0) & (centres < x1)
                covered |= rows[:, None] & cols[None, :]
            assert np.array_equal(covered, image > 0.5)


def test_mosaic_is_refused_for_instance_crops(two_images):
    records, classes = two_images
    augmentation = Augmentation.from_dict({"mosaic": {}})
    with pytest.raises(ValueError, match="'mosaic' is for semantic and detection crops"):
        build_dataset(records, classes, "instances", window=32, augmentation=augmentation)
