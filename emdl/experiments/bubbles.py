"""What the bubble experiments share: their command line, finding the lecture's data (or
generating synthetic bubbles instead, with ``--synthetic``) and training on it."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emdl.synth.scene import SceneSettings

# --synthetic: how many bubble micrographs of how many pixels, and the share held out to score.
SYNTHETIC_COUNT = 8
SYNTHETIC_SIZE = 512
SYNTHETIC_HELD_OUT = 0.25
SYNTHETIC_DATA = "synthetic_data"  # their folder inside --out


def arguments(
    name: str,
    description: str,
    argv: Sequence[str] | None,
    *,
    epochs: int,
    steps_per_epoch: int,
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """``--data-dir`` or ``--synthetic``, ``--out`` (default ``runs/<name>``), ``--epochs`` and
    ``--steps-per-epoch`` of experiment ``name``, and those ``options`` adds to the parser; also
    quiets TensorFlow's C++ log."""
    parser = argparse.ArgumentParser(description=description)
    if options is not None:
        options(parser)
    parser.add_argument("--data-dir", help="folder with the bubbles files (default: found)")
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help=f"train and score on {SYNTHETIC_COUNT} generated bubble images instead (emdl synth; "
        f"written to OUT/{SYNTHETIC_DATA}/, nothing downloaded)",
    )
    parser.add_argument("--out", default=f"runs/{name}", help="run directory")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--steps-per-epoch", type=int, default=steps_per_epoch)
    parser.add_argument(
        "--overwrite", action="store_true", help="train again over a finished run in --out"
    )
    args = parser.parse_args(argv)
    if args.synthetic and args.data_dir:
        parser.error("give --data-dir or --synthetic, not both")
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


def synthetic_data(
    out: str | os.PathLike,
    count: int | None = None,
    size: int | None = None,
    *,
    folder: str = SYNTHETIC_DATA,
    seed: int = 0,
    settings: SceneSettings | None = None,
) -> tuple[Path, Path]:
    """(labels, images) of ``count`` (default :data:`SYNTHETIC_COUNT`) synthetic ``size x size``
    (:data:`SYNTHETIC_SIZE`) bubble micrographs of emdl.synth's bubble preset (or of
    ``settings``, a SceneSettings) in ``out/folder/``, with a line saying so. They are written
    the first time
    and reused after (the same seed gives the same images), so that a rerun or ``--overwrite``
    of the run beside them trains on the same data.

    Raises:
        EmdlError: the folder holds another number of images, or cannot be written.
    """
    from emdl.errors import EmdlError
    from emdl.synth import write_dataset

    count = SYNTHETIC_COUNT if count is None else count
    size = SYNTHETIC_SIZE if size is None else size
    data = Path(out) / folder
    labels, images = data / "annotations.xml", data / "images"
    if labels.is_file():
        found = len(list(images.glob("synthetic_*.png"))) if images.is_dir() else 0
        if found != count:
            raise EmdlError(
                f"{data}: holds {found} synthetic images, not {count}; delete it or give "
                "another --out"
            )
        print(f"data: {count} synthetic bubble images in {data} (made before)")
    else:
        report = write_dataset(data, "bubbles", count, size, seed=seed, settings=settings)
        print(f"data: {report.summary()}")
    return labels, images


@dataclass(frozen=True)
class BubbleData:
    """What an experiment trains on: label files, their images' folder, the lecture's test pair
    (None when held back, or for synthetic data) and whether the images are synthetic."""

    labels: tuple[str, ...]
    images: str
    pair: tuple[Path, Path] | None
    synthetic: bool = False

    @property
    def scored_on(self) -> str:
        """``the test image``, ``the held-out training image`` or ``held-out synthetic images``."""
        if self.synthetic:
            return "held-out synthetic images"
        return "the test image" if self.pair else "the held-out training image"

    def into(self, config):
        """``config`` (a RunConfig) on these synthetic images, a share of them held out; real
        data: ``config`` as it is."""
        if not self.synthetic:
            return config
        data = dataclasses.replace(
            config.data,
            labels=self.labels,
            images=self.images,
            validation_fraction=SYNTHETIC_HELD_OUT,
        )
        return dataclasses.replace(config, data=data)


def bubble_data(name: str, args: argparse.Namespace) -> BubbleData | None:
    """The lecture's data (:func:`find_data`) or, with ``args.synthetic``, synthetic bubbles in
    ``args.out`` (:func:`synthetic_data`); None after one line on stderr saying why not."""
    from emdl.errors import EmdlError
    from emdl.sample_data import BUBBLES

    if args.synthetic:
        try:
            labels, images = synthetic_data(args.out)
        except EmdlError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return None
        print(f"evaluating on {SYNTHETIC_HELD_OUT:.0%} of them, held out")
        return BubbleData((str(labels),), str(images), None, synthetic=True)
    found = find_data(name, args.data_dir)
    if found is None:
        return None
    folder, pair = found
    return BubbleData(tuple(str(folder / n) for n in BUBBLES.train_labels), str(folder), pair)


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
