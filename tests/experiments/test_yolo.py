"""``python -m emdl.experiments.yolo_loops`` and ``yolo_bubbles``: short runs on stand-in data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import io as skio

from emdl.experiments import yolo_bubbles, yolo_loops
from tests.conftest import BUBBLE_BOXES, box_image, box_xml, cvat_text

SHORT = ["--epochs", "1", "--steps-per-epoch", "1"]
HEADER = "ap50     ap50_95 precision50    recall50       f1_50"


@pytest.mark.slow
def test_yolo_loops_trains_on_the_folder_and_prints_the_comparison(tmp_path, capsys):
    folder = tmp_path / "loops111"
    (folder / "images").mkdir(parents=True)
    body = []
    for index in range(4):
        name = f"loop {index}.jpg"  # loops111 has names with spaces
        skio.imsave(folder / "images" / name, box_image(256, BUBBLE_BOXES), check_contrast=False)
        body.append(
            box_xml(name, 256, BUBBLE_BOXES, label="loop").replace('id="0"', f'id="{index}"')
        )
    (folder / "annotations.xml").write_text(cvat_text("\n".join(body), labels=("loop",)))
    out = tmp_path / "run"
    assert yolo_loops.main(["--data-dir", str(folder), "--out", str(out), *SHORT]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "validation" and len(metrics["images"]) == 1
    assert lines[-4].split() == HEADER.split()
    assert lines[-3].split()[0] == "emdl"
    assert float(lines[-3].split()[1]) == pytest.approx(metrics["ap50"], abs=5e-4)
    assert lines[-2].split()[-5:] == ["0.850", "0.410", "0.800", "0.770", "0.790"]
    assert lines[-1].startswith(f"score threshold {metrics['score_threshold']:.3f}")
    assert "1 validation images, 4 objects" in lines[-1]


def test_yolo_loops_without_data_says_where_it_looked(tmp_path, capsys):
    assert yolo_loops.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "annotations.xml: not found" in err


@pytest.mark.slow
def test_yolo_bubbles_scores_the_test_image_by_its_label_components(
    bubbles_folder,
    tmp_path,
    capsys,
):
    skio.imsave(
        bubbles_folder / "test_image.png", box_image(256, BUBBLE_BOXES), check_contrast=False
    )
    label = (box_image(256, BUBBLE_BOXES) > 0).astype(np.uint8) * 255
    skio.imsave(bubbles_folder / "test_label.png", label, check_contrast=False)
    out = tmp_path / "run"
    assert yolo_bubbles.main(["--data-dir", str(bubbles_folder), "--out", str(out), *SHORT]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "test_image" and metrics["objects"] == len(BUBBLE_BOXES)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"data: {bubbles_folder}; evaluating on test_image.png"
    assert "1 test_image images, 4 objects" in lines[-1]
