"""``python -m emdl.experiments.unet_bubbles``: a short run on small stand-in data."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from skimage import io as skio

from emdl import sample_data as datasets
from emdl.experiments import bubbles, unet_bubbles
from tests.conftest import BUBBLE_BOXES, box_image

SHORT = ["--epochs", "1", "--steps-per-epoch", "1"]


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


@pytest.mark.slow
def test_synthetic_trains_and_scores_on_generated_bubbles_without_data(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("EMDL_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("EMDL_CACHE_DIR", str(tmp_path / "cache"))
    offline = dataclasses.replace(datasets.BUBBLES, base_url=(tmp_path / "no").as_uri() + "/")
    monkeypatch.setattr(datasets, "BUBBLES", offline)
    monkeypatch.setattr(bubbles, "SYNTHETIC_COUNT", 4)
    monkeypatch.setattr(bubbles, "SYNTHETIC_SIZE", 256)
    out = tmp_path / "run"
    status = unet_bubbles.main(
        ["--synthetic", "--out", str(out), "--epochs", "1", "--steps-per-epoch", "1"]
    )
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["synthetic"] is True and metrics["evaluated_on"] == "validation"
    held_out = np.random.default_rng(0).permutation(4)[0]  # emdl.data.split_by_image's pick
    assert [image["name"] for image in metrics["images"]] == [f"synthetic_{held_out:04d}.png"]
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["labels"] == [str(out / "synthetic_data" / "annotations.xml")]
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("data: 4 images, ") and "synthetic_data/annotations.xml" in lines[0]
    assert lines[-1] == (
        f"IoU {metrics['iou']:.3f} on held-out synthetic images (not comparable with the "
        "lecture's U-Net: 0.713 on its real test image)"
    )
    assert not (tmp_path / "cache").exists()  # nothing downloaded

    # Again with --overwrite: the same images, made before, are used.
    assert unet_bubbles.main(["--synthetic", "--out", str(out), "--overwrite", *SHORT]) == 0
    assert "(made before)" in capsys.readouterr().out


def test_synthetic_and_a_data_folder_are_refused_together(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        unet_bubbles.main(["--synthetic", "--data-dir", str(tmp_path)])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().endswith("give --data-dir or --synthetic, not both")
