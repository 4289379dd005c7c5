"""What the three bubble experiments share: their command line, finding the lecture's data and
training on it."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path


def arguments(
    name: str, description: str, argv: Sequence[str] | None, *, epochs: int, steps_per_epoch: int
) -> argparse.Namespace:
    """``--data-dir``, ``--out`` (default ``runs/<name>``), ``--epochs`` and
    ``--steps-per-epoch`` of experiment ``name``; also quiets TensorFlow's C++ log."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", help="folder with the bubbles files (default: found)")
    parser.add_argument("--out", default=f"runs/{name}", help="run directory")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--steps-per-epoch", type=int, default=steps_per_epoch)
    parser.add_argument(
        "--overwrite", action="store_true", help="train again over a finished run in --out"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return args


def find_data(name: str, data_dir: str | None) -> tuple[Path, tuple[Path, Path] | None] | None:
    """The bubbles folder and its test pair (None when held back), with a line saying what will
    be scored; or None after one line on stderr saying why the data was not found."""
    from emdl.errors import EmdlError
    from emdl.sample_data import BUBBLES, locate, test_pair

    try:
        folder = locate(BUBBLES, data_dir)
    except EmdlError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return None
    pair = test_pair(folder)
    print(f"data: {folder}; evaluating on " + ("test_image.png" if pair else "a held-out image"))
    return folder, pair


def train(config, out: str, *, overwrite: bool = False):
    """:func:`emdl.train.run.train_run` with a line of progress per epoch."""
    from emdl.errors import EmdlError
    from emdl.train.run import train_run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the four images Lab_2 names but the lecture lacks
        try:
            return train_run(config, out, verbose=2, overwrite=overwrite)
        except EmdlError as exc:  # e.g. a finished run in --out: one line, status 1
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
