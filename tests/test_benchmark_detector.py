"""The peer-free helpers of benchmarks/detector_vs_ultralytics.py: the split, the subset and YOLO
files, the reader of the peer's boxes, its scoring, the table and emdl's run config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from emdl.data import load_labeled_images
from emdl.data.sources import split_by_image
from emdl.errors import InputError
from emdl.io.labels import read_labels
from tests.conftest import box_image, box_xml, load_benchmark, write_labeled_folder


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("detector_vs_ultralytics")


BOXES = {"a b.png": [(4, 6, 20, 14)], "c.png": [(30, 30, 50, 58), (40, 2, 60, 12)], "d.png": []}


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, Path]:
    """Three 64 x 64 images (one name with a space, one without boxes) labeled "loop"."""
    images = {
        name: (box_image(64, boxes), box_xml(name, 64, boxes, label="loop"))
        for name, boxes in BOXES.items()
    }
    (tmp_path / "data").mkdir()
    return write_labeled_folder(tmp_path / "data", images, labels=("loop",))


def test_split_is_emdl_rule_on_the_first_images(bench, folder):
    records, _ = load_labeled_images([folder[0]], folder[1])
    training, validation = bench.split_images(records, 0.5, seed=3, limit=2)
    expected = split_by_image(records[:2], 0.5, seed=3)
    assert [r.name for r in training] == [r.name for r in expected[0]]
    assert [r.name for r in validation] == [r.name for r in expected[1]]
    assert len(training) == len(validation) == 1
    everything = bench.split_images(records, 0.5, seed=3)
    assert [[r.name for r in part] for part in everything] == [
        [r.name for r in part] for part in split_by_image(records, 0.5, seed=3)
    ]
    with pytest.raises(ValueError, match="at least 2"):
        bench.split_images(records, 0.5, seed=3, limit=1)


def test_subset_and_yolo_dataset(bench, folder, tmp_path):
    labels, images = folder
    annotations = read_labels(labels)
    training = bench.write_subset(annotations, ["c.png", "a b.png"], tmp_path / "out/t.xml")
    validation = bench.write_subset(annotations, ["d.png"], tmp_path / "out/v.xml")
    assert [image.name for image in read_labels(training).images] == ["a b.png", "c.png"]
    assert [image.name for image in read_labels(validation).images] == ["d.png"]

    data = bench.write_yolo_dataset(
        {"training": training, "validation": validation}, images, tmp_path / "out/yolo"
    )
    root = tmp_path / "out" / "yolo"
    assert data.read_text() == (
        f'path: "{root.resolve()}"\ntrain: training/images\nval: validation/images\n'
        'names:\n  0: "loop"\n'
    )
    link = root / "training" / "images" / "a b.png"
    assert link.is_symlink() and link.resolve() == (images / "a b.png").resolve()
    # Ultralytics' rule: the last /images/ of the image path becomes /labels/, .png becomes .txt
    line = (root / "training" / "labels" / "a b.txt").read_text().split()
    assert line[0] == "0"
    np.testing.assert_allclose([float(v) for v in line[1:]], [12 / 64, 10 / 64, 16 / 64, 8 / 64])
    assert len((root / "training" / "labels" / "c.txt").read_text().splitlines()) == 2
    assert (root / "validation" / "labels" / "d.txt").read_text() == ""
    assert sorted(p.name for p in (root / "validation" / "images").iterdir()) == ["d.png"]


def _boxes_file(path: Path, images: list[dict]) -> Path:
    path.write_text(json.dumps({"version": "x", "images": images}))
    return path


def test_peer_boxes_are_read_and_scored_by_emdl(bench, folder, tmp_path):
    labels, images = folder
    records, classes = load_labeled_images([labels], images)
    found = [
        # a b.png: its box found, and one false detection of lower score
        {"name": "a b.png", "boxes": [[4, 6, 20, 14], [40, 40, 50, 50]], "scores": [0.9, 0.2],
         "classes": [0, 0]},
        # c.png: one of its two boxes found
        {"name": "c.png", "boxes": [[30, 30, 50, 58]], "scores": [0.8], "classes": [0]},
        {"name": "d.png", "boxes": [], "scores": [], "classes": []},
    ]  # fmt: skip
    path = _boxes_file(tmp_path / "boxes.json", found)
    boxes = bench.read_peer_boxes(path, [r.name for r in records], classes)
    assert boxes["a b.png"]["boxes"].dtype == np.float32
    assert boxes["a b.png"]["boxes"].shape == (2, 4) and boxes["d.png"]["boxes"].shape == (0, 4)
    np.testing.assert_array_equal(boxes["c.png"]["classes"], [0])

    from emdl.experiments.yolo_loops import detector_config

    config = detector_config(
        [str(labels)], str(images), epochs=1, steps_per_epoch=1, longest_side=64
    )
    metrics = bench.score_peer(records, boxes, classes, config)
    # At the F1-best threshold 0.8: 2 true of 2 detected, 3 objects.
    assert metrics["objects"] == 3
    assert metrics["score_threshold"] == pytest.approx(0.8)
    assert metrics["precision50"] == pytest.approx(1.0)
    assert metrics["recall50"] == pytest.approx(2 / 3)
    assert metrics["f1_50"] == pytest.approx(0.8)
    assert metrics["count_error"] == pytest.approx(1 / 3)  # c.png: 1 detected of 2


def test_peer_boxes_that_do_not_fit_are_one_input_error(bench, tmp_path):
    good = {"name": "a.png", "boxes": [[0, 0, 1, 1]], "scores": [0.5], "classes": [0]}
    path = _boxes_file(tmp_path / "boxes.json", [good])
    with pytest.raises(InputError, match=r"boxes\.json.*expected boxes of 2 images"):
        bench.read_peer_boxes(path, ["a.png", "b.png"], ["loop"])
    path = _boxes_file(tmp_path / "boxes.json", [{**good, "scores": [0.5, 0.4]}])
    with pytest.raises(InputError, match="differ"):
        bench.read_peer_boxes(path, ["a.png"], ["loop"])
    path = _boxes_file(tmp_path / "boxes.json", [{**good, "classes": [1]}])
    with pytest.raises(InputError, match="a class outside"):
        bench.read_peer_boxes(path, ["a.png"], ["loop"])
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match="broken.json: not the peer's boxes"):
        bench.read_peer_boxes(tmp_path / "broken.json", ["a.png"], ["loop"])


def test_table_and_ratios(bench):
    keys = [key for key, _, _ in bench.COLUMNS]
    mine = dict.fromkeys(keys, 0.5) | {"images_seen": 800, "count_error": 1.25}
    peer = dict.fromkeys(keys, 0.25) | {"images_seen": 400, "count_error": 0.0}
    shares = bench.ratios(mine, peer)
    assert shares["ap50"] == 2.0 and shares["images_seen"] == 2.0
    assert shares["count_error"] is None
    lines = bench.table({"emdl": mine, "peer": peer}).splitlines()
    assert len(lines) == 4
    assert lines[0].split()[:3] == ["contender", "AP50", "AP50:95"]
    assert lines[1].split() == ["emdl", *["0.500"] * 5, "1.25", "0.500", "800", "0.5", "0.5"]
    assert lines[3].split() == ["emdl", "/", "peer", *["2.00"] * 5, "n/a", *["2.00"] * 4]
    assert len(bench.table({"emdl": mine}).splitlines()) == 2


def test_emdl_trains_for_the_budget_through_the_library_option(bench, tmp_path):
    config = bench.emdl_config(
        tmp_path / "t.xml", tmp_path / "v.xml", tmp_path, 7, budget_minutes=20.0
    )
    training = config.training
    assert (training.budget_minutes, training.seed) == (20.0, 7)
    assert (training.epochs, training.steps_per_epoch) == (bench.EPOCH_CAP, 40)
    assert config.data.labels == (str(tmp_path / "t.xml"),)
    assert config.data.validation_labels == (str(tmp_path / "v.xml"),)
    assert (config.data.window, config.model.longest_side) == (320, 640)
    fixed = bench.emdl_config("t.xml", "v.xml", ".", 0, epochs=3, steps_per_epoch=5, window=640)
    assert (fixed.training.budget_minutes, fixed.training.epochs) == (None, 3)
    assert (fixed.training.steps_per_epoch, fixed.data.window, fixed.model.tile) == (5, 640, 1280)


def test_bad_inputs_end_in_one_line_before_anything_runs(bench, folder, tmp_path, capsys):
    data = tmp_path / "data"
    (data / "loops111").mkdir()
    common = ["--budget-minutes", "1", "--peer-python", sys.executable]
    assert bench.main(["--data-dir", str(data), "--out", str(tmp_path / "o"), *common]) == 1
    assert capsys.readouterr().err == (
        f"detector_vs_ultralytics: {data.resolve()}/loops111/annotations.xml: not found "
        "(give --data-dir, the folder of loops111/)\n"
    )
    (data / "loops111" / "annotations.xml").write_text(folder[0].read_text())
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep")
    assert bench.main(["--data-dir", str(data), "--out", str(taken), *common]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists and is not an empty folder" in err
    assert [p.name for p in taken.iterdir()] == ["mine.txt"]
    nope = ["--budget-minutes", "1", "--peer-python", str(tmp_path / "nope")]
    assert bench.main(["--data-dir", str(data), "--out", str(tmp_path / "new"), *nope]) == 1
    assert "nope: no such Python" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
