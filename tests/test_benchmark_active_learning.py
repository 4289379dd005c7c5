"""The cheap parts of benchmarks/active_learning.py: the bubble tiles it labels from (their
masks put together are the image's labels) and its table."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import io as skio

from emdl.data import load_labeled_images
from emdl.errors import LabelWarning
from emdl.labels import semantic_mask
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("active_learning")


def test_the_tiles_together_are_the_labeled_image(bench, data_dir, tmp_path):
    tiles, (held_out,), classes = bench.bubble_tiles(data_dir / "bubbles", tmp_path, 4)
    assert (len(tiles), held_out.name, classes) == (
        16,
        "DL_for_Microscopy_Train_Img_1.png",
        ["bubble"],
    )
    image = skio.imread(data_dir / "bubbles" / "DL_for_Microscopy_Train_Img_2.png", as_gray=True)
    rebuilt = np.zeros((512, 512), np.uint8)
    for tile in tiles:
        row, col = int(tile.name[6]), int(tile.name[8])  # img2_r{row}c{col}.png
        window = np.s_[row * 128 : (row + 1) * 128, col * 128 : (col + 1) * 128]
        assert (tile.annotation.width, tile.annotation.height) == (128, 128)
        np.testing.assert_array_equal(skio.imread(tile.path), image[window])
        rebuilt[window] = semantic_mask(tile.annotation, classes)
    with pytest.warns(LabelWarning):  # Lab_2 also labels four images not shipped
        records, _ = load_labeled_images(
            [str(data_dir / "bubbles" / "DL_for_Microscopy_Train_Lab_2.xml")],
            data_dir / "bubbles",
            missing="skip",
        )
    (source,) = [r for r in records if r.name == "DL_for_Microscopy_Train_Img_2.png"]
    truth = semantic_mask(source.annotation, classes)
    np.testing.assert_array_equal(rebuilt, truth)


def test_the_table_has_a_row_per_round(bench):
    found = {
        "metric": "iou",
        "rank": {"labeled": [2, 4], "iou": [0.5, 0.625]},
        "random": {"labeled": [2, 4], "iou": [0.5, 0.25]},
    }
    assert bench.table({"bubbles": found}).splitlines() == [
        "| set | labeled | rank | random |",
        "|---|---|---|---|",
        "| bubbles (iou) | 2 | 0.500 | 0.500 |",
        "| bubbles (iou) | 4 | 0.625 | 0.250 |",
    ]
