"""The ``emdl`` command line: parses arguments and calls the library."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from emdl import __version__
from emdl.errors import EmdlError, LabelWarning


def _convert(args: argparse.Namespace) -> None:
    from emdl.convert import convert_labels, summary

    annotations, written = convert_labels(
        args.labels, args.to, args.out, images_dir=args.images, line_width=args.line_width
    )
    print(f"{summary(annotations)} -> {written}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emdl", description="Deep learning for electron micrographs of radiation damage."
    )
    parser.add_argument("--version", action="version", version=f"emdl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser(
        "convert",
        help="convert CVAT XML or COCO JSON labels to coco, yolo, masks or cvat",
        description="Convert a CVAT for images 1.1 XML or COCO JSON label file.",
    )
    convert.add_argument("labels", help="CVAT XML or COCO JSON file (told apart by content)")
    convert.add_argument("--to", required=True, choices=("coco", "yolo", "masks", "cvat"))
    convert.add_argument("--out", required=True, help="output folder")
    convert.add_argument("--images", help="folder of the images; checks that each is there")
    convert.add_argument(
        "--line-width",
        type=float,
        default=1.0,
        help="width in pixels of polylines and points in masks and boxes (default 1)",
    )
    convert.set_defaults(run=_convert)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"emdl: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 bad input, 2 bad usage)."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always", LabelWarning)
        warnings.showwarning = _show_warning
        try:
            args.run(args)
        except (EmdlError, OSError) as exc:
            print(f"emdl: error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
