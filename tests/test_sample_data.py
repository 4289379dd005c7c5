"""emdl.sample_data: the data folder is found in order (given, $EMDL_DATA_DIR, cache) or downloaded.

Downloads come from a fake upstream folder through ``file://`` URLs: no network is used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from emdl import (
    sample_data as datasets,  # not ``from ... import test_pair``: pytest would collect it
)
from emdl.errors import InputError
from emdl.sample_data import BUBBLES, ChecksumError, DataNotFoundError, DataWarning, locate

SHARED = Path(
    os.environ.get("EMDL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Every test gets an empty user cache in tmp_path and no $EMDL_DATA_DIR."""
    monkeypatch.setenv("EMDL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EMDL_DATA_DIR", raising=False)
    return tmp_path / "cache" / "bubbles"


@pytest.fixture
def upstream(tmp_path) -> tuple[datasets.Dataset, Path]:
    """Six small files served from tmp_path/upstream, described like BUBBLES."""
    folder = tmp_path / "upstream"
    folder.mkdir()
    files = []
    for name, _ in BUBBLES.files:
        content = f"fake {name}\n".encode()
        (folder / name).write_bytes(content)
        files.append((name, hashlib.sha256(content).hexdigest()))
    dataset = dataclasses.replace(BUBBLES, base_url=folder.as_uri() + "/", files=tuple(files))
    return dataset, folder


def test_bubbles_description():
    assert BUBBLES.base_url.endswith("/Lecture%2013/")
    assert len(BUBBLES.files) == 6
    assert BUBBLES.required == (
        "DL_for_Microscopy_Train_Img_1.png",
        "DL_for_Microscopy_Train_Img_2.png",
        "DL_for_Microscopy_Train_Lab_1.xml",
        "DL_for_Microscopy_Train_Lab_2.xml",
    )
    assert BUBBLES.optional == ("test_image.png", "test_label.png")
    assert BUBBLES.sha256["test_label.png"].startswith("533c9da3")


def test_real_folder_given():
    folder = SHARED / "bubbles"
    assert locate(data_dir=folder) == folder
    assert datasets.test_pair(folder) is None  # the test pair is deliberately not shared


def test_real_files_match_the_published_checksums():
    for name in BUBBLES.required:
        digest = hashlib.sha256((SHARED / "bubbles" / name).read_bytes()).hexdigest()
        assert digest == BUBBLES.sha256[name], name


def test_emdl_data_dir_is_used(monkeypatch):
    monkeypatch.setenv("EMDL_DATA_DIR", str(SHARED))
    assert locate(download=False) == SHARED / "bubbles"


def test_folder_missing_a_required_file_is_an_input_error(tmp_path):
    folder = tmp_path / "bubbles"
    folder.mkdir()
    for name in BUBBLES.required[:3]:
        (folder / name).write_text("x")
    with pytest.raises(InputError, match="missing DL_for_Microscopy_Train_Lab_2.xml") as caught:
        locate(data_dir=folder)
    assert caught.value.path == str(folder)
    (folder / BUBBLES.required[3]).write_text("x")
    with pytest.raises(InputError, match=f"did you mean {folder}"):
        locate(data_dir=tmp_path)


def test_download_into_the_cache_then_reuse_it(upstream, cache, capsys):
    dataset, folder = upstream
    assert locate(dataset) == cache
    for name, _ in dataset.files:
        assert (cache / name).read_bytes() == (folder / name).read_bytes()
    assert datasets.test_pair(cache, dataset) == (
        cache / "test_image.png",
        cache / "test_label.png",
    )
    assert "Downloading data from file://" in capsys.readouterr().out

    shutil.rmtree(folder)  # offline from now on
    assert locate(dataset) == cache
    assert locate(dataset, download=False) == cache
    assert "Downloading" not in capsys.readouterr().out


def test_wrong_checksum_is_an_error_and_leaves_no_file(upstream, cache):
    dataset, _ = upstream
    files = dict(dataset.files) | {"DL_for_Microscopy_Train_Lab_1.xml": "0" * 64}
    dataset = dataclasses.replace(dataset, files=tuple(files.items()))
    with pytest.raises(ChecksumError, match="DL_for_Microscopy_Train_Lab_1.xml .*expected 0000"):
        locate(dataset)
    assert not (cache / "DL_for_Microscopy_Train_Lab_1.xml").exists()


def test_corrupt_cached_file_is_deleted(upstream, cache):
    dataset, folder = upstream
    locate(dataset)
    (cache / "DL_for_Microscopy_Train_Img_2.png").write_bytes(b"truncated")
    (cache / "test_label.png").write_bytes(b"truncated")
    shutil.rmtree(folder)
    with (
        pytest.warns(DataWarning, match="deleted corrupt cached file .*Train_Img_2.png"),
        pytest.raises(DataNotFoundError),
    ):
        locate(dataset)
    assert not (cache / "DL_for_Microscopy_Train_Img_2.png").exists()
    with pytest.warns(DataWarning, match="deleted corrupt cached file .*test_label.png"):
        assert datasets.test_pair(cache, dataset) is None


def test_missing_optional_file_only_warns(upstream, cache):
    dataset, folder = upstream
    (folder / "test_label.png").unlink()
    with pytest.warns(DataWarning, match="could not download optional test_label.png"):
        assert locate(dataset) == cache
    assert (cache / "test_image.png").is_file()
    assert datasets.test_pair(cache, dataset) is None


def test_missing_required_file_says_how_to_supply_the_data(upstream, cache):
    dataset, folder = upstream
    (folder / "DL_for_Microscopy_Train_Lab_2.xml").unlink()
    with pytest.raises(DataNotFoundError) as caught:
        locate(dataset)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("bubbles data not found: pass --data-dir DIR")
    assert "EMDL_DATA_DIR" in message and str(cache) in message


def test_no_download_when_told_not_to(upstream, cache):
    dataset, _ = upstream
    with pytest.raises(DataNotFoundError, match="EMDL_DATA_DIR"):
        locate(dataset, download=False)
    assert not cache.exists()


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("EMDL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_folder() == tmp_path / "xdg" / "emdl" / "bubbles"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert datasets.cache_folder() == Path.home() / ".cache" / "emdl" / "bubbles"
