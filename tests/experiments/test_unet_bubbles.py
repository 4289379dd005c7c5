"""``python -m emdl.experiments.unet_bubbles``: a short run on small stand-in data."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from skimage import io as skio

from emdl import sample_data as datasets
from emdl.experiments import unet_bubbles
from tests.conftest import BUBBLE_BOXES, box_image


def run(folder, out, capsys) -> tuple[dict, list[str]]:
    status = unet_bubbles.main(
        ["--data-dir", str(folder), "--out", str(out), "--epochs", "1", "--steps-per-epoch", "1"]
    )
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    return metrics, capsys.readouterr().out.strip().splitlines()


@pytest.mark.slow
def test_without_the_test_pair_it_holds_out_an_image(bubbles_folder, tmp_path, capsys):
    metrics, lines = run(bubbles_folder, tmp_path / "run", capsys)
    assert metrics["evaluated_on"] == "validation"
    assert 0 <= metrics["iou"] <= 1 and 0 <= metrics["dice"] <= 1
    assert lines[0] == f"data: {bubbles_folder}; evaluating on a held-out image"
    assert lines[-1] == (
        f"IoU {metrics['iou']:.3f} on the held-out training image (lecture's U-Net: 0.713)"
    )


@pytest.mark.slow
def test_with_the_test_pair_it_scores_the_test_image(bubbles_folder, tmp_path, capsys):
    skio.imsave(
        bubbles_folder / "test_image.png", box_image(256, BUBBLE_BOXES), check_contrast=False
    )
    label = (box_image(256, BUBBLE_BOXES) > 0).astype(np.uint8) * 255
    skio.imsave(bubbles_folder / "test_label.png", label, check_contrast=False)
    metrics, lines = run(bubbles_folder, tmp_path / "run", capsys)
    assert metrics["evaluated_on"] == "test_image"
    assert [image["name"] for image in metrics["images"]] == ["test_image.png"]
    assert lines[-1].endswith("on the test image (lecture's U-Net: 0.713)")


def test_offline_without_data_it_says_how_to_supply_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMDL_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("EMDL_CACHE_DIR", str(tmp_path / "cache"))
    offline = dataclasses.replace(datasets.BUBBLES, base_url=(tmp_path / "no").as_uri() + "/")
    monkeypatch.setattr(datasets, "BUBBLES", offline)
    status = unet_bubbles.main(["--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and "--data-dir" in err and "EMDL_DATA_DIR" in err
