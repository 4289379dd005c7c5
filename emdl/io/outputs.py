"""Checks before a command writes into its output folder: nothing the user has is replaced unless
they asked (``--overwrite``), the command's own inputs never, and no symbolic link inside the
folder is followed for writing; and the list of files a command wrote there (its manifest), so
that a later run with ``--overwrite`` removes those and nothing else."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from emdl.errors import InputError
from emdl.io.atomic import write_text


def _real(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


def _link_inside(out_dir: Path, target: Path) -> Path | None:
    """The first symbolic link on the way from ``out_dir`` (itself not checked) to ``target``."""
    try:
        parts = target.relative_to(out_dir).parts
    except ValueError:
        raise InputError(target, f"is not inside the output folder {out_dir}") from None
    path = out_dir
    for part in parts:
        path = path / part
        if path.is_symlink():
            return path
    return None


def check_output_folder(
    out_dir: str | os.PathLike,
    targets: Iterable[str | os.PathLike],
    *,
    inputs: Sequence[str | os.PathLike] = (),
    overwrite: bool = False,
) -> None:
    """Refuse, before anything is written, to write ``targets`` (files under ``out_dir``).

    ``inputs`` are the files and folders the command reads. Refused always: a target that is
    one of the input files, a target that is a folder, and a symbolic link on the way from
    ``out_dir`` to a target. Refused unless ``overwrite``: ``out_dir`` being a folder that holds
    an input (the folder ``inputs`` names, or the one a named file is in), and a target that
    exists already.

    Raises:
        InputError: naming the folder or file and the problem, with the way out.
    """
    out_dir = Path(out_dir)
    real_out = _real(out_dir)
    input_files: set[str] = set()
    for item in map(Path, inputs):
        folder = item if item.is_dir() else item.parent
        if item.exists() and not item.is_dir():
            input_files.add(_real(item))
        if _real(folder) == real_out and not overwrite:
            raise InputError(
                out_dir,
                f"holds this command's input {item}; write to another folder "
                "(or give --overwrite to write beside it)",
            )
    for target in map(Path, targets):
        link = _link_inside(out_dir, target)
        if link is not None:
            raise InputError(
                link, "is a symbolic link inside the output folder; emdl does not write through it"
            )
        if target.is_dir():
            raise InputError(target, "is a folder where emdl would write a file")
        if not target.exists():
            continue
        real = _real(target)
        if real in input_files:
            raise InputError(
                target,
                "is an input of this command and is never replaced; write to another folder",
            )
        if not overwrite:
            raise InputError(
                target, "exists already; give --overwrite to replace it, or another --out"
            )


def read_manifest(manifest: str | os.PathLike) -> list[Path]:
    """The files a command listed in ``manifest`` (a JSON ``{"files": [...]}`` of names relative
    to its folder) when it wrote into that folder before; [] when there is no manifest.

    Raises:
        InputError: the manifest cannot be read, or lists a name that leaves its folder.
    """
    manifest = Path(manifest)
    if not manifest.exists():
        return []
    try:
        names = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise TypeError("'files' is not a list of names")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            manifest, f"is not a list of emdl's outputs ({exc}); remove it, or give another --out"
        ) from None
    files = []
    for name in names:
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise InputError(manifest, f"lists '{name}', outside its folder; remove the manifest")
        files.append(manifest.parent / relative)
    return files


def write_manifest(manifest: str | os.PathLike, files: Iterable[str | os.PathLike]) -> None:
    """List ``files`` (inside the manifest's folder) in ``manifest``, before they are written,
    so that an interrupted command's files are listed too."""
    manifest = Path(manifest)
    names = [Path(file).relative_to(manifest.parent).as_posix() for file in files]
    write_text(manifest, json.dumps({"files": names}, indent=1) + "\n")


def remove_outputs(out_dir: str | os.PathLike, files: Iterable[str | os.PathLike]) -> int:
    """Remove ``files`` (from :func:`read_manifest`) from ``out_dir``: files only, never a folder
    and never through a symbolic link; a link itself is removed. Returns how many were removed."""
    out_dir = Path(out_dir)
    removed = 0
    for file in map(Path, files):
        through_link = _link_inside(out_dir, file.parent) is not None
        if through_link or (file.is_dir() and not file.is_symlink()):
            continue
        if file.is_symlink() or file.exists():
            file.unlink()
            removed += 1
    return removed
