"""The ``emdl convert`` command on the real data and on bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from skimage import io as skio

from emdl.cli import main
from emdl.io.cvat import read_cvat
from tests.conftest import box_image, box_xml


def run(capsys, *args) -> tuple[int, str, str]:
    status = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("to", "written"),
    [("coco", "annotations.json"), ("yolo", "labels"), ("masks", ""), ("cvat", "annotations.xml")],
)
def test_convert_bubbles(capsys, data_dir, tmp_path, to, written):
    labels = data_dir / "bubbles/DL_for_Microscopy_Train_Lab_1.xml"
    status, out, err = run(
        capsys, "convert", labels, "--to", to, "--out", tmp_path, "--images", data_dir / "bubbles"
    )
    assert (status, err) == (0, "")
    target = tmp_path / written if written else tmp_path
    assert out == f"images: 1, shapes: 37 (polygon 37), skipped: 0, clipped: 0 -> {target}\n"
    if to == "coco":
        coco = json.loads((tmp_path / "annotations.json").read_text())
        assert len(coco["annotations"]) == 37
    elif to == "yolo":
        lines = (tmp_path / "labels/DL_for_Microscopy_Train_Img_1.txt").read_text().splitlines()
        assert len(lines) == 37
        assert (tmp_path / "classes.txt").read_text() == "bubble\n"
    elif to == "masks":
        mask = skio.imread(tmp_path / "DL_for_Microscopy_Train_Img_1.png")
        assert mask.shape == (512, 512)
        assert set(np.unique(mask)) == {0, 1}
    else:
        assert read_cvat(tmp_path / "annotations.xml").images == read_cvat(labels).images


def test_convert_loops_to_yolo(capsys, data_dir, tmp_path):
    status, out, _ = run(
        capsys,
        "convert",
        data_dir / "loops111/annotations.xml",
        "--to",
        "yolo",
        "--out",
        tmp_path,
        "--images",
        data_dir / "loops111/images",
    )
    assert status == 0
    assert out.startswith("images: 266, shapes: 7383 (box 7383), skipped: 0, clipped: 0")
    files = sorted((tmp_path / "labels").glob("*.txt"))
    assert len(files) == 266
    assert sum(len(f.read_text().splitlines()) for f in files) == 7383


def test_cvat_to_coco_to_cvat_on_real_data(capsys, data_dir, tmp_path):
    labels = data_dir / "bubbles/DL_for_Microscopy_Train_Lab_2.xml"
    assert run(capsys, "convert", labels, "--to", "coco", "--out", tmp_path / "coco")[0] == 0
    coco = tmp_path / "coco/annotations.json"
    assert run(capsys, "convert", coco, "--to", "cvat", "--out", tmp_path / "cvat")[0] == 0
    again = read_cvat(tmp_path / "cvat/annotations.xml")
    original = read_cvat(labels)
    assert again.labels == original.labels
    assert again.images == original.images


def test_skipped_shapes_are_warned_and_counted(capsys, tmp_path, write_cvat_text):
    labels = write_cvat_text(
        '<image id="0" name="a.png" width="10" height="10">\n'
        '<polygon label="bubble" points="1,1;2,2"/>\n'
        '<box label="loop" xtl="-2" ytl="1" xbr="4" ybr="4"/>\n</image>'
    )
    status, out, err = run(capsys, "convert", labels, "--to", "yolo", "--out", tmp_path / "y")
    assert status == 0
    assert err == (
        f"emdl: warning: {labels}: image 'a.png', polygon #0: polygon with fewer than 3 points; "
        "skipped\n"
    )
    assert out.startswith(
        "images: 1, shapes: 1 (box 1), skipped: 1 (polygon with fewer than 3 points: 1), clipped: 1"
    )


def one_image_labels(write_cvat_text, width=512, height=512) -> Path:
    return write_cvat_text(
        f'<image id="0" name="DL_for_Microscopy_Train_Img_1.png" width="{width}" '
        f'height="{height}">\n</image>\n'
        f'<image id="1" name="missing.png" width="{width}" height="{height}"/>'
    )


def test_missing_image_is_an_error(capsys, data_dir, tmp_path, write_cvat_text):
    labels = one_image_labels(write_cvat_text)
    images = data_dir / "bubbles"
    status, out, err = run(
        capsys, "convert", labels, "--to", "coco", "--out", tmp_path, "--images", images
    )
    assert (status, out) == (1, "")
    assert err == f"emdl: error: {labels}: image 'missing.png' not found in {images}\n"


def test_image_of_another_size_is_an_error(capsys, data_dir, tmp_path, write_cvat_text):
    labels = write_cvat_text(
        '<image id="0" name="DL_for_Microscopy_Train_Img_1.png" width="500" height="512"/>'
    )
    images = data_dir / "bubbles"
    status, _, err = run(
        capsys, "convert", labels, "--to", "coco", "--out", tmp_path, "--images", images
    )
    image = data_dir / "bubbles/DL_for_Microscopy_Train_Img_1.png"
    assert status == 1
    assert err == f"emdl: error: {image}: image is 512 x 512, the labels say 500 x 512\n"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "empty file"),
        ("hello", "neither XML (CVAT) nor JSON (COCO)"),
        ("<annotations><meta>", "2: malformed XML"),
        ('{"images": [}', "1: "),
    ],
)
def test_bad_label_files_are_one_line_errors(capsys, tmp_path, content, problem):
    path = tmp_path / "labels.txt"
    path.write_text(content + "\n")
    status, out, err = run(capsys, "convert", path, "--to", "cvat", "--out", tmp_path / "o")
    assert (status, out) == (1, "")
    assert err.startswith(f"emdl: error: {path}")
    assert problem in err
    assert err.count("\n") == 1


def test_console_script_exit_status(tmp_path):
    emdl = shutil.which("emdl") or str(Path(sys.executable).with_name("emdl"))
    result = subprocess.run(
        [emdl, "convert", str(tmp_path / "none.xml"), "--to", "coco", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == f"emdl: error: {tmp_path / 'none.xml'}: No such file or directory\n"


def test_augment_preview(capsys, tmp_path, labeled_folder):
    labels, folder = labeled_folder({"a.png": (box_image(64), box_xml("a.png", 64))})
    out = tmp_path / "preview.png"
    status, printed, err = run(
        capsys,
        "augment",
        labels,
        "--images",
        folder,
        "--out",
        out,
        "--window",
        "32",
        "--count",
        "6",
        "--seed",
        "4",
    )
    assert (status, err) == (0, "")
    assert printed == f"6 augmented 32 x 32 crops of 1 images (detection) -> {out}\n"
    grid = skio.imread(out)
    assert grid.shape == (2 * 36 - 4, 4 * 36 - 4, 3)
    assert (grid == [230, 25, 75]).all(axis=-1).any()  # boxes are drawn in the first colour


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ('{"sharpen": {}}', "unknown augmentation 'sharpen'"),
        ('{"blur": {"range": [3, 1]}}', "range [3.0, 1.0] must be increasing"),
        ("{oops", "Expecting property name"),
    ],
)
def test_augment_bad_config(capsys, tmp_path, labeled_folder, config, problem):
    labels, folder = labeled_folder({"a.png": (box_image(64), box_xml("a.png", 64))})
    path = tmp_path / "augment.json"
    path.write_text(config)
    status, _, err = run(
        capsys,
        "augment",
        labels,
        "--images",
        folder,
        "--out",
        tmp_path / "p.png",
        "--config",
        path,
    )
    assert status == 1
    assert err.startswith(f"emdl: error: {path}: ") and problem in err
    assert err.count("\n") == 1


def test_augment_window_larger_than_the_image(capsys, tmp_path, labeled_folder):
    labels, folder = labeled_folder({"a.png": (box_image(64), box_xml("a.png", 64))})
    status, _, err = run(
        capsys,
        "augment",
        labels,
        "--images",
        folder,
        "--out",
        tmp_path / "p.png",
        "--window",
        "128",
    )
    assert status == 1
    assert err == (
        f"emdl: error: {folder / 'a.png'}: image is 64 x 64, smaller than the 128 x 128 crop "
        "window\n"
    )


def test_convert_skips_missing_images_when_asked(tmp_path, capsys, data_dir):
    cli = main
    data = data_dir / "bubbles"
    labels = data / "DL_for_Microscopy_Train_Lab_2.xml"
    assert (
        cli(
            [
                "convert",
                str(labels),
                "--to",
                "masks",
                "--out",
                str(tmp_path / "m"),
                "--images",
                str(data),
            ]
        )
        == 1
    )
    assert "not found in" in capsys.readouterr().err
    status = cli(
        [
            "convert",
            str(labels),
            "--to",
            "masks",
            "--out",
            str(tmp_path / "m"),
            "--images",
            str(data),
            "--skip-missing",
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0
    assert out.startswith("images: 1, ")  # the one image of the five that the folder has
    assert err.count("emdl: warning:") == 4 and "left out" in err
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["DL_for_Microscopy_Train_Img_2.png"]


def test_max_pixels_sets_the_limit_of_every_label_reader(capsys, tmp_path, write_cvat_text):
    image = '<image id="0" name="a.png" width="10" height="9"/>'
    labels = write_cvat_text(image)
    line = labels.read_text().splitlines().index(image) + 1
    out = tmp_path / "out"
    assert (
        main(["--max-pixels", "89", "convert", str(labels), "--to", "coco", "--out", str(out)]) == 1
    )
    assert capsys.readouterr().err == (
        f"emdl: error: {labels}:{line}: image 'a.png' declares 10 x 9 pixels, more than the "
        "limit of "
        "89 (emdl --max-pixels N raises it)\n"
    )
    assert not out.exists()
    assert (
        main(["--max-pixels", "90", "convert", str(labels), "--to", "coco", "--out", str(out)]) == 0
    )
    from emdl.io.checks import MAX_PIXELS, default_pixel_limit

    assert default_pixel_limit() == MAX_PIXELS  # the limit ends with the command


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "must be at least 1, got 0"),
        ("-3", "must be at least 1, got -3"),
        ("x", "expected an integer, got 'x'"),
        ("1.5", "expected an integer, got '1.5'"),
    ],
)
def test_max_pixels_must_be_a_positive_integer(capsys, value, problem):
    with pytest.raises(SystemExit) as exit_:
        main(["--max-pixels", value, "convert", "x.xml", "--to", "coco", "--out", "o"])
    assert exit_.value.code == 2
    assert f"argument --max-pixels: {problem}" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "0"])
def test_convert_refuses_a_line_width_that_draws_nothing_or_everything(
    capsys, tmp_path, write_cvat_text, value
):
    labels = write_cvat_text('<image id="0" name="a.png" width="10" height="9"/>')
    out = tmp_path / "out"
    argv = ["convert", str(labels), "--to", "yolo", "--out", str(out), "--line-width", value]
    assert main(argv) == 1
    assert capsys.readouterr().err == (
        f"emdl: error: --line-width: expected a positive number of pixels, got {float(value)}\n"
    )
    assert not out.exists()
