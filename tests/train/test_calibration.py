"""emdl.train.calibration: post-processing chosen on validation images."""

from __future__ import annotations

import numpy as np

from emdl.data import load_labeled_images
from emdl.models.unet import UNetConfig
from emdl.train.calibration import (
    calibrate,
    calibrated_config,
    calibration_line,
    candidates,
    read_calibration,
    write_calibration,
)
from emdl.train.config import DataConfig, RunConfig
from tests.conftest import BOXES, box_xml


class PlantedUNet:
    """A stand-in U-Net whose probabilities are the image itself: the one tile of a 64 x 64
    image, min-max scaled by the tiling, is scaled back (the image's maximum is 0.75)."""

    calls = 0

    def predict_on_batch(self, tiles):
        PlantedUNet.calls += 1
        return tiles * 0.75


def planted_image() -> np.ndarray:
    """The labeled boxes at 0.75 inside a 2-pixel halo at 0.62 (too fat below 0.62) and
    specks of 4 pixels at 0.35 (too many objects below 0.35): only a threshold in (0.62, 0.75)
    counts and sizes them right."""
    image = np.zeros((64, 64), np.float32)
    for x0, y0, x1, y1 in BOXES:
        image[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2] = 0.62
    for x0, y0, x1, y1 in BOXES:
        image[y0:y1, x0:x1] = 0.75
    for row, col in [(30, 2), (2, 28), (60, 60), (24, 26)]:
        image[row : row + 2, col : col + 2] = 0.35
    return image


def test_calibration_recovers_the_planted_threshold(labeled_folder, tmp_path, monkeypatch):
    labels, images = labeled_folder({"a.png": (np.zeros((64, 64), np.uint8), box_xml("a.png", 64))})
    records, classes = load_labeled_images([labels], images)
    config = RunConfig(
        data=DataConfig(labels=(str(labels),), images=str(images), window=64),
        model=UNetConfig(depth=2, classes=len(classes)),
        classes=tuple(classes),
    )
    monkeypatch.setattr("emdl.train.calibration.read_image", lambda path: planted_image())
    PlantedUNet.calls = 0
    calibration = calibrate(PlantedUNet(), records, classes, config)
    assert 0.62 < calibration["threshold"] < 0.75
    assert (calibration["threshold"], calibration["min_area"]) == (0.7, 0.0)
    assert calibration["count_error"] == 0
    assert abs(calibration["mean_diameter_error"]) < 1e-12
    # The default 0.5 paints the halo: the same count, fatter objects.
    assert calibration["default"]["count_error"] == 0
    assert calibration["default"]["mean_diameter_error"] > 0.1
    assert calibration["calibrated"] and calibration["images"] == 1
    assert PlantedUNet.calls == 1  # the model ran once; only the post-processing was tried
    write_calibration(tmp_path, calibration)
    assert read_calibration(tmp_path) == calibration
    assert calibration_line(calibration).startswith("calibrated: threshold 0.70, smallest defect 0")


def test_candidates_and_a_run_without_calibration(tmp_path):
    grid = candidates(0.25)
    assert (0.25, 10.0) in grid and (0.3, 0.0) == grid[4]
    assert read_calibration(tmp_path) is None
    assert calibration_line(None) == "no calibration: the default post-processing"


class OverlappingUNet:
    """A stand-in U-Net that sees two overlapping discs as one blob: probability 0.9 on their
    union. Its tile comes back as the blob whatever the image."""

    def __init__(self, blob):
        self.blob = blob

    def predict_on_batch(self, tiles):
        return np.where(self.blob, 0.9, 0.1).astype(np.float32)[None, ..., None]


def test_calibration_chooses_the_split_depth_that_parts_overlapping_objects(
    labeled_folder, tmp_path, monkeypatch
):
    from tests.conftest import disc

    # Two discs of radius 14, centres 10 apart: their union's neck dips 0.9 px, less than the
    # split depth rule's 1.4 px (a tenth of the radius) and more than the calibration's 0.5 and
    # 0.75, which part them into the two labeled discs.
    xml = (
        '<annotations><image id="0" name="a.png" width="64" height="64">'
        '<ellipse label="bubble" cx="25" cy="32" rx="14" ry="14" />'
        '<ellipse label="bubble" cx="35" cy="32" rx="14" ry="14" /></image></annotations>'
    )
    labels, images = labeled_folder({"a.png": (np.zeros((64, 64), np.uint8), xml)})
    records, classes = load_labeled_images([labels], images)
    blob = disc((64, 64), 25, 32, 14) | disc((64, 64), 35, 32, 14)
    config = RunConfig(
        data=DataConfig(labels=(str(labels),), images=str(images), window=64),
        model=UNetConfig(depth=2, classes=len(classes)),
        classes=tuple(classes),
    )
    monkeypatch.setattr("emdl.train.calibration.read_image", lambda path: blob * 1.0)
    calibration = calibrate(OverlappingUNet(blob), records, classes, config)
    assert calibration["default"]["model"] == {"split_depth": None}
    assert calibration["default"]["count_error"] == -0.5  # one blob for two discs
    assert calibration["model"] == {"split_depth": 0.5} and calibration["count_error"] == 0
    assert "split depth 0.5" in calibration_line(calibration)
    write_calibration(tmp_path, calibration)
    assert calibrated_config(tmp_path, config).model.split_depth == 0.5
    assert calibrated_config(tmp_path / "none", config) == config
