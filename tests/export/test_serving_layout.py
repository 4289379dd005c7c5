"""TF Serving's layout: versions, names, models.config, and nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from emdl.errors import InputError
from emdl.export.serving_layout import (
    check_name,
    models_config,
    parse_version,
    versions,
    write_version,
)


def fake_saved_model(path: Path) -> None:
    path.mkdir()
    (path / "saved_model.pb").write_bytes(b"pb")


@pytest.mark.parametrize("text, value", [("1", 1), ("12", 12), (3, 3), (" 7 ", 7)])
def test_versions_are_positive_integers(text, value):
    assert parse_version(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "x", "", "1e3"])
def test_other_versions_are_refused(text):
    with pytest.raises(InputError, match="not a version: expected a positive integer"):
        parse_version(text)


@pytest.mark.parametrize("name", ["bubbles", "unet_bubbles-2", "a.b"])
def test_model_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "a/b", "../up", ".hidden", "a b", "é"])
def test_names_that_cannot_be_url_segments_are_refused(name):
    with pytest.raises(InputError, match="not a model name"):
        check_name(name)


def test_versions_count_up_and_models_config_lists_every_model(tmp_path):
    serving = tmp_path / "serving"
    first = write_version(fake_saved_model, serving, "unet", None)
    second = write_version(fake_saved_model, serving, "unet", None)
    tenth = write_version(fake_saved_model, serving, "unet", 10)
    other = write_version(fake_saved_model, serving, "yolo", None)
    assert [first, second, tenth, other] == [
        serving / "unet" / "1",
        serving / "unet" / "2",
        serving / "unet" / "10",
        serving / "yolo" / "1",
    ]
    assert versions(serving / "unet") == [1, 2, 10]
    assert write_version(fake_saved_model, serving, "unet", None) == serving / "unet" / "11"
    root = serving.resolve()
    expected = (
        "model_config_list {\n"
        f'  config {{\n    name: "unet"\n    base_path: "{root / "unet"}"\n'
        '    model_platform: "tensorflow"\n  }\n'
        f'  config {{\n    name: "yolo"\n    base_path: "{root / "yolo"}"\n'
        '    model_platform: "tensorflow"\n  }\n'
        "}\n"
    )
    assert (serving / "models.config").read_text() == expected == models_config(serving)
    # Only the version folders and models.config: no temporary names left.
    assert sorted(p.name for p in serving.iterdir()) == ["models.config", "unet", "yolo"]
    assert sorted(p.name for p in (serving / "unet").iterdir()) == ["1", "10", "11", "2"]


def test_an_existing_version_is_refused_and_kept(tmp_path):
    write_version(fake_saved_model, tmp_path, "unet", 1)
    with pytest.raises(InputError, match=r"unet/1: exists; give another --version"):
        write_version(fake_saved_model, tmp_path, "unet", 1)
    assert (tmp_path / "unet" / "1" / "saved_model.pb").read_bytes() == b"pb"


def test_a_failed_export_leaves_nothing(tmp_path):
    def broken(path: Path) -> None:
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_version(broken, tmp_path, "unet", None)
    assert list((tmp_path / "unet").iterdir()) == []
    assert not (tmp_path / "models.config").exists()


def test_a_serving_dir_that_is_a_file_is_refused(tmp_path):
    file = tmp_path / "serving"
    file.write_text("not a folder")
    with pytest.raises(InputError, match="serving: is a file, not a serving folder"):
        write_version(fake_saved_model, file, "unet", None)
    assert file.read_text() == "not a folder"
