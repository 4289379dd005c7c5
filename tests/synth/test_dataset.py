"""Synthetic folders read back as real data: exact labels, pixel sizes, the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emdl.cli import main
from emdl.errors import InputError
from emdl.io import read_coco, read_cvat, read_micrograph
from emdl.synth import make_scene, preset, read_pixel_size, write_dataset
from emdl.synth.dataset import image_seeds


def expected_annotations(kind, count, size, seed, **overrides):
    settings = preset(kind, **overrides)
    suffix = ".png" if settings.detector.bits == 8 else ".tif"
    scenes = [
        make_scene(settings, size, size, rng, name=f"synthetic_{i:04d}{suffix}")
        for i, rng in enumerate(image_seeds(seed, count))
    ]
    return settings, scenes


def test_cvat_folder_reads_back_exactly(tmp_path):
    report = write_dataset(tmp_path / "out", "bubbles", 2, 128, pixel_size_nm=0.37, seed=4, bits=16)
    annotations = read_cvat(tmp_path / "out/annotations.xml")
    _, scenes = expected_annotations("bubbles", 2, 128, 4, pixel_size_nm=0.37, bits=16)
    assert annotations.label_names == ["bubble"]
    assert annotations.report.clipped == 0 and not annotations.report.skipped
    assert [image.shapes for image in annotations.images] == [s.annotation.shapes for s in scenes]
    assert report.shapes["bubble"] == sum(len(s.annotation.shapes) for s in scenes) > 0
    for image, scene in zip(annotations.images, scenes, strict=True):
        micrograph = read_micrograph(tmp_path / "out/images" / image.name)
        assert micrograph.pixel_size_nm == pytest.approx(0.37, rel=1e-9)
        pixels = scene.image.astype(np.float64)
        scaled = (pixels - pixels.min()) / (pixels.max() - pixels.min())
        assert np.allclose(micrograph.image, scaled, atol=1e-6)
    assert read_pixel_size(tmp_path / "out/annotations.xml") == 0.37


def test_coco_folder_reads_back_exactly(tmp_path):
    write_dataset(tmp_path / "out", "mixed", 1, 128, seed=2, label_format="coco")
    coco = read_coco(tmp_path / "out/annotations.json")
    settings, scenes = expected_annotations("mixed", 1, 128, 2)
    assert coco.label_names == settings.label_names
    assert coco.images[0].shapes == scenes[0].annotation.shapes
    assert (
        json.loads((tmp_path / "out/annotations.json").read_text())["info"]["pixel_size_nm"] == 0.5
    )
    assert read_pixel_size(tmp_path / "out/annotations.json") == 0.5


def test_refuses_a_folder_that_holds_files(tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used/notes.txt").write_text("mine")
    with pytest.raises(InputError, match="already holds files"):
        write_dataset(tmp_path / "used", count=1, size=64)
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["notes.txt"]


def test_emdl_synth_writes_the_folder_and_refuses_a_used_out(tmp_path, capsys):
    out = tmp_path / "synth"
    args = ["synth", "--kind", "loops", "--count", "2", "--size", "96", "--seed", "1"]
    assert main([*args, "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert line.startswith("2 images, ") and line.endswith(f"-> {out / 'annotations.xml'}\n")
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "synthetic_0000.png",
        "synthetic_0001.png",
    ]
    first = (out / "images/synthetic_0000.png").read_bytes()
    assert main([*args, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err == f"emdl: error: {out}: already holds files; give a new or empty folder\n"
    assert (out / "images/synthetic_0000.png").read_bytes() == first
    # The same seed elsewhere gives the same image.
    assert main([*args, "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again/images/synthetic_0000.png").read_bytes() == first


def test_emdl_convert_reads_a_synthetic_folder(tmp_path, capsys):
    assert main(["synth", "--count", "1", "--size", "96", "--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    status = main(
        [
            "convert",
            str(tmp_path / "s/annotations.xml"),
            "--to",
            "masks",
            "--out",
            str(tmp_path / "masks"),
            "--images",
            str(tmp_path / "s/images"),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0 and "skipped: 0, clipped: 0" in out
    assert (tmp_path / "masks/synthetic_0000.png").is_file()


def test_training_pipeline_reads_a_synthetic_folder(tmp_path):
    from emdl.data import build_dataset, load_labeled_images

    write_dataset(tmp_path / "s", "bubbles", 2, 96, seed=0)
    records, classes = load_labeled_images(tmp_path / "s/annotations.xml", tmp_path / "s/images")
    assert classes == ["bubble"] and len(records) == 2
    dataset = build_dataset(records, classes, "semantic", window=64, batch_size=2, seed=0)
    images, masks = next(iter(dataset))
    assert images.shape == (2, 64, 64, 1) and masks.shape == (2, 64, 64, 1)
    assert int(np.max(masks)) == 1


def test_preview_beside_real_images(tmp_path, data_dir):
    report = write_dataset(tmp_path / "s", count=2, size=96, preview=data_dir / "bubbles")
    assert report.preview_path == tmp_path / "s/preview.png"
    assert read_micrograph(report.preview_path).image.shape[0] > 300
    with pytest.raises(InputError, match="no such folder"):
        write_dataset(tmp_path / "t", count=1, size=64, preview=tmp_path / "nowhere")
    assert not (tmp_path / "t/images").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--count", "0", "count must be at least 1, got 0"),
        ("--dose", "-5", "the dose must be a positive number, got -5.0"),
        ("--pixel-size", "nan", "the pixel size must be a positive number, got nan"),
    ],
)
def test_emdl_synth_refuses_bad_values_in_one_line(tmp_path, capsys, option, value, message):
    assert main(["synth", option, value, "--out", str(tmp_path / "s")]) == 1
    assert capsys.readouterr().err == f"emdl: error: {message}\n"
    assert not (tmp_path / "s").exists()
