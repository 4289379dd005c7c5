"""Mask R-CNN parts against hand-worked values and references, and a tiny model that learns
synthetic discs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import keras
import keras_cv
import numpy as np
import pytest
import tensorflow as tf

from emdl.models.maskrcnn import MaskRCNN, MaskRCNNConfig, build_maskrcnn
from emdl.models.maskrcnn.anchors import base_anchors, grid_anchors
from emdl.models.maskrcnn.box_coder import decode, encode, pairwise_iou
from emdl.models.maskrcnn.config import LEVELS
from emdl.models.maskrcnn.roi_align import align_level, box_levels, roi_align
from emdl.models.maskrcnn.targets import mask_targets, roi_targets, rpn_targets, sample
from emdl.predict.masks import instances_from_masks
from emdl.train.config import TrainingConfig
from emdl.train.optimizer import build_optimizer
from tests.conftest import TINY


def bilinear(feature: np.ndarray, y: float, x: float) -> np.ndarray:
    """torchvision's ROI Align sample: 0 beyond one pixel outside, else edge-clamped bilinear at
    pixel-index coordinates (y, x)."""
    height, width = feature.shape[:2]
    if y < -1 or y > height or x < -1 or x > width:
        return np.zeros(feature.shape[-1])
    y, x = min(max(y, 0), height - 1), min(max(x, 0), width - 1)
    y0, x0 = math.floor(y), math.floor(x)
    y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
    ly, lx = y - y0, x - x0
    return (
        (1 - ly) * (1 - lx) * feature[y0, x0]
        + (1 - ly) * lx * feature[y0, x1]
        + ly * (1 - lx) * feature[y1, x0]
        + ly * lx * feature[y1, x1]
    )


def roi_align_reference(feature, box, size: int, ratio: int) -> np.ndarray:
    """ROI Align (aligned=True) of one "yxyx" box in feature-map coordinates, in plain NumPy."""
    y0, x0, y1, x1 = np.asarray(box, np.float64) - 0.5
    bin_h, bin_w = (y1 - y0) / size, (x1 - x0) / size
    out = np.zeros((size, size, feature.shape[-1]))
    for i in range(size):
        for j in range(size):
            points = [
                bilinear(
                    feature,
                    y0 + i * bin_h + (a + 0.5) * bin_h / ratio,
                    x0 + j * bin_w + (b + 0.5) * bin_w / ratio,
                )
                for a in range(ratio)
                for b in range(ratio)
            ]
            out[i, j] = np.mean(points, axis=0)
    return out


def test_roi_align_matches_a_numpy_bilinear_reference():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 9, 11, 3)).astype(np.float32)
    stride = 4
    # Feature-map boxes: inside, fractional, reaching over every edge, tiny, and in image 1.
    boxes = np.array(
        [
            [1, 2, 6, 9],
            [0.3, 0.7, 4.9, 3.2],
            [-2.5, -1.5, 3, 4],
            [5, 7, 10.5, 12.8],
            [4, 4, 4.2, 4.3],
        ],
        np.float32,
    )
    indices = np.array([0, 1, 0, 1, 1], np.int32)
    for size, ratio in ((7, 2), (5, 1), (3, 3)):
        out = align_level(
            tf.constant(features),
            tf.constant(boxes * stride),
            tf.constant(indices),
            stride,
            size,
            ratio,
        ).numpy()
        for k, (box, index) in enumerate(zip(boxes, indices, strict=True)):
            expected = roi_align_reference(features[index], box, size, ratio)
            np.testing.assert_allclose(out[k], expected, atol=1e-5, err_msg=f"box {k}, size {size}")


def test_each_box_is_read_from_the_level_its_size_picks():
    # floor(4 + log2(side / 224)) clipped to 2..5: sides 40, 120, 250, 460 give 2, 3, 4, 5.
    boxes = tf.constant(
        [[[0, 0, 40, 40], [10, 10, 130, 130], [0, 100, 250, 350], [20, 30, 480, 490]]], tf.float32
    )
    np.testing.assert_array_equal(box_levels(boxes).numpy(), [[2, 3, 4, 5]])
    # A pyramid whose level l is the constant l: every aligned value names its level.
    pyramid = [tf.fill((1, 512 // 2**level, 512 // 2**level, 2), float(level)) for level in LEVELS]
    aligned = roi_align(pyramid, boxes, 7).numpy()
    assert aligned.shape == (1, 4, 7, 7, 2)
    np.testing.assert_array_equal(aligned[0, :, 3, 3, 0], [2, 3, 4, 5])
    np.testing.assert_allclose(aligned.min(axis=(2, 3, 4))[0], [2, 3, 4, 5])


def test_anchors_match_keras_cv_anchor_generator_on_a_whole_image():
    config = MaskRCNNConfig()
    generator = keras_cv.layers.AnchorGenerator(
        bounding_box_format="yxyx",
        sizes={f"P{level}": size for level, size in zip(LEVELS, config.anchor_sizes, strict=True)},
        scales=[1.0],
        aspect_ratios=list(config.aspect_ratios),
        strides={f"P{level}": 2**level for level in LEVELS},
    )
    expected = generator(image_shape=(64, 96, 1))
    for level, base in zip(LEVELS, base_anchors(config), strict=True):
        stride = 2**level
        ours = grid_anchors(base, stride, 64 // stride, 96 // stride).numpy()
        np.testing.assert_allclose(ours, np.asarray(expected[f"P{level}"]), atol=1e-4)
    # The level-2 anchors of the first cell: 16-pixel boxes of aspect 0.5, 1, 2 centred on (2, 2).
    half_h = 8 / np.sqrt([0.5, 1.0, 2.0])
    half_w = 8 * np.sqrt([0.5, 1.0, 2.0])
    first = np.stack([2 - half_h, 2 - half_w, 2 + half_h, 2 + half_w], axis=-1)
    np.testing.assert_allclose(base_anchors(config)[0].numpy(), first, atol=1e-5)


def test_box_deltas_round_trip_and_iou_is_exact():
    reference = tf.constant([[0, 0, 10, 10], [5, 5, 25, 45]], tf.float32)
    boxes = tf.constant([[2, 1, 12, 21], [0, 0, 5, 5]], tf.float32)
    deltas = encode(reference, boxes, (10.0, 10.0, 5.0, 5.0))
    np.testing.assert_allclose(deltas[0].numpy(), [2, 6, 0, 5 * math.log(2)], atol=1e-5)
    np.testing.assert_allclose(
        decode(reference, deltas, (10.0, 10.0, 5.0, 5.0)).numpy(), boxes.numpy(), atol=1e-4
    )
    iou = pairwise_iou(reference, boxes[None]).numpy()[0]
    np.testing.assert_allclose(iou, [[72 / 228, 25 / 100], [112 / 888, 0]], atol=1e-6)


# Hand-made anchors ("yxyx") against object A = [0, 0, 10, 10] and B = [100, 100, 110, 110].
ANCHORS = np.array(
    [
        [0, 0, 9, 10],  # IoU 0.9 with A, though not A's best anchor
        [0, 0, 10, 10],  # IoU 1 with A
        [0, 0, 10, 20],  # IoU 0.5 with A: ignored
        [0, 5, 10, 25],  # IoU 0.2 with A: negative
        [50, 50, 60, 60],  # nothing: negative
        [100, 100, 110, 125],  # IoU 0.4 with B, yet B's best anchor: positive
    ],
    np.float32,
)


def test_anchors_are_assigned_by_iou_and_each_object_gets_its_best_anchor():
    boxes = tf.constant([[[0, 0, 10, 10], [100, 100, 110, 110], [-1, -1, -1, -1]]], tf.float32)
    valid = tf.constant([[True, True, False]])
    config = SimpleNamespace(rpn_batch=100, rpn_positive_fraction=1.0)
    targets = rpn_targets(tf.constant(ANCHORS), boxes, valid, config)
    np.testing.assert_array_equal(targets["labels"].numpy(), [[1, 1, 0, 0, 0, 1]])
    np.testing.assert_array_equal(targets["weights"].numpy(), [[1, 1, 0, 1, 1, 1]])
    deltas = targets["deltas"].numpy()[0]
    np.testing.assert_allclose(deltas[1], 0, atol=1e-6)
    np.testing.assert_allclose(deltas[0], [0.5 / 9, 0, math.log(10 / 9), 0], atol=1e-6)
    np.testing.assert_allclose(deltas[5], [0, -7.5 / 25, 0, math.log(10 / 25)], atol=1e-6)


def test_an_image_without_objects_has_only_negative_anchors():
    boxes = -tf.ones((1, 2, 4))
    config = SimpleNamespace(rpn_batch=4, rpn_positive_fraction=0.5)
    targets = rpn_targets(tf.constant(ANCHORS), boxes, tf.zeros((1, 2), bool), config)
    assert targets["labels"].numpy().sum() == 0 and targets["weights"].numpy().sum() == 4


def test_sampling_caps_the_positives_and_fills_with_negatives():
    positive = tf.constant([[True] * 10 + [False] * 100, [True] * 2 + [False] * 108])
    negative = ~positive
    chosen_positive, chosen_negative = sample(positive, negative, 16, 0.25, seed=1)
    np.testing.assert_array_equal(tf.reduce_sum(tf.cast(chosen_positive, tf.int32), 1), [4, 2])
    np.testing.assert_array_equal(tf.reduce_sum(tf.cast(chosen_negative, tf.int32), 1), [12, 14])
    assert not (chosen_positive.numpy() & ~positive.numpy()).any()
    assert not (chosen_negative.numpy() & positive.numpy()).any()


def test_regions_get_classes_deltas_and_mask_targets():
    masks = np.zeros((1, 2, 32, 32), np.uint8)
    masks[0, 0, 8:24, 8:24] = 1
    boxes = tf.constant([[[8, 8, 24, 24], [-1, -1, -1, -1]]], tf.float32)
    proposals = tf.constant(
        [[[8, 8, 24, 24], [9, 9, 25, 25], [0, 0, 4, 4], [-1, -1, -1, -1]]], tf.float32
    )
    config = SimpleNamespace(roi_batch=6, roi_positive_fraction=0.5)
    targets = roi_targets(
        proposals,
        boxes,
        tf.constant([[1, -1]]),
        tf.constant(masks),
        tf.constant([[True, False]]),
        config,
    )
    labels, weights = targets["labels"].numpy()[0], targets["weights"].numpy()[0]
    # Three positives (two proposals and the object's own box, class 1 -> label 2), one
    # negative; the padding proposal and the padding object are neither.
    np.testing.assert_array_equal(labels, [2, 2, 2, 0, 0, 0])
    np.testing.assert_array_equal(weights, [1, 1, 1, 1, 0, 0])
    rois = targets["rois"].numpy()[0]
    exact = [k for k in range(3) if (rois[k] == [8, 8, 24, 24]).all()]
    assert len(exact) == 2
    for k in exact:
        np.testing.assert_allclose(targets["deltas"].numpy()[0, k], 0, atol=1e-6)
        assert targets["masks"].numpy()[0, k].all()
    # A region twice the object's size: the mask fills the cells whose centres lie on it.
    region = tf.constant([[[0, 0, 32, 32]]], tf.float32)
    target = mask_targets(tf.constant(masks), tf.constant([[0]]), region).numpy()[0, 0]
    centres = (np.arange(28) + 0.5) * 32 / 28
    inside = (centres >= 8) & (centres <= 24)
    np.testing.assert_array_equal(target, np.outer(inside, inside).astype(np.float32))


def discs(count: int, size: int = 64, seed: int = 0):
    """Images of 1-3 bright discs of radius 6-12 on noise, with their instance targets."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.2, 0.05, (count, size, size, 1)).astype(np.float32)
    boxes = -np.ones((count, 3, 4), np.float32)
    classes = -np.ones((count, 3), np.float32)
    masks = np.zeros((count, 3, size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size] + 0.5
    for b in range(count):
        for m in range(rng.integers(1, 4)):
            r = rng.uniform(6, 12)
            cy, cx = rng.uniform(r, size - r, 2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            if (masks[b, :m] & disc).any():
                continue
            masks[b, m] = disc
            images[b, disc, 0] = 0.8
            ys, xs = np.nonzero(disc)
            boxes[b, m] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            classes[b, m] = 0
    return np.clip(images, 0, 1), {"boxes": boxes, "classes": classes, "masks": masks}


@pytest.fixture(scope="module")
def trained():
    """The tiny model after 60 steps on eight disc images, and its loss history."""
    keras.utils.set_random_seed(0)
    model = build_maskrcnn(TINY)
    model.compile(
        optimizer=build_optimizer(TrainingConfig(learning_rate=3e-3, epochs=1, steps_per_epoch=60))
    )
    images, targets = discs(8)
    history = []
    for step in range(60):
        batch = slice(4 * (step % 2), 4 * (step % 2) + 4)
        logs = model.train_on_batch(
            images[batch], {key: value[batch] for key, value in targets.items()}, return_dict=True
        )
        history.append(logs)
    return model, images, targets, history


@pytest.mark.slow
def test_a_tiny_model_learns_discs_every_loss_falls(trained):
    _, _, _, history = trained
    model_losses = ("loss", "rpn_class", "class", "mask")
    for name in model_losses:
        # Keras averages the logged losses over the steps so far: compare the step values.
        first = history[1][name]
        last = history[-1][name]
        assert last < 0.7 * first, (name, first, last)


@pytest.mark.slow
def test_inference_masks_overlap_the_discs(trained):
    model, images, targets, _ = trained
    out = model.predict_on_batch(images[:4])
    assert out["masks"].shape == (4, 20, 28, 28) and out["boxes"].shape == (4, 20, 4)
    for b in range(4):
        n = int(out["num_detections"][b])
        assert n >= 1
        found = instances_from_masks(
            out["masks"][b, :n],
            out["boxes"][b, :n],
            out["classes"][b, :n],
            out["confidence"][b, :n],
            64,
            64,
            score_threshold=0.5,
        )
        truth = targets["masks"][b][targets["classes"][b] >= 0].astype(bool)
        assert len(found) >= len(truth)
        # Ranked by confidence, the first len(truth) instances are the discs, one each. After 60
        # steps a stray low-confidence instance may pass 0.5 (seen at 0.57 to 0.70 over seeds),
        # so the check is on the ranking, not on a fixed threshold.
        top = np.argsort(-found.scores, kind="stable")[: len(truth)]
        ious = np.array(
            [
                [(own & disc).sum() / (own | disc).sum() for disc in truth]
                for own in (found.labels == i + 1 for i in top)
            ]
        )
        assert (ious.max(axis=1) > 0.5).all(), (ious, found.scores)
        assert sorted(ious.argmax(axis=1).tolist()) == list(range(len(truth))), ious


@pytest.mark.slow
def test_save_and_load_give_identical_outputs(trained, tmp_path):
    model, images, _, _ = trained
    path = tmp_path / "maskrcnn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, MaskRCNN) and loaded.settings == TINY
    before, after = model.predict_on_batch(images[:2]), loaded.predict_on_batch(images[:2])
    # Same detections; coordinates to float32 rounding (threaded CPU kernels may sum in a
    # different order from call to call).
    for key in ("classes", "num_detections"):
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    for key in ("boxes", "confidence", "masks"):
        np.testing.assert_allclose(before[key], after[key], rtol=1e-5, atol=1e-4, err_msg=key)
    rebuilt = MaskRCNN.from_config(model.get_config())
    rebuilt(tf.zeros((1, 64, 64, 1)))
    rebuilt.set_weights(model.get_weights())
    again = rebuilt.predict_on_batch(images[:2])
    np.testing.assert_allclose(before["masks"], again["masks"], atol=1e-4)


@pytest.mark.slow
def test_it_trains_under_mixed_precision_as_on_gpus():
    # choose_strategy sets mixed_float16 on GPUs; boxes must stay float32 through keras-cv's NMS.
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_maskrcnn(TINY)
        model.compile(optimizer=build_optimizer(TrainingConfig(epochs=1, steps_per_epoch=2)))
        images, targets = discs(4, seed=1)
        logs = model.train_on_batch(images, targets, return_dict=True)
        out = model.predict_on_batch(images)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(logs["loss"]) and logs["loss"] > 0
    assert out["boxes"].dtype == out["masks"].dtype == np.float32


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"filters": (32, 64, 128, 256)}, "basic_block"),
        ({"anchor_sizes": (16, 32)}, "anchor_sizes"),
        ({"tile": 100}, "tile must divide by 32"),
        ({"roi_positive_fraction": 0}, "roi_positive_fraction"),
        ({"score_threshold": 1.0}, "score_threshold"),
        ({"scale": 0}, "scale"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        MaskRCNNConfig(**settings)


def test_a_model_without_classes_or_with_unknown_losses_is_refused():
    with pytest.raises(ValueError, match="classes >= 1"):
        MaskRCNN(MaskRCNNConfig())
    with pytest.raises(ValueError, match="terms must be among"):
        MaskRCNN(TINY, {"dice": 1.0})
