"""``emdl predict`` end to end on a tiny trained U-Net run and a stand-in detector: the files it
writes agree with each other and with the library, pixel sizes, truth comparison, bad input."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy.stats import chi2, ks_2samp
from skimage import io as skio

from emdl.analysis.statistics import box_defect, instance_defects
from emdl.cli import main
from emdl.commands import predict as folder_module
from emdl.commands.predict import predict_images
from emdl.io.cvat import read_cvat
from emdl.io.image import read_image
from emdl.train.config import DataConfig, RunConfig
from emdl.train.run import load_run, train_run
from tests.conftest import BOXES, box_image, box_xml, cvat_text, tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run directory, images folder, labels file) of a tiny U-Net trained on two 64 x 64
    images of four boxes each."""
    root = tmp_path_factory.mktemp("predict")
    images = root / "images"
    images.mkdir()
    body = []
    for name in ("a.png", "b.png"):
        skio.imsave(images / name, box_image(64), check_contrast=False)
        body.append(box_xml(name, 64))
    (images / "notes.txt").write_text("not an image: ignored in a folder")
    labels = root / "labels.xml"
    labels.write_text(cvat_text("\n".join(body), labels=("bubble",)))
    run_dir = root / "run"
    train_run(tiny_config(labels, images, epochs=2), run_dir, verbose=0)
    return run_dir, images, labels


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def run(capsys, *args) -> tuple[int, str, str]:
    status = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.slow
def test_predict_a_folder_with_truth(capsys, trained, tmp_path):
    run_dir, images, labels = trained
    out = tmp_path / "out"
    status, stdout, err = run(
        capsys, "predict", run_dir, images, "--out", out, "--labels", labels, "--min-area", 0
    )
    # Not a terminal: one progress line per image on stderr, nothing else.
    assert (status, err) == (0, "[1/2] a.png\n[2/2] b.png\n")
    first, second = stdout.splitlines()
    found = re.fullmatch(rf"2 images, (\d+) defects \((\d+) touching the edge\).* -> {out}", first)
    assert found, first
    count, edge = int(found[1]), int(found[2])
    assert count > 0
    assert second.startswith(
        f"against the truth on 2 images: count error {count - 2 * len(BOXES):+d} "
        f"(predicted {count}, true {2 * len(BOXES)})"
    )

    defects, summary = rows(out / "defects.csv"), rows(out / "summary.csv")
    assert len(defects) == count
    assert sum(row["touches_edge"] == "True" for row in defects) == edge
    assert [row["image"] for row in summary] == ["a.png", "b.png"]
    assert sum(int(row["count"]) for row in summary) == count
    assert all(row["pixel_size_nm"] == "" for row in summary)
    assert all(row["area_nm2"] == "" for row in defects)

    # The CSV holds what the library finds in the image, and CVAT gets one shape per defect.
    config, model = load_run(run_dir)
    image = read_image(images / "a.png")
    instances = config.model_kind.instances(model, image, config, threshold=0.5)
    expected = [d.row("a.png", None) for d in instance_defects(instances, ["bubble"])]
    assert [row for row in defects if row["image"] == "a.png"] == [
        {key: str(value) for key, value in row.items()} for row in expected
    ]
    cvat = read_cvat(out / "annotations.xml")
    assert [(i.name, i.width, i.height) for i in cvat.images] == [
        ("a.png", 64, 64),
        ("b.png", 64, 64),
    ]
    assert sum(len(i.shapes) for i in cvat.images) == count
    assert cvat.label_names == ["bubble"]

    comparison = rows(out / "comparison.csv")
    assert [row["image"] for row in comparison] == ["a.png", "b.png", "all"]
    assert [int(row["count_truth"]) for row in comparison] == [4, 4, 8]
    assert int(comparison[2]["count_predicted"]) == count
    for name in ("overlays/a.png", "overlays/b.png", "diameters.png"):
        assert (out / name).is_file(), name
    assert skio.imread(out / "overlays/a.png").shape[:2] == (64, 64)


@pytest.mark.slow
def test_a_bad_image_is_named_and_the_rest_predicted(capsys, trained, tmp_path):
    run_dir, images, _ = trained
    (tmp_path / "broken.png").write_bytes(b"not a png")
    notes = images / "notes.txt"
    out = tmp_path / "out"
    status, stdout, err = run(
        capsys, "predict", run_dir, images, tmp_path / "broken.png", notes, "--out", out
    )
    assert status == 1
    assert stdout.startswith("2 images, ")
    # The progress lines ("[k/n] name", one per image) go to stderr too.
    lines = [line for line in err.splitlines() if not line.startswith("[")]
    assert lines[0].startswith(f"emdl: error: {tmp_path / 'broken.png'}: not a readable PNG file")
    assert lines[1].startswith(f"emdl: error: {notes}: unsupported image format '.txt'")
    assert lines[2] == "emdl: error: 2 of 4 images could not be predicted"
    assert len(lines) == 3
    assert [row["image"] for row in rows(out / "summary.csv")] == ["a.png", "b.png"]


@pytest.mark.slow
def test_pixel_size_from_the_file_or_the_command_line(trained, tmp_path):
    run_dir, _, _ = trained
    path = tmp_path / "calibrated.tif"
    # ImageJ stores pixels per unit: 2 pixels per nm is 0.5 nm per pixel.
    tifffile.imwrite(
        path, box_image(64), imagej=True, resolution=(2.0, 2.0), metadata={"unit": "nm"}
    )
    progress = io.StringIO()
    report = predict_images(run_dir, [path], tmp_path / "file", min_area=0, progress=progress)
    assert progress.getvalue() == f"[1/1] {path.name}\n"  # one line per image in a log
    (summary,) = rows(tmp_path / "file/summary.csv")
    assert float(summary["pixel_size_nm"]) == 0.5
    assert float(summary["density_per_um2"]) == pytest.approx(
        int(summary["count"]) / (64 * 64 * 0.5**2 / 1e6)
    )
    for row in rows(tmp_path / "file/defects.csv"):
        assert float(row["area_nm2"]) == pytest.approx(float(row["area"]) * 0.25)
        assert float(row["major_axis_nm"]) == pytest.approx(float(row["major_axis"]) * 0.5)
    if report.mean_diameter is not None:
        assert report.mean_diameter_nm == pytest.approx(report.mean_diameter * 0.5)
    predict_images(run_dir, [path], tmp_path / "given", pixel_size_nm=2.0, min_area=0)
    (summary,) = rows(tmp_path / "given/summary.csv")
    assert float(summary["pixel_size_nm"]) == 2.0


def test_a_detector_run_gives_its_boxes(monkeypatch, tmp_path):
    config = RunConfig(data=DataConfig(labels=("x.xml",), images="."), kind="yolo")
    config = RunConfig(**{**config.__dict__, "classes": ("loop",)})
    monkeypatch.setattr(folder_module, "load_predictor", lambda run_dir: (config, None))
    found = {
        "boxes": np.float32([[0, 10, 20, 30], [30, 30, 50, 40], [5, 5, 9, 9]]),
        "classes": np.int32([0, 0, 0]),
        "scores": np.float32([0.9, 0.7, 0.3]),
    }
    monkeypatch.setattr(
        "emdl.train.kinds.yolo.DetectorKind.predict", lambda self, model, image, cfg: found
    )
    skio.imsave(tmp_path / "c.png", box_image(64), check_contrast=False)
    report = predict_images("run", [tmp_path / "c.png"], tmp_path / "out", threshold=0.5)
    assert (report.images, report.defects, report.touching_edge) == (1, 2, 1)
    defects = rows(tmp_path / "out/defects.csv")
    expected = [
        box_defect((0, 10, 20, 30), "loop", id=1, score=np.float32(0.9), touches_edge=True),
        box_defect((30, 30, 50, 40), "loop", id=2, score=np.float32(0.7)),
    ]
    assert defects == [
        {key: str(value) for key, value in d.row("c.png", None).items()} for d in expected
    ]
    (image,) = read_cvat(tmp_path / "out/annotations.xml").images
    assert [(s.type, s.xtl, s.ytl, s.xbr, s.ybr) for s in image.shapes] == [
        ("box", 0, 10, 20, 30),
        ("box", 30, 30, 50, 40),
    ]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--pixel-size", "0"], "the pixel size must be a positive number of nm, got 0.0"),
        (["--pixel-size", "-1.5"], "the pixel size must be a positive number of nm, got -1.5"),
        (["--threshold", "1.5"], "the threshold must be in [0, 1), got 1.5"),
        (["--min-area", "-1"], "the minimum area must be >= 0 square pixels, got -1.0"),
    ],
)
def test_bad_settings_are_one_line(capsys, tmp_path, extra, problem):
    status, out, err = run(capsys, "predict", tmp_path, tmp_path, "--out", tmp_path, *extra)
    assert (status, out, err) == (1, "", f"emdl: error: {problem}\n")


def test_bad_paths_are_one_line(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images here")
    status, _, err = run(capsys, "predict", tmp_path, empty, "--out", tmp_path / "out")
    assert status == 1
    assert (
        err == f"emdl: error: {empty}: no images (.png, .jpg, .jpeg, .tif, .tiff, .dm3, "
        ".dm4, .mrc, .emd) in this folder\n"
    )
    status, _, err = run(capsys, "predict", tmp_path, tmp_path / "nope", "--out", tmp_path / "o")
    assert (status, err) == (1, f"emdl: error: {tmp_path / 'nope'}: no such file or folder\n")
    skio.imsave(tmp_path / "a.png", box_image(64), check_contrast=False)
    status, _, err = run(capsys, "predict", empty, tmp_path / "a.png", "--out", tmp_path / "o")
    assert (status, err) == (
        1,
        f"emdl: error: {empty}: not a finished run directory: no config.json\n",
    )


@pytest.mark.parametrize("thickness", ["0", "-20", "nan", "inf"])
def test_a_bad_thickness_is_one_line(capsys, tmp_path, thickness):
    # Refused before anything else: the run directory and the (empty) image folder are not read.
    status, out, err = run(
        capsys, "predict", tmp_path, tmp_path, "--out", tmp_path / "o", "--thickness", thickness
    )
    problem = f"the thickness must be a positive number of nm, got {float(thickness)}"
    assert (status, out, err) == (1, "", f"emdl: error: {problem}\n")
    assert not (tmp_path / "o").exists()


def _stand_in_detector(monkeypatch, boxes):
    """Make ``emdl predict`` use a detector run that finds ``boxes`` (class "loop") in every
    image."""
    config = RunConfig(data=DataConfig(labels=("x.xml",), images="."), kind="yolo")
    config = RunConfig(**{**config.__dict__, "classes": ("loop",)})
    monkeypatch.setattr(folder_module, "load_predictor", lambda run_dir: (config, None))
    found = {
        "boxes": np.float32(boxes),
        "classes": np.zeros(len(boxes), np.int32),
        "scores": np.full(len(boxes), 0.9, np.float32),
    }
    monkeypatch.setattr(
        "emdl.train.kinds.yolo.DetectorKind.predict", lambda self, model, image, cfg: found
    )


def test_thickness_gives_volume_density_and_swelling(capsys, monkeypatch, tmp_path):
    # Three boxes, none cut by the edge, in 64 x 64 pixels of 0.5 nm, against the four BOXES.
    found = [(4, 6, 20, 14), (30, 30, 50, 58), (40, 2, 56, 12)]
    _stand_in_detector(monkeypatch, found)
    skio.imsave(tmp_path / "c.png", box_image(64), check_contrast=False)
    labels = tmp_path / "labels.xml"
    labels.write_text(cvat_text(box_xml("c.png", 64, label="loop")))
    out = tmp_path / "out"
    status, stdout, _ = run(
        capsys,
        "predict",
        "run",
        tmp_path / "c.png",
        "--out",
        out,
        "--threshold",
        0.5,
        "--pixel-size",
        0.5,
        "--thickness",
        100,
        "--labels",
        labels,
    )
    assert status == 0

    # By hand: areas 128, 560, 160 px; the image 32 x 32 = 1024 nm^2, x 100 nm = 1.024e-22 m^3.
    diameters = [math.sqrt(4 * a / math.pi) for a in (128, 560, 160)]
    true_diameters = [math.sqrt(4 * a / math.pi) for a in (128, 560, 200, 308)]
    spheres = sum(math.pi / 6 * (0.5 * d) ** 3 for d in diameters)
    (summary,) = rows(out / "summary.csv")
    assert (summary["pixel_size_nm"], summary["thickness_nm"], summary["count"]) == (
        "0.5",
        "100.0",
        "3",
    )
    assert float(summary["density_per_m3"]) == pytest.approx(3 / 1.024e-22, rel=1e-12)
    assert float(summary["density_ci_low_per_m3"]) == pytest.approx(
        chi2.ppf(0.025, 6) / 2 / 1.024e-22, rel=1e-12
    )
    assert float(summary["density_ci_high_per_m3"]) == pytest.approx(
        chi2.ppf(0.975, 8) / 2 / 1.024e-22, rel=1e-12
    )
    assert float(summary["density_ci_low_per_um2"]) == pytest.approx(
        chi2.ppf(0.025, 6) / 2 / 1.024e-3, rel=1e-12
    )
    assert float(summary["swelling"]) == pytest.approx(spheres / (102400 - spheres), rel=1e-12)
    low, high = float(summary["mean_diameter_ci_low"]), float(summary["mean_diameter_ci_high"])
    assert min(diameters) <= low < float(summary["mean_diameter"]) < high <= max(diameters)
    assert float(summary["mean_diameter_ci_high_nm"]) == pytest.approx(high * 0.5)

    comparison = rows(out / "comparison.csv")
    assert [row["image"] for row in comparison] == ["c.png", "all"]
    error = np.mean(diameters) - np.mean(true_diameters)
    ks = ks_2samp(diameters, true_diameters)
    for row in comparison:
        assert float(row["mean_diameter_error"]) == pytest.approx(error)
        assert float(row["mean_diameter_error_nm"]) == pytest.approx(error * 0.5)
        assert float(row["mean_diameter_truth_nm"]) == pytest.approx(np.mean(true_diameters) / 2)
        assert float(row["ks_pvalue"]) == pytest.approx(ks.pvalue)

    assert stdout.splitlines() == [
        f"1 image, 3 defects (0 touching the edge), mean diameter {np.mean(diameters):.1f} px "
        f"({np.mean(diameters) / 2:.2f} nm), {3 / 1.024e-22:.3g} per m^3, "
        f"swelling {100 * spheres / (102400 - spheres):.3g} % -> {out}",
        f"against the truth on 1 image: count error -1 (predicted 3, true 4), mean diameter "
        f"error {error:+.2f} px ({error / 2:+.2f} nm), KS statistic {ks.statistic:.3f} "
        f"(p = {ks.pvalue:.3g})",
    ]

    # Without a pixel size the thickness is recorded but there is no volume to divide by.
    status, stdout, _ = run(
        capsys,
        "predict",
        "run",
        tmp_path / "c.png",
        "--out",
        tmp_path / "p",
        "--threshold",
        0.5,
        "--thickness",
        100,
    )
    assert status == 0 and "per m^3" not in stdout and "swelling" not in stdout
    (summary,) = rows(tmp_path / "p/summary.csv")
    assert summary["thickness_nm"] == "100.0"
    assert summary["density_per_m3"] == summary["swelling"] == summary["density_per_um2"] == ""
