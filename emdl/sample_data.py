"""Where the experiments find their data: a folder given, ``$EMDL_DATA_DIR``, or the user cache.

The bubbles data set (see ``shared/data/bubbles/README.md``) is six files in a public GitHub
folder: two training images, their two CVAT label files and a held-out test pair. :func:`locate`
returns a folder holding the four training files, downloading all six into the user cache
(``~/.cache/emdl/bubbles``) when they are nowhere else. The test pair is optional:
:func:`test_pair` says whether a folder has it.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from emdl.errors import EmdlError, InputError


class DataNotFoundError(EmdlError):
    """The data set is in no folder emdl looks in, and downloading it failed or was not allowed."""


class ChecksumError(EmdlError):
    """A downloaded or cached file is not the published one (its SHA-256 differs)."""


class DataWarning(UserWarning):
    """An optional file (the test pair) could not be had, or a corrupt cached file was deleted."""


@dataclass(frozen=True)
class Dataset:
    """A data set published as single files under ``base_url``, each with its SHA-256."""

    name: str
    base_url: str
    files: tuple[tuple[str, str], ...]  # (file name, sha256) for every file, in download order
    train_images: tuple[str, ...]
    train_labels: tuple[str, ...]
    test_image: str
    test_label: str

    @property
    def sha256(self) -> dict[str, str]:
        return dict(self.files)

    @property
    def required(self) -> tuple[str, ...]:
        """The training files: a data folder must hold all of them."""
        return self.train_images + self.train_labels

    @property
    def optional(self) -> tuple[str, ...]:
        """The held-out test pair (image, label): used when present."""
        return (self.test_image, self.test_label)


BUBBLES = Dataset(
    name="bubbles",
    base_url=(
        "https://raw.githubusercontent.com/SergeiVKalinin/ML-ElectronMicroscopy-2023/main/Lecture%2013/"
    ),
    files=(
        (
            "DL_for_Microscopy_Train_Img_1.png",
            "228dea75a0ebc2a4d43f0ffef47d4e80d1bef6789d57833205f40b062f21e27d",
        ),
        (
            "DL_for_Microscopy_Train_Img_2.png",
            "80ef30ea195ac04d7c5dc3aea89f8cbe742f64fbbe720b83dc0864723d45425a",
        ),
        (
            "DL_for_Microscopy_Train_Lab_1.xml",
            "c3ddf17f45baacea5adb9c6acd114e4179ab86c6d2c6fbb161a8c7c73eeaf4a3",
        ),
        (
            "DL_for_Microscopy_Train_Lab_2.xml",
            "871de101cbd5ae098d09a401c2fff12f0e6c0b68dc92ca341e48f33aec96a912",
        ),
        ("test_image.png", "666fdcc23f3d26f535da7642bb52a097b32cf42e8b8a7a17d2e14ee604d1a8a2"),
        ("test_label.png", "533c9da36355865d9c4b25b7d804bd3009d7c4216bff51ff139812226e0ca1b6"),
    ),
    train_images=("DL_for_Microscopy_Train_Img_1.png", "DL_for_Microscopy_Train_Img_2.png"),
    train_labels=("DL_for_Microscopy_Train_Lab_1.xml", "DL_for_Microscopy_Train_Lab_2.xml"),
    test_image="test_image.png",
    test_label="test_label.png",
)


def cache_root() -> Path:
    """``$EMDL_CACHE_DIR``, else ``$XDG_CACHE_HOME/emdl``, else ``~/.cache/emdl``."""
    if os.environ.get("EMDL_CACHE_DIR"):
        return Path(os.environ["EMDL_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "emdl"


def cache_folder(dataset: Dataset = BUBBLES) -> Path:
    return cache_root() / dataset.name


def locate(
    dataset: Dataset = BUBBLES, data_dir: str | PathLike | None = None, *, download: bool = True
) -> Path:
    """The folder holding ``dataset``'s training files: ``data_dir`` if given, else
    ``$EMDL_DATA_DIR/<name>``, else the user cache, else (if ``download``) the user cache after
    downloading all files into it. Raises :class:`InputError` if ``data_dir`` lacks a training
    file, :class:`ChecksumError` if a download is corrupt and :class:`DataNotFoundError` if the
    data is nowhere and cannot be downloaded."""
    if data_dir is not None:
        folder = Path(data_dir)
        missing = _missing(dataset, folder)
        if missing:
            hint = ""
            if not _missing(dataset, folder / dataset.name):
                hint = f" (did you mean {folder / dataset.name}?)"
            raise InputError(
                folder, f"not a {dataset.name} folder: missing {', '.join(missing)}{hint}"
            )
        return folder

    if os.environ.get("EMDL_DATA_DIR"):
        folder = Path(os.environ["EMDL_DATA_DIR"]).expanduser() / dataset.name
        missing = _missing(dataset, folder)
        if not missing:
            return folder
        if folder.is_dir():
            _warn(f"ignoring {folder} (EMDL_DATA_DIR): missing {', '.join(missing)}")

    cache = cache_folder(dataset)
    if all(_cached_file_ok(dataset, cache, name) for name in dataset.required):
        return cache
    if not download:
        raise DataNotFoundError(_not_found(dataset, cache, "downloading is off"))
    _download(dataset, cache)
    return cache


def test_pair(folder: str | PathLike, dataset: Dataset = BUBBLES) -> tuple[Path, Path] | None:
    """The test image and label in ``folder`` if both are there (and, in the user cache, are the
    published files), else None."""
    folder = Path(folder)
    in_cache = folder.resolve() == cache_folder(dataset).resolve()
    for name in dataset.optional:
        ok = _cached_file_ok(dataset, folder, name) if in_cache else (folder / name).is_file()
        if not ok:
            return None
    return folder / dataset.test_image, folder / dataset.test_label


def _missing(dataset: Dataset, folder: Path) -> list[str]:
    return [name for name in dataset.required if not (folder / name).is_file()]


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _cached_file_ok(dataset: Dataset, folder: Path, name: str) -> bool:
    """Whether ``folder/name`` is there with the published checksum; a corrupt one is deleted."""
    path = folder / name
    if not path.is_file():
        return False
    if _sha256(path) == dataset.sha256[name]:
        return True
    path.unlink()
    _warn(f"deleted corrupt cached file {path} (its sha256 differs from the published one)")
    return False


def _download(dataset: Dataset, folder: Path) -> None:
    """Fetches every file not yet in ``folder``; a required one that fails raises, an optional
    one that fails warns."""
    from keras.utils import get_file  # imports TensorFlow: only when downloading

    folder.mkdir(parents=True, exist_ok=True)
    for name, sha256 in dataset.files:
        if _cached_file_ok(dataset, folder, name):
            continue
        path, origin = folder / name, dataset.base_url + name
        try:
            # An absolute cache_subdir is used as is: with a relative one, get_file would silently
            # save to /tmp/.keras/<subdir> when cache_dir is not writable.
            get_file(
                name,
                origin,
                file_hash=sha256,
                cache_dir=str(folder.parent),
                cache_subdir=str(folder),
            )
        except Exception as error:  # get_file raises a bare Exception when the fetch fails
            if path.exists():  # fetched, but the hash differs: get_file leaves the file behind
                problem = (
                    f"{name} downloaded from {origin} has sha256 {_sha256(path)}, "
                    f"expected {sha256}; deleted it"
                )
                path.unlink()
                if name in dataset.required:
                    raise ChecksumError(problem) from error
                _warn(f"{dataset.name}: optional {problem}")
            elif name in dataset.required:
                reason = " ".join(str(error).split())
                raise DataNotFoundError(_not_found(dataset, folder, reason)) from error
            else:
                _warn(f"{dataset.name}: could not download optional {name}; going without it")


def _not_found(dataset: Dataset, cache: Path, reason: str) -> str:
    return (
        f"{dataset.name} data not found: pass --data-dir DIR, set EMDL_DATA_DIR to a folder "
        f"holding {dataset.name}/, or connect to the internet to download it into {cache} "
        f"({reason})"
    )


def _warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)
