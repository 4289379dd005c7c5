"""emdl rank: an image a stand-in model fails on (its views disagree) comes before one it
masters (they agree); near-copies wait; the CSV, the CVAT pre-annotations and bad input."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
from skimage import io as skio

from emdl.cli import main
from emdl.commands.rank import diverse_order, intensity_features, rank_run, similarity
from emdl.io.cvat import read_cvat
from emdl.predict.instances import instances_from_probabilities


def biased(image):
    """A model that finds the bright components but puts them 2 pixels right of where they are
    in the image it is given: fine on large defects, lost on small ones (see
    tests/predict/test_uncertainty.py for the exact agreement)."""
    moved = np.zeros_like(image)
    moved[:, 2:] = image[:, :-2]
    return instances_from_probabilities(moved[..., None].astype(np.float32), threshold=0.5)


def write(path, boxes):
    pixels = np.zeros((64, 64), np.uint8)
    for x0, y0, x1, y1 in boxes:
        pixels[y0:y1, x0:x1] = 255
    skio.imsave(path, pixels, check_contrast=False)
    return path


def rows(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_the_failed_image_comes_first_and_its_copy_waits(tmp_path):
    mastered = write(tmp_path / "mastered.png", [(20, 20, 40, 40)])  # 20 x 20: all views agree
    failed = write(tmp_path / "failed.png", [(10, 10, 24, 16)])  # 14 x 6: half of them
    copy = write(tmp_path / "copy.png", [(30, 40, 44, 46)])  # the same, elsewhere
    run = SimpleNamespace(predict=biased, classes=["bubble"])
    out, xml = tmp_path / "ranking.csv", tmp_path / "pre.xml"
    ranked = rank_run(run, [mastered, failed, copy], out, top=1, cvat=xml)
    assert [r["image"] for r in ranked] == ["failed.png", "copy.png", "mastered.png"]
    written = rows(out)
    assert [r["image"] for r in written] == ["failed.png", "copy.png", "mastered.png"]
    assert [r["rank"] for r in written] == ["1", "2", "3"]
    # One 14 x 6 defect that 4 of 8 views find, and 4 / 8 unexplained: (0.5 + 0.5) / 1.5.
    assert [float(r["uncertainty"]) for r in written] == pytest.approx([2 / 3, 2 / 3, 0.0])
    assert [r["objects"] for r in written] == ["1", "1", "1"]
    # copy.png has failed.png's histogram: similarity 1, priority 2/3 - 0.5.
    assert [float(r["similarity"]) for r in written][:2] == [0.0, 1.0]
    assert float(written[1]["priority"]) == pytest.approx(2 / 3 - 0.5)
    (image,) = read_cvat(xml).images
    assert image.name == "failed.png" and [s.type for s in image.shapes] == ["polygon"]


def test_diversity_holds_back_near_copies():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert similarity(a, a) == 1.0 and similarity(a, b) == 0.0
    # Uncertainties 0.9, 0.8 (a copy of the first), 0.5 (different).
    order = diverse_order([0.9, 0.8, 0.5], [a, a, b], diversity=0.5)
    assert order == [(0, 0.0, 0.9), (2, 0.0, 0.5), (1, 1.0, pytest.approx(0.3))]
    assert [i for i, _, _ in diverse_order([0.9, 0.8, 0.5], [a, a, b], diversity=0)] == [0, 1, 2]
    features = intensity_features(np.array([[0.0, 1.0], [1.0, 1.0]]), bins=4)
    assert features.tolist() == [0.25, 0.0, 0.0, 0.75]


def test_the_command_end_to_end_and_bad_input(tmp_path, capsys):
    from tests.cvat.conftest import write_untrained_run

    run_dir = write_untrained_run(tmp_path / "run")
    image = write(tmp_path / "a.png", [(20, 20, 40, 40)])
    out = tmp_path / "ranking.csv"
    assert (
        main(
            ["rank", str(run_dir), str(image), "--out", str(out), "--cvat", str(tmp_path / "p.xml")]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"1 images ranked -> {out}; label first a.png (uncertainty ")
    assert lines[1] == f"pre-annotations of the first 1 -> {tmp_path / 'p.xml'}"
    assert [r["image"] for r in rows(out)] == ["a.png"]
    # The CSV exists now: refused, and so is --top 0; one line each.
    for extra, problem in (
        ([], f"{out}: already exists; give a new file name"),
        (["--top", "0"], "--top must be at least 1, got 0"),
    ):
        status = main(["rank", str(run_dir), str(image), "--out", str(out), *extra])
        assert (status, capsys.readouterr().err) == (1, f"emdl: error: {problem}\n")


def test_uncertainty_maps_colour_each_defect_by_its_views(tmp_path):
    mastered = write(tmp_path / "mastered.png", [(20, 20, 40, 40)])
    failed = write(tmp_path / "failed.png", [(10, 10, 24, 16)])
    run = SimpleNamespace(predict=biased, classes=["bubble"])
    maps = tmp_path / "maps"
    ranked = rank_run(run, [mastered, failed], tmp_path / "ranking.csv", maps=maps)
    assert {r["image"]: r["map"] for r in ranked} == {
        "failed.png": "0002_failed.png.png",
        "mastered.png": "0001_mastered.png.png",
    }
    agreed = skio.imread(maps / "0001_mastered.png.png")
    unsure = skio.imread(maps / "0002_failed.png.png")
    # The predicted defect sits 2 pixels right of the bright square; half gray (255 or 0), half
    # green (uncertainty 0) or yellow (uncertainty 1/2) inside it, the image elsewhere.
    assert agreed.shape == (64, 64, 3)
    assert agreed[30, 30].tolist() == [128, 228, 128] and agreed[5, 5].tolist() == [0, 0, 0]
    assert unsure[12, 20].tolist() == [242, 228, 128]
    # A second run into the same folder is refused before anything is predicted.
    with pytest.raises(Exception, match="0001_mastered.png.png"):
        rank_run(run, [mastered, failed], tmp_path / "again.csv", maps=maps)
    assert not (tmp_path / "again.csv").exists()
