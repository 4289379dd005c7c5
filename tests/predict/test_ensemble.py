"""Ensembles of stand-in models whose outputs are known exactly: one member is that member,
two U-Nets' probabilities average to a known map, two detectors' boxes fuse as the views of
test-time augmentation do, and the members' agreement counts who finds what."""

from __future__ import annotations

import numpy as np
import pytest

from emdl.predict import Instances, instances_from_probabilities, predict_image
from emdl.predict.ensemble import Ensemble, average_pixels, member_agreement, merge_detections


class Scaled:
    """A stand-in U-Net: the foreground probability of a pixel is ``factor`` x its value."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def predict_on_batch(self, tiles: np.ndarray) -> np.ndarray:
        return (self.factor * tiles).astype(np.float32)


class Fixed:
    """A stand-in detector that finds the same ``(box, score)`` pairs in every tile."""

    def __init__(self, found) -> None:
        self.found = found

    def predict_on_batch(self, tiles: np.ndarray) -> dict:
        b, k = len(tiles), len(self.found)
        return {
            "boxes": np.float32([[box for box, _ in self.found]] * b).reshape(b, k, 4),
            "classes": np.zeros((b, k), np.int32),
            "confidence": np.float32([[score for _, score in self.found]] * b).reshape(b, k),
            "num_detections": np.full(b, k, np.int32),
        }


def picture() -> np.ndarray:
    """64 x 64: a 1.0 square (rows and columns 8..23), a 0.7 square (40..55), 0 elsewhere."""
    image = np.zeros((64, 64), np.float32)
    image[8:24, 8:24] = 1.0
    image[40:56, 40:56] = 0.7
    return image


def probabilities(model, image: np.ndarray) -> np.ndarray:
    return predict_image(model.predict_on_batch, image, tile=64, overlap=16)


def test_an_ensemble_of_one_is_its_member():
    image = picture()
    pixels = Ensemble([Scaled(0.9)], pixels=True)
    np.testing.assert_array_equal(probabilities(pixels, image), probabilities(Scaled(0.9), image))
    detector = Fixed([((10, 10, 30, 30), 0.8), ((40, 40, 50, 50), 0.4)])
    tiles = np.zeros((2, 64, 64, 1), np.float32)
    alone, merged = detector.predict_on_batch(tiles), Ensemble([detector], pixels=False)
    for key, value in merged.predict_on_batch(tiles).items():
        np.testing.assert_array_equal(value, alone[key], err_msg=key)


def test_two_unets_average_to_the_known_map_and_its_instances():
    # 0.9 x and 0.3 x the image average to 0.6 x: the bright square at 0.6 is a defect at
    # threshold 0.5, the dim one at 0.42 is not (member 0.9 alone finds both, 0.3 neither).
    image = picture()
    ensemble = Ensemble([Scaled(0.9), Scaled(0.3)], pixels=True)
    averaged = probabilities(ensemble, image)
    np.testing.assert_allclose(averaged, probabilities(Scaled(0.6), image), atol=1e-6)
    found = instances_from_probabilities(averaged, threshold=0.5)
    assert len(found) == 1
    np.testing.assert_array_equal(found.labels > 0, image == 1.0)
    np.testing.assert_array_equal(found.boxes, [[8, 8, 24, 24]])


def test_two_detectors_fuse_as_the_views_do():
    first = Fixed([((10, 10, 30, 30), 0.8)])
    second = Fixed([((12, 10, 32, 30), 0.6), ((40, 40, 50, 50), 0.4)])
    out = Ensemble([first, second], pixels=False, iou_threshold=0.5).predict_on_batch(
        np.zeros((1, 64, 64, 1), np.float32)
    )
    assert out["num_detections"].tolist() == [2]
    # The score-weighted box; a score is the mean over both members, a miss counting 0.
    box = (0.8 * np.array([10, 10, 30, 30]) + 0.6 * np.array([12, 10, 32, 30])) / 1.4
    np.testing.assert_allclose(out["boxes"][0], [box, [40, 40, 50, 50]], rtol=1e-6)
    np.testing.assert_allclose(out["confidence"][0], [0.7, 0.2], rtol=1e-6)


def test_members_of_other_outputs_or_none_are_refused():
    with pytest.raises(ValueError, match="at least one member"):
        average_pixels([])
    with pytest.raises(ValueError, match="at least one member"):
        merge_detections([])
    two = average_pixels([lambda t: np.zeros((1, 8, 8, 1)), lambda t: np.zeros((1, 8, 8, 2))])
    with pytest.raises(ValueError, match="outputs of different shapes"):
        two(np.zeros((1, 8, 8, 1), np.float32))


def boxes(*found) -> Instances:
    n = len(found)
    return Instances(
        None,
        np.float32(found).reshape(n, 4),
        np.zeros(n, np.int32),
        np.ones(n, np.float32),
        np.zeros(n, bool),
        64,
        64,
    )


def test_the_agreement_is_the_share_of_members_finding_each_defect():
    ensemble = boxes((0, 0, 10, 10), (20, 20, 30, 30))
    members = [
        lambda image: boxes((0, 0, 10, 10), (20, 20, 30, 30)),
        lambda image: boxes((0, 0, 10, 11), (50, 50, 60, 60)),  # IoU 10/11 with the first
        lambda image: boxes(),
    ]
    agreed = member_agreement(lambda image: ensemble, members, picture())
    np.testing.assert_allclose(agreed.agreement, [2 / 3, 1 / 3])
    assert agreed.unexplained == pytest.approx(1 / 3)
    # (1/3 + 2/3 + 1/3) / (2 + 1/3)
    assert agreed.image_uncertainty == pytest.approx((4 / 3) / (7 / 3))
