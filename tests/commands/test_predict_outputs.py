"""``emdl predict`` and its output folder: a used --out is refused unless --overwrite, which
clears only the files an earlier predict wrote; one overlay per image, even for equal stems;
an unfinished run is named with the command that resumes it."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage import io as skio

import emdl
from emdl.cli import main
from emdl.commands import predict as folder_module
from emdl.commands.predict import MANIFEST, overlay_names
from emdl.errors import InputError
from emdl.train.config import DataConfig, RunConfig
from tests.conftest import box_image


@pytest.fixture
def detector(monkeypatch):
    """``emdl predict`` with a stand-in detector run that finds one box in every image."""
    config = RunConfig(data=DataConfig(labels=("x.xml",), images="."), kind="yolo")
    config = RunConfig(**{**config.__dict__, "classes": ("loop",)})
    monkeypatch.setattr(folder_module, "load_predictor", lambda run_dir: (config, None))
    found = {
        "boxes": np.float32([[10, 10, 30, 30]]),
        "classes": np.int32([0]),
        "scores": np.float32([0.9]),
    }
    monkeypatch.setattr(
        "emdl.train.kinds.yolo.DetectorKind.predict", lambda self, model, image, cfg: found
    )


def predict(capsys, *args) -> tuple[int, str]:
    status = main(["predict", "run", *map(str, args), "--threshold", "0.5"])
    err = capsys.readouterr().err
    return status, "".join(line for line in err.splitlines(True) if not line.startswith("["))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def micrographs(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name.endswith(".tif"):
            tifffile.imwrite(folder / name, box_image(64))
        else:
            skio.imsave(folder / name, box_image(64), check_contrast=False)
    return [folder / name for name in names]


def test_a_used_out_is_refused_and_overwrite_clears_only_its_own_files(capsys, detector, tmp_path):
    images = micrographs(tmp_path / "images", "a.png", "b.png")
    out = tmp_path / "out"
    assert predict(capsys, *images, "--out", out) == (0, "")
    first = snapshot(out)
    assert sorted(first) == [
        MANIFEST,
        "annotations.xml",
        "defects.csv",
        "diameters.png",
        "overlays/a.png",
        "overlays/b.png",
        "summary.csv",
    ]
    assert json.loads(first[MANIFEST]) == {
        "files": [
            "defects.csv",
            "summary.csv",
            "overlays/a.png",
            "overlays/b.png",
            "annotations.xml",
            "diameters.png",
        ]
    }
    (out / "notes.txt").write_text("the user's notes")
    (out / "overlays" / "mine.png").write_bytes(b"the user's picture")

    status, err = predict(capsys, images[0], "--out", out)
    assert (status, err) == (
        1,
        f"emdl: error: {out}: holds the outputs of an earlier emdl predict; give --overwrite "
        "to replace them, or another --out\n",
    )
    assert snapshot(out) == {
        **first,
        "notes.txt": b"the user's notes",
        "overlays/mine.png": b"the user's picture",
    }

    # Only a.png this time: b.png's overlay, from the first run, goes; the user's files stay.
    assert predict(capsys, images[0], "--out", out, "--overwrite") == (0, "")
    assert sorted(snapshot(out)) == [
        MANIFEST,
        "annotations.xml",
        "defects.csv",
        "diameters.png",
        "notes.txt",
        "overlays/a.png",
        "overlays/mine.png",
        "summary.csv",
    ]
    assert [line.split(",")[0] for line in (out / "summary.csv").read_text().splitlines()] == [
        "image",
        "a.png",
    ]


def test_files_of_the_user_in_the_way_are_refused(capsys, detector, tmp_path):
    images = micrographs(tmp_path / "images", "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "defects.csv").write_text("my own table\n")
    status, err = predict(capsys, *images, "--out", out)
    assert (status, err) == (
        1,
        f"emdl: error: {out / 'defects.csv'}: exists already; give --overwrite to replace it, "
        "or another --out\n",
    )
    assert snapshot(out) == {"defects.csv": b"my own table\n"}
    # Into the folder of the micrographs: refused, and nothing there changes.
    before = snapshot(tmp_path / "images")
    status, err = predict(capsys, tmp_path / "images", "--out", tmp_path / "images")
    assert (status, err) == (
        1,
        f"emdl: error: {tmp_path / 'images'}: holds this command's input "
        f"{tmp_path / 'images'}; write to another folder (or give --overwrite to write "
        "beside it)\n",
    )
    assert snapshot(tmp_path / "images") == before


def test_overlay_links_are_not_followed(capsys, detector, tmp_path):
    images = micrographs(tmp_path / "images", "a.png")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "overlays").symlink_to(elsewhere, target_is_directory=True)
    status, err = predict(capsys, *images, "--out", out, "--overwrite")
    assert (status, err) == (
        1,
        f"emdl: error: {out / 'overlays'}: is a symbolic link inside the output folder; emdl "
        "does not write through it\n",
    )
    assert os.listdir(elsewhere) == [] and os.listdir(out) == ["overlays"]


def test_images_with_one_stem_get_their_own_overlays(capsys, detector, tmp_path):
    here = micrographs(tmp_path / "one", "a.png", "a.tif")
    there = micrographs(tmp_path / "two", "a.png")
    out = tmp_path / "out"
    assert predict(capsys, tmp_path / "one", *there, "--out", out) == (0, "")
    assert sorted(os.listdir(out / "overlays")) == ["a.png", "a.png.png", "a.tif.png"]
    assert overlay_names([*here, *there]) == ["a.png", "a.tif.png", "a.png.png"]
    assert overlay_names([Path("x/a.png"), Path("y/a.png"), Path("z/a.png"), Path("A.tif")]) == [
        "a.png",
        "a.png.png",
        "a.png-2.png",
        "A.tif.png",
    ]


def test_an_unfinished_run_is_named_with_how_to_resume(capsys, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    (run_dir / "best.weights.h5").write_bytes(b"")
    images = micrographs(tmp_path / "images", "a.png")
    problem = (
        f"emdl: error: {run_dir}: is an unfinished run (no metrics.json): resume it with "
        f"`emdl train {run_dir / 'config.json'} --out {run_dir}`\n"
    )
    status = main(["predict", str(run_dir), str(images[0]), "--out", str(tmp_path / "out")])
    assert (status, capsys.readouterr().err) == (1, problem)
    labels = tmp_path / "labels.xml"
    labels.write_text("<annotations/>")
    args = ["evaluate", str(run_dir), "--labels", str(labels), "--images", str(images[0].parent)]
    assert (main(args), capsys.readouterr().err) == (1, problem)
    with pytest.raises(InputError) as error:
        emdl.load_run(run_dir)
    assert f"emdl: error: {error.value}\n" == problem
    assert not (tmp_path / "out").exists()
    assert sorted(os.listdir(run_dir)) == ["best.weights.h5", "config.json"]


def test_uncertainty_adds_agreement_columns_and_maps(capsys, detector, tmp_path):
    (image,) = micrographs(tmp_path / "in", "a.png")
    out = tmp_path / "out"
    status, err = predict(capsys, image, "--out", out, "--uncertainty")
    assert status == 0, err
    # The stand-in finds the box 10..30 x 10..30 in every view it is shown: mapped back, only
    # the identity and the transpose put it where it is, so 2 of 8 views agree and the other 6
    # views' boxes are unexplained (6 / 8); the image: (0.75 + 0.75) / (1 + 0.75).
    with open(out / "defects.csv", newline="") as file:
        (row,) = list(csv.DictReader(file))
    assert float(row["agreement"]) == 0.25
    with open(out / "summary.csv", newline="") as file:
        (summary,) = list(csv.DictReader(file))
    assert float(summary["unexplained"]) == 0.75
    assert float(summary["uncertainty"]) == pytest.approx(1.5 / 1.75)
    painted = skio.imread(out / "uncertainty" / "a.png")
    assert painted.shape == (64, 64, 3)
    # The frame around the box's pixels (rows 9 and 30) in the colour of uncertainty 0.75.
    assert painted[9, 15].tolist() == [230, 100, 0] and painted[30, 15].tolist() == [230, 100, 0]
    assert "uncertainty/a.png" in json.loads((out / MANIFEST).read_text())["files"]
