"""``emdl convert`` never replaces what the user did not ask to replace: its inputs, files that
exist in ``--out``, files behind a link; and it reads no image outside ``--images``."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from skimage import io as skio

from emdl.cli import main
from tests.conftest import box_image, box_xml, cvat_text


@pytest.fixture
def data(tmp_path) -> tuple[Path, Path]:
    """(annotations.xml, images folder) of two 64 x 64 micrographs a.png and b.png."""
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        skio.imsave(images / name, box_image(64), check_contrast=False)
    labels = tmp_path / "annotations.xml"
    labels.write_text(cvat_text(box_xml("a.png", 64) + "\n" + box_xml("b.png", 64)))
    return labels, images


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (links as their targets' names) by relative path."""
    return {
        str(path.relative_to(folder)): (
            os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file() or path.is_symlink()
    }


def convert(capsys, *args) -> tuple[int, str]:
    status = main(["convert", *map(str, args)])
    out, err = capsys.readouterr()
    assert out == "" or status == 0
    return status, err


def test_masks_into_the_image_folder_are_refused(capsys, data, tmp_path):
    labels, images = data
    before = snapshot(tmp_path)
    status, err = convert(capsys, labels, "--to", "masks", "--out", images, "--images", images)
    assert (status, err) == (
        1,
        f"emdl: error: {images}: holds this command's input {images}; write to another folder "
        "(or give --overwrite to write beside it)\n",
    )
    # --overwrite allows the folder, never the micrographs themselves.
    args = ("--to", "masks", "--out", images, "--images", images, "--overwrite")
    status, err = convert(capsys, labels, *args)
    assert (status, err) == (
        1,
        f"emdl: error: {images / 'a.png'}: is an input of this command and is never replaced; "
        "write to another folder\n",
    )
    assert snapshot(tmp_path) == before


def test_cvat_over_its_own_input_is_refused(capsys, data, tmp_path):
    labels, _ = data
    before = snapshot(tmp_path)
    status, err = convert(capsys, labels, "--to", "cvat", "--out", tmp_path)
    assert (status, err) == (
        1,
        f"emdl: error: {tmp_path}: holds this command's input {labels}; write to another folder "
        "(or give --overwrite to write beside it)\n",
    )
    status, err = convert(capsys, labels, "--to", "cvat", "--out", tmp_path, "--overwrite")
    assert (status, err) == (
        1,
        f"emdl: error: {labels}: is an input of this command and is never replaced; "
        "write to another folder\n",
    )
    assert snapshot(tmp_path) == before


def test_an_existing_classes_txt_is_replaced_only_when_asked(capsys, data, tmp_path):
    labels, _ = data
    out = tmp_path / "yolo"
    out.mkdir()
    (out / "classes.txt").write_text("my own classes\n")
    status, err = convert(capsys, labels, "--to", "yolo", "--out", out)
    assert (status, err) == (
        1,
        f"emdl: error: {out / 'classes.txt'}: exists already; give --overwrite to replace it, "
        "or another --out\n",
    )
    assert snapshot(out) == {"classes.txt": b"my own classes\n"}
    assert convert(capsys, labels, "--to", "yolo", "--out", out, "--overwrite")[0] == 0
    assert (out / "classes.txt").read_text() == "bubble\nloop\n"
    assert sorted(snapshot(out)) == ["classes.txt", "labels/a.txt", "labels/b.txt"]
    # A second run into the same folder is refused too: its own earlier files are in the way.
    status, err = convert(capsys, labels, "--to", "yolo", "--out", out)
    assert (status, err) == (
        1,
        f"emdl: error: {out / 'labels' / 'a.txt'}: exists already; give --overwrite to "
        "replace it, or another --out\n",
    )


def test_a_labels_link_inside_out_is_not_followed(capsys, data, tmp_path):
    labels, _ = data
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.txt").write_text("someone else's file\n")
    out = tmp_path / "yolo"
    out.mkdir()
    (out / "labels").symlink_to(elsewhere, target_is_directory=True)
    before = snapshot(tmp_path)
    for extra in ((), ("--overwrite",)):
        status, err = convert(capsys, labels, "--to", "yolo", "--out", out, *extra)
        assert (status, err) == (
            1,
            f"emdl: error: {out / 'labels'}: is a symbolic link inside the output folder; emdl "
            "does not write through it\n",
        )
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["ABSOLUTE", "../secret.png", "sub/../../secret.png"])
def test_image_names_outside_images_are_not_read(capsys, tmp_path, name):
    secret = tmp_path / "secret.png"
    skio.imsave(secret, box_image(64), check_contrast=False)
    name = str(secret) if name == "ABSOLUTE" else name
    images = tmp_path / "images"
    images.mkdir()
    labels = tmp_path / "labels" / "labels.xml"
    labels.parent.mkdir()
    labels.write_text(cvat_text(box_xml(name, 64)))
    out = tmp_path / "out"
    for extra in ((), ("--skip-missing",)):
        status, err = convert(
            capsys, labels, "--to", "masks", "--out", out, "--images", images, *extra
        )
        assert (status, err) == (
            1,
            f"emdl: error: {labels}: image name '{name}' leaves the images folder {images}\n",
        )
    assert not out.exists()


def test_a_failed_write_leaves_no_half_file(capsys, data, tmp_path, monkeypatch):
    labels, images = data
    real = skio.imsave
    calls = []

    def fill_the_disk(path, *args, **kwargs):
        calls.append(Path(path))
        if len(calls) == 2:
            Path(path).write_bytes(b"\x89PNG half")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, *args, **kwargs)

    monkeypatch.setattr("emdl.io.label_files.skio.imsave", fill_the_disk)
    out = tmp_path / "masks"
    status, err = convert(capsys, labels, "--to", "masks", "--out", out, "--images", images)
    assert (status, err) == (1, "emdl: error: [Errno 28] No space left on device\n")
    # The first mask is whole; the second was never renamed into place, nor left about.
    assert sorted(snapshot(out)) == ["a.png"]
    assert np.array_equal(skio.imread(out / "a.png") > 0, box_image(64) > 0)
    assert all(path.parent == out and path.name.startswith(".emdl-tmp-") for path in calls)
