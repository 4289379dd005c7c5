"""TF Serving's folder layout: ``DIR/NAME/VERSION/saved_model.pb`` and ``DIR/models.config``.

``tensorflow_model_server --model_base_path=DIR/NAME`` serves the highest ``VERSION`` under a
model's folder; ``--model_config_file=DIR/models.config`` serves every model listed there.
A version folder appears in one rename (it is written under a hidden temporary name first),
because TF Serving polls the folder and would load a half-written version.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from emdl.errors import InputError
from emdl.io.atomic import write_text

CONFIG_FILE = "models.config"
# Model names become URL path segments (/v1/models/NAME:predict).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_name(name: str) -> str:
    """``name`` if it can name a served model (letters, digits, ``.``, ``_``, ``-``)."""
    if not _NAME.fullmatch(name):
        raise InputError(
            name, "not a model name: use letters, digits, '.', '_' and '-', starting with one"
        )
    return name


def parse_version(text: str | int) -> int:
    """A version as TF Serving numbers them: a positive integer (``"3"`` -> 3)."""
    value = str(text).strip()
    if not value.isdigit() or int(value) < 1:
        raise InputError(str(text), "not a version: expected a positive integer such as 1")
    return int(value)


def versions(model_dir: Path) -> list[int]:
    """The version numbers of the SavedModels under ``model_dir``, ascending."""
    if not model_dir.is_dir():
        return []
    return sorted(
        int(entry.name)
        for entry in model_dir.iterdir()
        if entry.name.isdigit() and (entry / "saved_model.pb").is_file()
    )


def models(serving_dir: Path) -> list[str]:
    """The names of the models under ``serving_dir`` (folders holding at least one version)."""
    return sorted(
        entry.name for entry in serving_dir.iterdir() if entry.is_dir() and versions(entry)
    )


def write_version(
    write: Callable[[Path], None], serving_dir: str | os.PathLike, name: str, version: int | None
) -> Path:
    """Call ``write(path)`` to write a SavedModel, and place it as ``serving_dir/name/version``
    (``version`` defaults to one more than the highest there); then rewrite ``models.config``.
    Returns the version folder. Refuses a ``serving_dir`` that is a file and a version that
    exists; a failed ``write`` leaves nothing behind."""
    serving_dir = Path(serving_dir)
    if serving_dir.exists() and not serving_dir.is_dir():
        raise InputError(serving_dir, "is a file, not a serving folder")
    check_name(name)
    model_dir = serving_dir / name
    if model_dir.exists() and not model_dir.is_dir():
        raise InputError(model_dir, "is a file, not a model folder")
    if version is None:
        version = (versions(model_dir) or [0])[-1] + 1
    final = model_dir / str(version)
    if final.exists():
        raise InputError(final, "exists; give another --version (or none for the next one)")
    model_dir.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=model_dir))
    try:
        write(temporary / "model")
        os.rename(temporary / "model", final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    write_models_config(serving_dir)
    return final


def models_config(serving_dir: Path) -> str:
    """TF Serving's model config file (text ``ModelServerConfig``) listing every model under
    ``serving_dir``, with absolute base paths."""
    entries = "".join(
        "  config {\n"
        f'    name: "{name}"\n'
        f'    base_path: "{(serving_dir / name).resolve()}"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        for name in models(serving_dir)
    )
    return "model_config_list {\n" + entries + "}\n"


def write_models_config(serving_dir: str | os.PathLike) -> Path:
    """Write ``serving_dir/models.config`` (:func:`models_config`), by a rename into place."""
    serving_dir = Path(serving_dir)
    path = serving_dir / CONFIG_FILE
    write_text(path, models_config(serving_dir))
    return path
