"""Where a trained detector's errors are, on labeled images: which labeled objects it misses, by
size; how many of its detections have no labeled object near them; whether its boxes are placed
and sized right.

Predicts every labeled image in ``--images`` whole (tiled, as ``emdl evaluate`` does), takes the
detections at the run's F1-best score threshold on these images (or ``--threshold``) and prints
:func:`emdl.metrics.detection_errors`: the labeled objects in ``--size-groups`` groups of equal
numbers by size (the square root of the box area, in image pixels) with the share missed at IoU
0.5; the detections kept and those with IoU below 0.3 with every labeled object; F1 at IoU 0.5
and 0.3; the median size of the matched boxes over their labels. A run of 27 loops111 images
takes about a minute on 2 CPU cores::

    python benchmarks/detector_errors.py RUN_DIR --labels LABELS... --images DIR \\
        [--skip-missing] [--threshold T] [--size-groups 4] [--json FILE]

A detector run only (``"kind": "yolo"``); anything else ends in one line naming it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LOOSE_IOU = 0.3  # a detection this near a label is a misplaced box, not a false one


def run_errors(
    run_dir: Path,
    labels: Sequence[str],
    images: str,
    *,
    missing: str,
    threshold: float | None,
    size_groups: int,
) -> dict:
    """The run's scores on the labeled images (:func:`emdl.metrics.score_detections`) and, at
    its F1-best threshold or ``threshold``, :func:`emdl.metrics.detection_errors`."""
    from emdl.commands.predict import load_predictor
    from emdl.data import load_labeled_images
    from emdl.errors import InputError, LabelWarning
    from emdl.metrics import detection_errors, score_detections
    from emdl.train.config import RunConfig

    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise InputError(run_dir, "not a run directory: no config.json")
    if RunConfig.from_dict(json.loads(config_file.read_text())).kind != "yolo":
        raise InputError(run_dir, "not a detector run (its kind is not yolo)")
    config, model = load_predictor(run_dir)
    with warnings.catch_warnings(record=True) as skipped:  # one line for all, not one each
        warnings.simplefilter("always", LabelWarning)
        records, _ = load_labeled_images(labels, images, missing=missing)
    for other in [w for w in skipped if not issubclass(w.category, LabelWarning)]:
        warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
    skipped = [w for w in skipped if issubclass(w.category, LabelWarning)]
    if skipped:
        print(
            f"{len(skipped)} labeled images or shapes skipped, e.g. {skipped[0].message}",
            file=sys.stderr,
        )
    if not records:
        raise InputError(images, "none of the labeled images is in this folder")
    classes = list(config.classes)
    rows = config.model_kind.predictions(model, records, classes, config)
    pairs = [(record.name, predicted, truth) for record, _, predicted, truth in rows]
    scores = score_detections(pairs, classes)
    chosen = scores["score_threshold"] if threshold is None else threshold
    errors = detection_errors(pairs, classes, chosen, loose_iou=LOOSE_IOU, size_groups=size_groups)
    scores.pop("images")
    return {"images": len(records), "threshold": chosen, "scores": scores, "errors": errors}


def report(result: dict) -> str:
    """``run_errors``' result as text: a table of the misses by size, then the detections."""
    errors = result["errors"]
    lines = [
        f"{result['images']} images, detections with score >= {result['threshold']:.3f}",
        f"{'labeled size px':>16}{'objects':>9}{'missed':>8}{'missed %':>10}",
    ]
    for group in errors["missed_by_size"]:
        sizes = f"{group['smallest_px']:.1f}-{group['largest_px']:.1f}"
        share = 100 * group["missed"] / group["objects"]
        lines.append(f"{sizes:>16}{group['objects']:>9}{group['missed']:>8}{share:>10.1f}")
    kept, unlabeled = errors["detections"], errors["unlabeled"]
    share = 100 * unlabeled / kept if kept else 0.0
    lines += [
        f"detections kept {kept}, {unlabeled} ({share:.1f} %) with IoU < {LOOSE_IOU} with "
        "every labeled object",
        f"F1 at IoU 0.5 {errors['f1_50']:.3f}, at IoU {LOOSE_IOU} {errors['f1_loose']:.3f}; "
        f"matched boxes {errors['size_ratio_median']:.3f} times their labels' size (median)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a detector run directory")
    parser.add_argument("--labels", nargs="+", required=True, help="CVAT XML or COCO JSON")
    parser.add_argument("--images", required=True, help="folder of the labeled images")
    parser.add_argument("--skip-missing", action="store_true", help="leave out absent images")
    parser.add_argument("--threshold", type=float, help="default: the F1-best on these images")
    parser.add_argument("--size-groups", type=int, default=4)
    parser.add_argument("--json", help="also write the result to this JSON file")
    args = parser.parse_args(argv)

    from emdl.errors import EmdlError

    try:
        result = run_errors(
            Path(args.run_dir),
            args.labels,
            args.images,
            missing="skip" if args.skip_missing else "error",
            threshold=args.threshold,
            size_groups=args.size_groups,
        )
    except (EmdlError, ValueError) as exc:
        print(f"detector_errors: {exc}", file=sys.stderr)
        return 1
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
