"""emdl.data.datasets: crops and targets stay aligned, seeds repeat, bad settings fail early."""

from __future__ import annotations

import numpy as np
import pytest

from emdl.data import (
    Augmentation,
    build_dataset,
    load_labeled_images,
    split_by_image,
    window_starts,
)
from emdl.errors import InputError
from tests.conftest import box_image, box_xml

GEOMETRY = ("flip_horizontal", "flip_vertical", "rotate90", "rotate")


def take(dataset, batches: int) -> list:
    return [batch for _, batch in zip(range(batches), dataset, strict=False)]


@pytest.fixture
def one_image(labeled_folder):
    return load_labeled_images(*labeled_folder({"a.png": (box_image(64), box_xml("a.png", 64))}))


def test_geometry_and_jitter_keep_image_and_mask_aligned(one_image):
    records, classes = one_image
    spec = {name: {"probability": 0.7} for name in GEOMETRY}
    spec |= {"zoom": {"probability": 0.7, "range": [1.0, 1.5]}, "jitter": {"range": [0, 3]}}
    augmentation = Augmentation.from_dict(spec, interpolation="nearest")
    dataset = build_dataset(
        records, classes, "semantic", window=32, augmentation=augmentation, seed=3
    )
    seen_jitter = False
    for images, masks in take(dataset, 4):
        # The image is its own mask, so any misalignment shows as a difference.
        assert np.array_equal(images.numpy(), masks.numpy().astype(np.float32))
        edges = np.abs(np.diff(masks.numpy()[..., 0], axis=2)).sum(axis=2)
        seen_jitter |= bool((edges != edges[:, :1]).any())
    assert seen_jitter


def test_boxes_after_flips_and_quarter_turns_equal_the_boxes_of_the_masks(one_image):
    records, classes = one_image
    augmentation = Augmentation.from_dict({name: {} for name in GEOMETRY[:3]})
    settings = {"window": 64, "augmentation": augmentation, "seed": 5, "shuffle_buffer": 1}
    detection = take(build_dataset(records, classes, "detection", **settings), 3)
    instances = take(build_dataset(records, classes, "instances", **settings), 3)
    for (_, boxes), (_, shapes) in zip(detection, instances, strict=True):
        assert boxes["boxes"].to_list() == shapes["boxes"].to_list()
        assert boxes["classes"].to_list() == shapes["classes"].to_list()
    assert len({str(b["boxes"].to_list()) for _, b in detection}) > 1  # the crops were turned


def test_rotated_boxes_enclose_the_rotated_masks(one_image):
    records, classes = one_image
    augmentation = Augmentation.from_dict({"rotate": {"probability": 1.0, "range": [20, 40]}})
    settings = {"window": 32, "augmentation": augmentation, "seed": 2, "min_visible": 0.0}
    settings["shuffle_buffer"] = 1
    detection = take(build_dataset(records, classes, "detection", **settings), 2)
    instances = take(build_dataset(records, classes, "instances", **settings), 2)
    for (_, boxes), (_, shapes) in zip(detection, instances, strict=True):
        for outer, inner in zip(boxes["boxes"].to_list(), shapes["boxes"].to_list(), strict=True):
            # A sliver of a turned box may hold no mask pixel, so match by enclosure.
            for x0, y0, x1, y1 in inner:
                assert any(
                    b[0] <= x0 + 1 and b[1] <= y0 + 1 and b[2] >= x1 - 1 and b[3] >= y1 - 1
                    for b in outer
                )


def test_same_seed_same_batches_other_seed_other_batches(one_image):
    records, classes = one_image

    def batches(seed: int) -> list[np.ndarray]:
        dataset = build_dataset(
            records, classes, "instances", window=32, augmentation=Augmentation.default(), seed=seed
        )
        return [
            np.concatenate([images.numpy().ravel(), targets["boxes"].flat_values.numpy().ravel()])
            for images, targets in take(dataset, 3)
        ]

    first, again, other = batches(11), batches(11), batches(12)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_training_and_validation_crops_come_from_their_own_images(labeled_folder):
    train_boxes = [(4, 4, 20, 20)]
    images = {f"t{i}.png": (box_image(64), box_xml(f"t{i}.png", 64)) for i in range(3)}
    images |= {
        f"v{i}.png": (box_image(64, train_boxes), box_xml(f"v{i}.png", 64, train_boxes, "loop"))
        for i in range(3)
    }
    records, classes = load_labeled_images(*labeled_folder(images))
    training, validation = split_by_image(records, 0.5, seed=0)
    # Which images hold out is the split's choice; each crop must come from its own side.
    sides = {r.name: {"bubble": 1, "loop": 2}[r.annotation.shapes[0].label] for r in records}
    for part in (training, validation):
        allowed = {0} | {sides[r.name] for r in part}
        for kind_training in (True, False):
            dataset = build_dataset(
                part, classes, "semantic", window=32, training=kind_training, batch_size=16
            )
            for _, masks in take(dataset, 2):
                assert set(np.unique(masks.numpy())) <= allowed


def test_window_starts_cover_the_axis():
    assert window_starts(512, 256, 128).tolist() == [0, 128, 256]
    assert window_starts(500, 256, 128).tolist() == [0, 128, 244]
    assert window_starts(256, 256, 64).tolist() == [0]


def test_sliding_windows_are_exact_slices(one_image):
    records, classes = one_image
    dataset = build_dataset(records, classes, "semantic", window=32, stride=16, training=False)
    images = np.concatenate([images.numpy() for images, _ in dataset])
    assert images.shape == (9, 32, 32, 1)
    full = box_image(64) / 255
    expected = [full[t : t + 32, c : c + 32] for t in (0, 16, 32) for c in (0, 16, 32)]
    assert np.array_equal(images[..., 0], np.array(expected, dtype=np.float32))


def test_only_the_training_pipeline_is_autotuned(one_image):
    # Keras drops the validation iterator at each evaluation's start and its destructor waits
    # for the autotuning thread (benchmarks/epoch_time.py): the windows go without it.
    records, classes = one_image
    options = {
        training: build_dataset(
            records, classes, "semantic", window=32, training=training
        ).options()
        for training in (True, False)
    }
    assert options[True].autotune.enabled is not False
    assert options[False].autotune.enabled is False
    assert options[False].deterministic and options[False].threading.max_intra_op_parallelism == 1


def test_distance_masks_carry_the_object_distance_beside_the_classes(one_image):
    from emdl.labels import object_distance, semantic_mask

    records, classes = one_image
    dataset = build_dataset(
        records, classes, "semantic", window=32, stride=32, training=False, distance=True
    )
    masks = np.concatenate([masks.numpy() for _, masks in dataset])
    assert masks.shape == (4, 32, 32, 2) and masks.dtype == np.int32
    annotation = records[0].annotation
    whole = np.stack(
        [semantic_mask(annotation, classes), np.rint(255 * object_distance(annotation))], -1
    )
    expected = [whole[t : t + 32, c : c + 32] for t in (0, 32) for c in (0, 32)]
    assert np.array_equal(masks, np.array(expected, dtype=np.int32))
    assert masks[..., 1].max() == 255


def test_objects_cut_by_the_window_are_clipped_or_dropped(labeled_folder):
    boxes = [(24, 4, 40, 12)]
    records, classes = load_labeled_images(
        *labeled_folder({"a.png": (box_image(64, boxes), box_xml("a.png", 64, boxes))})
    )

    def first_row_boxes(min_visible: float) -> list:
        dataset = build_dataset(
            records,
            classes,
            "detection",
            window=32,
            stride=32,
            training=False,
            batch_size=4,
            min_visible=min_visible,
        )
        _, targets = next(iter(dataset))
        return targets["boxes"].to_list()[:2]

    assert first_row_boxes(0.5) == [[[24, 4, 32, 12]], [[0, 4, 8, 12]]]
    assert first_row_boxes(0.6) == [[], []]


def test_empty_crops_kept_dropped_or_thinned(one_image):
    records, classes = one_image

    def count(empty_crops) -> tuple[int, int]:
        dataset = build_dataset(
            records,
            classes,
            "detection",
            window=16,
            stride=8,
            training=False,
            empty_crops=empty_crops,
            batch_size=64,
        )
        sizes = [len(row) for _, t in dataset for row in t["classes"].to_list()]
        return len(sizes), sum(size == 0 for size in sizes)

    total, empty = count("keep")
    assert total == 49 and empty > 5
    assert count("drop") == (total - empty, 0)
    kept, kept_empty = count(0.5)
    assert kept == total - empty + kept_empty and 0 < kept_empty < empty


def test_formats_and_dense_padding(one_image):
    records, classes = one_image
    dataset = build_dataset(
        records,
        classes,
        "instances",
        window=64,
        training=False,
        batch_size=1,
        bounding_box_format="center_xywh",
        max_boxes=6,
    )
    _, targets = next(iter(dataset))
    assert targets["boxes"].shape == (1, 6, 4)
    assert targets["masks"].shape == (1, 6, 64, 64)
    assert targets["boxes"].numpy()[0, 0].tolist() == [12, 10, 16, 8]
    assert targets["classes"].numpy()[0].tolist() == [0, 0, 0, 0, -1, -1]
    assert targets["boxes"].numpy()[0, 5].tolist() == [-1, -1, -1, -1]


def test_boxes_padded_to_the_batch_hold_every_box_of_its_busiest_crop(one_image):
    records, classes = one_image
    # Windows of 32 with stride 32: the four windows of the 64 x 64 image, two crops a batch.
    common = {"window": 32, "stride": 32, "training": False, "batch_size": 2, "min_visible": 0.0}
    ragged = list(build_dataset(records, classes, "detection", **common))
    dense = list(build_dataset(records, classes, "detection", max_boxes="batch", **common))
    assert len(dense) == len(ragged) == 2
    for (_, raw), (_, padded) in zip(ragged, dense, strict=True):
        most = max(1, int(raw["classes"].row_lengths().numpy().max()))
        assert padded["boxes"].shape[1] == padded["classes"].shape[1] == most
        for row in range(2):
            boxes = raw["boxes"][row].numpy()
            assert np.array_equal(padded["boxes"].numpy()[row, : len(boxes)], boxes)
            assert (padded["boxes"].numpy()[row, len(boxes) :] == -1).all()
            assert (padded["classes"].numpy()[row, len(boxes) :] == -1).all()
    assert [padded["classes"].shape[1] for _, padded in dense] == [2, 2]


def test_a_batch_without_boxes_is_padded_to_one_empty_box(one_image):
    records, classes = one_image
    # Only whole boxes count: the window at (32, 32) holds none.
    common = {"window": 32, "stride": 32, "training": False, "batch_size": 1, "min_visible": 1.0}
    batches = list(build_dataset(records, classes, "detection", max_boxes="batch", **common))
    shapes = [targets["boxes"].shape for _, targets in batches]
    assert shapes == [(1, 1, 4)] * 4
    assert batches[3][1]["boxes"].numpy().tolist() == [[[-1, -1, -1, -1]]]
    assert batches[3][1]["classes"].numpy().tolist() == [[-1]]


@pytest.mark.parametrize("max_boxes", [0, -2, "most", 2.5, True])
def test_a_bad_max_boxes_is_refused_while_building(one_image, max_boxes):
    records, classes = one_image
    with pytest.raises(ValueError, match="max_boxes must be a positive number or 'batch'"):
        build_dataset(records, classes, "detection", window=32, max_boxes=max_boxes)


def test_images_of_different_sizes_share_a_data_set(labeled_folder):
    records, classes = load_labeled_images(
        *labeled_folder(
            {
                "small.png": (box_image(64), box_xml("small.png", 64)),
                "large.png": (box_image(96), box_xml("large.png", 96)),
            }
        )
    )
    dataset = build_dataset(records, classes, "semantic", window=32, training=False, batch_size=64)
    images, masks = next(iter(dataset))
    assert images.shape == (9 + 25, 32, 32, 1)
    assert masks.shape == (34, 32, 32, 1)


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"window": 65}, InputError, "image is 64 x 64, smaller than the 65 x 65 crop window"),
        ({"stride": 0}, ValueError, "stride must be a positive number of pixels, got 0"),
        ({"stride": -8}, ValueError, "stride must be a positive number of pixels, got -8"),
        ({"window": 0}, ValueError, "window must be a positive number of pixels, got 0"),
        ({"empty_crops": "some"}, ValueError, "empty_crops must be 'keep', 'drop' or a rate"),
        ({"empty_crops": 1.5}, ValueError, "empty_crops must be 'keep', 'drop' or a rate"),
        ({"min_visible": 2}, ValueError, "min_visible must be in [0, 1], got 2"),
    ],
)
def test_bad_settings_fail_when_the_pipeline_is_built(one_image, settings, error, message):
    records, classes = one_image
    with pytest.raises(error) as raised:
        build_dataset(records, classes, "semantic", **settings)
    assert message in str(raised.value)


def test_unknown_kind(one_image):
    with pytest.raises(ValueError, match="unknown target 'panoptic'"):
        build_dataset(*one_image, "panoptic")
