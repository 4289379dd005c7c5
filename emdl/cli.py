"""The ``emdl`` command line: parses arguments and calls the library."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence

from emdl import __version__
from emdl.console import (
    NORMAL,
    QUIET,
    VERBOSE,
    configure_logging,
    import_tensorflow_quietly,
)
from emdl.errors import EmdlError, InputError, LabelWarning

# Commands that never load TensorFlow; the others import it first, with its start-up noise
# filtered (emdl.console).
WITHOUT_TENSORFLOW = {"convert", "synth"}


def _convert(args: argparse.Namespace) -> None:
    from emdl.commands.convert import convert_labels, summary

    annotations, written = convert_labels(
        args.labels,
        args.to,
        args.out,
        images_dir=args.images,
        line_width=args.line_width,
        skip_missing=args.skip_missing,
        overwrite=args.overwrite,
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
    # Per-step bars on a terminal; one line per epoch in a log file; none with --quiet.
    verbose = 0 if args.quiet else 1 if sys.stdout.isatty() else 2
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
        reliability=args.reliability,
    )
    if args.json:
        from emdl.io.atomic import write_text

        write_text(args.json, json.dumps(metrics, indent=2) + "\n")
    print(f"{config.model_kind.headline(metrics)} on {metrics['evaluated_images']} images")
    from emdl.train.calibration import calibration_line, read_calibration

    print(calibration_line(read_calibration(args.run_dir)))
    if args.reliability:
        from emdl.metrics.reliability import reliability_line

        print(reliability_line(metrics["reliability"]))


def _predict(args: argparse.Namespace) -> None:
    from emdl.commands.predict import predict_images, split_runs

    runs, images = split_runs([args.run_dir, *args.images])
    report = predict_images(
        runs[0],
        images,
        args.out,
        pixel_size_nm=args.pixel_size,
        thickness_nm=args.thickness,
        threshold=args.threshold,
        min_area=args.min_area,
        labels=args.labels or (),
        progress=sys.stderr,
        tta=args.tta,
        uncertainty=args.uncertainty,
        overwrite=args.overwrite,
        ensemble=runs[1:],
    )
    print(report.summary())
    if report.comparison is not None:
        print(report.comparison_line())
    for failure in report.failures:
        print(f"emdl: error: {failure}", file=sys.stderr)
    if report.failures:
        total = report.images + len(report.failures)
        raise EmdlError(f"{len(report.failures)} of {total} images could not be predicted")


def _export(args: argparse.Namespace) -> None:
    if args.serving_dir is None and args.cvat_serverless is None:
        raise EmdlError("export: give --serving-dir DIR and/or --cvat-serverless DIR")
    if args.serving_dir is not None:
        from emdl.commands.export import export_for_serving

        report = export_for_serving(
            args.run_dir, args.serving_dir, name=args.name, version=args.model_version
        )
        print(report.summary())
    if args.cvat_serverless is not None:
        from emdl.cvat.serverless import write_serverless_function

        folder = write_serverless_function(args.run_dir, args.cvat_serverless)
        print(f"wrote the CVAT serverless function {folder}")


def _synth(args: argparse.Namespace) -> None:
    from emdl.synth.dataset import write_dataset

    report = write_dataset(
        args.out,
        args.kind,
        args.count,
        args.size,
        pixel_size_nm=args.pixel_size,
        defocus_nm=args.defocus,
        dose=args.dose,
        seed=args.seed,
        label_format=args.format,
        bits=args.bits,
        preview=args.preview,
    )
    print(report.summary())


def _rank(args: argparse.Namespace) -> None:
    from emdl.commands.rank import rank_images

    rows = rank_images(
        args.run_dir,
        args.images,
        args.out,
        top=args.top,
        cvat=args.cvat,
        diversity=args.diversity,
        maps=args.maps,
        progress=sys.stderr,
    )
    first = rows[0]
    print(
        f"{len(rows)} images ranked -> {args.out}; label first {first['image']} "
        f"(uncertainty {first['uncertainty']:.3f})"
    )
    if args.cvat is not None:
        count = len(rows) if args.top is None else min(args.top, len(rows))
        print(f"pre-annotations of the first {count} -> {args.cvat}")
    if args.maps is not None:
        print(f"uncertainty maps (green: every view agrees, red: one does) -> {args.maps}")


def at_least(smallest: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``smallest``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < smallest:
            raise argparse.ArgumentTypeError(f"must be at least {smallest}, got {value}")
        return value

    return parse


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
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
        formatter_class=DefaultsHelp,
        prog="emdl",
        description="Deep learning for electron micrographs of radiation damage.",
    )
    parser.add_argument("--version", action="version", version=f"emdl {__version__}")
    parser.add_argument(
        "--max-pixels",
        type=at_least(1),
        metavar="N",
        help="most pixels (width x height) an image or mask in a label file may declare "
        "(default 2^30)",
    )
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-q", "--quiet", action="store_true", help="results and errors only: no stage lines"
    )
    loudness.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="details too, and TensorFlow's own start-up messages unfiltered",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser(
        "convert",
        formatter_class=DefaultsHelp,
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
    convert.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files that exist in --out, or write into the folder of the inputs",
    )
    convert.set_defaults(run=_convert)

    augment = commands.add_parser(
        "augment",
        formatter_class=DefaultsHelp,
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
        formatter_class=DefaultsHelp,
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
        formatter_class=DefaultsHelp,
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
    evaluate.add_argument(
        "--reliability",
        action="store_true",
        help="also tell how often defects found by k of the 8 flips and turns are wrong "
        "(into --json too; 8 predictions per image)",
    )
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict",
        formatter_class=DefaultsHelp,
        help="defect statistics of micrographs from a trained run",
        description="Find defects in micrographs with a trained run and measure them: "
        "defects.csv, summary.csv, overlays, a size histogram and CVAT annotations.xml in --out.",
    )
    predict.add_argument(
        "run_dir",
        help=f"{run_help}; more run directories right after it (folders with config.json) "
        "make an ensemble: RUN1 RUN2 ... IMAGES, predicting with RUN1's settings",
    )
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
    predict.add_argument(
        "--uncertainty",
        action="store_true",
        help="also predict each image in its 8 flips and turns (with an ensemble: by each run "
        "alone): per-defect agreement, per-image uncertainty and uncertainty maps (8 times the "
        "time; an ensemble of N runs twice)",
    )
    predict.add_argument(
        "--overwrite",
        action="store_true",
        help="predict into an --out used before: remove the files an earlier emdl predict "
        "wrote there (and no others), replace files in the way",
    )
    predict.set_defaults(run=_predict)
    export = commands.add_parser(
        "export",
        formatter_class=DefaultsHelp,
        help="export a run for TF Serving (and as a CVAT serverless function)",
        description="Write a run's SavedModel into TF Serving's layout, DIR/NAME/VERSION/ and "
        "DIR/models.config, finishing the run first if its training ended before its export.",
    )
    export.add_argument("run_dir", help=run_help)
    export.add_argument("--serving-dir", metavar="DIR", help="TF Serving's model base folder")
    export.add_argument("--name", help="model name (default: the run directory's name)")
    export.add_argument(
        "--version",
        dest="model_version",
        metavar="N",
        help="version number (default: one more than the highest in DIR/NAME)",
    )
    export.add_argument(
        "--cvat-serverless", metavar="DIR", help="also write a nuclio function folder for CVAT"
    )
    export.set_defaults(run=_export)
    synth = commands.add_parser(
        "synth",
        formatter_class=DefaultsHelp,
        help="write synthetic micrographs with exact labels",
        description="Write synthetic TEM micrographs (a physical image model: Fresnel contrast "
        "at a defocus, shot noise at a dose) with exact labels: DIR/images/ and "
        "DIR/annotations.xml (CVAT) or annotations.json (COCO), read by every emdl command as "
        "real data.",
    )
    synth.add_argument(
        "--kind",
        default="bubbles",
        choices=("bubbles", "voids", "loops", "dots", "precipitates", "lines", "mixed"),
        help="the defects; each kind has its own settings (emdl/synth/presets.py)",
    )
    synth.add_argument("--count", type=int, default=8, help="number of images")
    synth.add_argument("--size", type=int, default=512, help="image width and height, pixels")
    synth.add_argument(
        "--pixel-size", type=float, metavar="NM", help="nm per pixel (default: the kind's)"
    )
    synth.add_argument(
        "--defocus",
        type=float,
        metavar="NM",
        help="defocus in nm, positive = under-focus (default: the kind's)",
    )
    synth.add_argument(
        "--dose", type=float, metavar="E_PER_A2", help="electron dose, e-/A^2 (default: the kind's)"
    )
    synth.add_argument("--seed", type=int, default=0, help="random seed; the same gives the same")
    synth.add_argument("--format", default="cvat", choices=("cvat", "coco"), help="label format")
    synth.add_argument(
        "--bits", type=int, default=8, choices=(8, 16), help="8-bit PNG or 16-bit TIFF images"
    )
    synth.add_argument(
        "--preview",
        metavar="REAL_DIR",
        help="also write DIR/preview.png: synthetic images beside real ones from this folder",
    )
    synth.add_argument("--out", required=True, metavar="DIR", help="output folder (new or empty)")
    synth.set_defaults(run=_synth)
    rank = commands.add_parser(
        "rank",
        formatter_class=DefaultsHelp,
        help="order unlabeled images by what labeling them should teach the run",
        description="Order unlabeled images for labeling: most uncertain first (the run's "
        "predictions disagree across the eight flips and turns of the image), with near-copies "
        "of images already picked held back; optionally the first K images' predictions as CVAT "
        "XML to upload as pre-annotations.",
    )
    rank.add_argument("run_dir", help=run_help)
    rank.add_argument("images", nargs="+", help="image files and/or folders of images")
    rank.add_argument("--out", required=True, help="CSV file to write (new), one row per image")
    rank.add_argument("--top", type=int, metavar="K", help="pre-annotate only the first K")
    rank.add_argument(
        "--cvat", metavar="XML", help="also write the predictions as CVAT XML (new file)"
    )
    rank.add_argument(
        "--diversity",
        type=float,
        default=0.5,
        help="weight of the similarity to images ranked before (0: by uncertainty alone)",
    )
    rank.add_argument(
        "--maps", metavar="DIR", help="also write an uncertainty map per image into this folder"
    )
    rank.set_defaults(run=_rank)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"emdl: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 bad input, 2 bad usage, 130
    interrupted)."""
    args = build_parser().parse_args(argv)
    verbosity = VERBOSE if args.verbose else QUIET if args.quiet else NORMAL
    configure_logging(verbosity)
    with warnings.catch_warnings():
        warnings.simplefilter("always", LabelWarning)
        warnings.showwarning = _show_warning
        try:
            if args.command not in WITHOUT_TENSORFLOW:
                import_tensorflow_quietly(verbosity)
            if args.max_pixels is None:
                args.run(args)
            else:
                from emdl.io.checks import pixel_limit  # imported here: emdl.io loads NumPy

                with pixel_limit(args.max_pixels):
                    args.run(args)
        # ValueError: settings refused while a pipeline is built.
        except (EmdlError, OSError, ValueError) as exc:
            print(f"emdl: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback; 130 as shells report it
            resume = "; run the same command again to resume" if args.command == "train" else ""
            print(f"emdl: interrupted{resume}", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
