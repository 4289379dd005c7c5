"""emdl.predict.uncertainty: views of a model that sees the same defects however the image is
turned agree; a model biased in its own orientation disagrees by exactly known amounts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from emdl.predict.instances import Instances, instances_from_probabilities
from emdl.predict.uncertainty import view_agreement


def masks(image: np.ndarray) -> Instances:
    """An orientation-blind model: the bright pixels' connected components."""
    return instances_from_probabilities(image[..., None].astype(np.float32), threshold=0.5)


def boxes(image: np.ndarray) -> Instances:
    """An orientation-blind detector: the box of each bright component."""
    labels, count = ndi.label(image > 0.5)
    found = [(c.start, r.start, c.stop, r.stop) for r, c in ndi.find_objects(labels)]
    h, w = image.shape
    return Instances(
        None,
        np.float32(found).reshape(-1, 4),
        np.zeros(count, np.int32),
        np.ones(count, np.float32),
        np.zeros(count, bool),
        h,
        w,
    )


def shifted(predict, dx: int):
    """``predict`` with its defects moved ``dx`` pixels right in the image it is given: a bias
    in the model's own orientation, which the views undo in different directions."""

    def biased(image):
        found = predict(image)
        if found.labels is None:
            moved = found.boxes + np.float32([dx, 0, dx, 0])
            return Instances(
                None,
                moved,
                *[getattr(found, k) for k in ("classes", "scores")],
                found.touches_edge,
                found.height,
                found.width,
            )
        labels = np.zeros_like(found.labels)
        labels[:, dx:] = found.labels[:, : found.width - dx]
        return Instances(
            labels,
            found.boxes,
            found.classes,
            found.scores,
            found.touches_edge,
            found.height,
            found.width,
        )

    return biased


@pytest.fixture
def image():
    """A 40 x 64 image (not square) with one 6 x 14 defect and one 20 x 20 one."""
    pixels = np.zeros((40, 64), np.float32)
    pixels[5:11, 3:17] = 1
    pixels[12:32, 30:50] = 1
    return pixels


@pytest.mark.parametrize("predict", [masks, boxes])
def test_an_orientation_blind_model_agrees_with_itself(image, predict):
    found = view_agreement(predict, image)
    assert len(found.instances) == 2
    assert found.agreement.tolist() == [1.0, 1.0]
    assert (found.unexplained, found.image_uncertainty) == (0.0, 0.0)
    assert found.object_uncertainty.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("predict", [masks, boxes])
def test_a_biased_model_disagrees_on_small_defects(image, predict):
    # Every view's defects land 2 pixels right in that view's own orientation. Mapped back, the
    # identity and the up-down flip put them 2 pixels right, as in the prediction; the left-right
    # flip and the half turn 2 pixels left (4 from the prediction along x); the four views with
    # an odd number of quarter turns 2 pixels up or down (2 + 2 diagonally from it).
    # The 20 x 20 defect: IoU 16/24 along x and 18 * 18 / (800 - 324) diagonally, all >= 0.5.
    # The 6 x 14 one: IoU 10/18 along x, but 12 * 4 / (168 - 48) = 0.4 diagonally: 4 of 8 views.
    found = view_agreement(shifted(predict, 2), image)
    assert found.agreement.tolist() == [0.5, 1.0]
    assert found.object_uncertainty.tolist() == [0.5, 0.0]
    # Those four views' small defects match nothing: 4 / 8 unexplained per view.
    assert found.unexplained == 0.5
    assert found.image_uncertainty == pytest.approx((0.5 + 0.0 + 0.5) / (2 + 0.5))


def test_an_image_without_defects_is_certain():
    found = view_agreement(masks, np.zeros((16, 24), np.float32))
    assert (len(found.instances), found.unexplained, found.image_uncertainty) == (0, 0.0, 0.0)
