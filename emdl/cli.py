"""The ``emdl`` command line: parses arguments and calls the library."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from emdl import __version__
from emdl.errors import EmdlError, InputError, LabelWarning


def _convert(args: argparse.Namespace) -> None:
    from emdl.commands.convert import convert_labels, summary

    annotations, written = convert_labels(
        args.labels,
        args.to,
        args.out,
        images_dir=args.images,
        line_width=args.line_width,
        skip_missing=args.skip_missing,
    )
    print(f"{summary(annotations)} -> {written}")


def _augment(args: argparse.Namespace) -> None:
    import json

    from emdl.data.augment import Augmentation
    from emdl.data.preview import write_preview

    augmentation = None
    if args.config is not None:
        try:
            with open(args.config, encoding="utf-8") as file:
                spec = json.load(file)
            augmentation = Augmentation.from_dict(spec)
        except (json.JSONDecodeError, ValueError) as exc:
            raise InputError(args.config, str(exc)) from None
    summary = write_preview(
        args.labels,
        args.images,
        args.out,
        augmentation=augmentation,
        seed=args.seed,
        window=args.window,
        count=args.count,
        missing="skip" if args.skip_missing else "error",
    )
    print(summary)


def _train(args: argparse.Namespace) -> None:
    from pathlib import Path

    from emdl.train.config import load_config
    from emdl.train.run import train_run

    config = load_config(args.config)
    out = args.out or str(Path("runs") / Path(args.config).stem)
    # Per-step bars on a terminal; one line per epoch in a log file.
    verbose = 1 if sys.stdout.isatty() else 2
    result = train_run(config, out, verbose=verbose, overwrite=args.overwrite)
    metrics = result.metrics
    headline = result.config.model_kind.headline(metrics)
    print(f"{out}: {headline} on the {metrics['evaluated_on']} images")


def _evaluate(args: argparse.Namespace) -> None:
    import json

    from emdl.commands.evaluate import evaluate_run

    config, metrics = evaluate_run(
        args.run_dir,
        args.labels,
        args.images,
        missing="skip" if args.skip_missing else "error",
        tta=args.tta,
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(metrics, file, indent=2)
            file.write("\n")
    print(f"{config.model_kind.headline(metrics)} on {metrics['evaluated_images']} images")
    from emdl.train.calibration import calibration_line, read_calibration

    print(calibration_line(read_calibration(args.run_dir)))


def _predict(args: argparse.Namespace) -> None:
    from emdl.commands.predict import predict_images

    report = predict_images(
        args.run_dir,
        args.images,
        args.out,
        pixel_size_nm=args.pixel_size,
        thickness_nm=args.thickness,
        threshold=args.threshold,
        min_area=args.min_area,
        labels=args.labels or (),
        progress=sys.stderr,
        tta=args.tta,
    )
    print(report.summary())
    if report.comparison is not None:
        print(report.comparison_line())
    for failure in report.failures:
        print(f"emdl: error: {failure}", file=sys.stderr)
    if report.failures:
        total = report.images + len(report.failures)
        raise EmdlError(f"{len(report.failures)} of {total} images could not be predicted")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default where it has one worth saying (not None, not a flag's False)
    and its help does not say it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


TTA_HELP = "test-time augmentation: each tile also in its 7 other flips and quarter turns"


def build_parser() -> argparse.ArgumentParser:
    from emdl.train.kinds import KINDS  # names only: no model is imported

    kinds = ", ".join(KINDS)
    run_help = f"a run directory written by emdl train (any kind: {kinds})"
    parser = argparse.ArgumentParser(
        formatter_class=_Help,
        prog="emdl",
        description="Deep learning for electron micrographs of radiation damage.",
    )
    parser.add_argument("--version", action="version", version=f"emdl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser(
        "convert",
        formatter_class=_Help,
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
    convert.add_argument(
        "--skip-missing", action="store_true", help="leave out labeled images not in --images"
    )
    convert.set_defaults(run=_convert)

    augment = commands.add_parser(
        "augment",
        formatter_class=_Help,
        help="draw a grid of augmented training crops with their labels",
        description="Draw augmented crops with masks and boxes overlaid, to judge the settings.",
    )
    augment.add_argument("labels", nargs="+", help="CVAT XML or COCO JSON file(s)")
    augment.add_argument("--images", required=True, help="folder of the labeled images")
    augment.add_argument("--out", required=True, help="PNG file to write")
    augment.add_argument("--seed", type=int, default=0, help="seed of the random crops")
    augment.add_argument("--window", type=int, default=256, help="crop size in pixels")
    augment.add_argument("--count", type=int, default=16, help="number of crops")
    augment.add_argument(
        "--config",
        help='JSON augmentation settings, {"name": {"probability": p, "range": [lo, hi]}}',
    )
    augment.add_argument(
        "--skip-missing", action="store_true", help="leave out labeled images not in --images"
    )
    augment.set_defaults(run=_augment)

    train = commands.add_parser(
        "train",
        formatter_class=_Help,
        help="train a model from a JSON run config",
        description=f"Train a U-Net, detector or Mask R-CNN: the config's kind ({kinds}).",
    )
    train.add_argument("config", help="JSON run configuration (see emdl.train.config)")
    train.add_argument("--out", help="run directory (default: runs/<config name>)")
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="train again into a run directory that holds a finished run (its files are removed)",
    )
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate",
        formatter_class=_Help,
        help="score a run on labeled images",
        description="Score a trained run on labeled images (whole images, tiled).",
    )
    evaluate.add_argument("run_dir", help=run_help)
    evaluate.add_argument("--labels", required=True, nargs="+", help="CVAT XML or COCO JSON")
    evaluate.add_argument("--images", required=True, help="folder of the labeled images")
    evaluate.add_argument("--json", help="also write the scores to this JSON file")
    evaluate.add_argument(
        "--skip-missing", action="store_true", help="leave out labeled images not in --images"
    )
    evaluate.add_argument("--tta", action="store_true", help=TTA_HELP)
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict",
        formatter_class=_Help,
        help="defect statistics of micrographs from a trained run",
        description="Find defects in micrographs with a trained run and measure them: "
        "defects.csv, summary.csv, overlays, a size histogram and CVAT annotations.xml in --out.",
    )
    predict.add_argument("run_dir", help=run_help)
    predict.add_argument("images", nargs="+", help="image files and/or folders of images")
    predict.add_argument("--out", required=True, help="output folder")
    predict.add_argument(
        "--pixel-size", type=float, help="nm per pixel (default: from each file, if it says)"
    )
    predict.add_argument(
        "--thickness",
        type=float,
        metavar="NM",
        help="foil thickness in nm: adds defects per m^3 and swelling to summary.csv",
    )
    predict.add_argument(
        "--threshold",
        type=float,
        help="U-Net foreground probability or detector / Mask R-CNN score (default: the "
        "run's calibration, else 0.5, the run's F1-best score, 0.7)",
    )
    predict.add_argument(
        "--min-area",
        type=float,
        help="smallest defect in pixels (default: the run's calibration, else 10)",
    )
    predict.add_argument("--labels", nargs="+", help="CVAT XML or COCO JSON truth to compare with")
    predict.add_argument("--tta", action="store_true", help=TTA_HELP)
    predict.set_defaults(run=_predict)
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
        # ValueError: settings refused while a pipeline is built.
        except (EmdlError, OSError, ValueError) as exc:
            print(f"emdl: error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
