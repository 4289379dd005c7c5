"""The detector on loops111: <111> dislocation loops in 266 STEM images of irradiated steel.

    python -m emdl.experiments.yolo_loops [--data-dir DIR] [--out RUN_DIR]
        [--budget-minutes M] [--epochs N] [--steps-per-epoch N]

Trains emdl's YOLO-style detector (keras-cv YOLOv8, "xs" backbone, from scratch) on
``$EMDL_DATA_DIR/loops111`` (or ``--data-dir``), holding out a tenth of the images, and prints
AP, precision, recall and F1 on them beside Ultralytics' YOLOv8n trained on the same images for
the same hour on this kind of machine.

By default it trains for 60 minutes (``--budget-minutes``, ``training.budget_minutes``): as many
epochs of 40 steps as fit, re-planned after every epoch, the cosine decay of the learning rate
stretched to the steps that fit (:mod:`emdl.train.budget`; Keras' progress line counts epochs up
to the cap of 1000); evaluation, calibration and export follow, a few minutes more.
``--epochs N`` alone trains exactly N epochs instead (as does ``--budget-minutes 0``, with 30
epochs unless ``--epochs`` says otherwise); with both, the budget ends training after at most N
epochs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# Ultralytics YOLOv8n (PyTorch), from scratch, 60 min on 2 CPU cores at 640 x 640, held-out images.
ULTRALYTICS = {"precision50": 0.80, "recall50": 0.77, "f1_50": 0.79, "ap50": 0.85, "ap50_95": 0.41}
# Geometry that keeps boxes tight: free rotations would turn a box into a looser one.
GEOMETRY = {
    "flip_horizontal": {"probability": 0.5},
    "flip_vertical": {"probability": 0.5},
    "rotate90": {"probability": 0.5},
    # Every crop at a scale of 0.5 to 1.5 (Ultralytics' scale=0.5): +0.06 AP50 over 0.75 to 1.33
    # on half the crops at 1200 steps (benchmarks/detector_ablation.py); at the 60-minute budget
    # even on AP and F1, a lower count error (experiments/yolo_loops/README.md).
    "zoom": {"probability": 1.0, "range": [0.5, 1.5]},
    "translate": {"probability": 0.5, "range": [-0.1, 0.1]},
}
IMAGING = ("jitter", "background", "contrast", "blur", "poisson_noise", "gaussian_noise")
BUDGET_MINUTES = 60.0  # the default run's training time
EPOCHS = 30  # without a budget
EPOCH_CAP = 1000  # with a budget and no --epochs: far more than fit in an hour on a CPU
# AdamW at 4e-3 rather than 2e-3: +0.038 AP50 at 1200 steps (benchmarks/detector_ablation.py),
# +0.012 AP50 and the same F1 over the hour (experiments/yolo_loops/README.md).
LEARNING_RATE = 4e-3


def detector_config(
    labels: Sequence[str],
    images: str,
    *,
    epochs: int,
    steps_per_epoch: int,
    longest_side: int | None,
    scale: float = 1.0,
    window: int = 320,
    validation_fraction: float = 0.1,
    missing: str = "error",
    budget_minutes: float | None = None,
):
    """A detector run: "xs" backbone, crops of ``window`` pixels of the micrographs resized to
    ``longest_side`` (or by ``scale``), flips, turns, a zoom of 0.5 to 1.5 and the imaging
    effects, AdamW with a cosine decay; ``epochs`` of ``steps_per_epoch`` steps, or with
    ``budget_minutes`` as many of them as fit in that time (at most ``epochs``)."""
    from emdl.models.yolo import DetectorConfig
    from emdl.train.config import DataConfig, RunConfig, TrainingConfig

    augmentation = GEOMETRY | {name: {"probability": 0.3} for name in IMAGING}
    return RunConfig(
        kind="yolo",
        data=DataConfig(
            labels=tuple(labels),
            images=images,
            missing=missing,
            validation_fraction=validation_fraction,
            window=window,
            stride=window,
            batch_size=8,
        ),
        augmentation=augmentation,
        model=DetectorConfig(
            size="xs", longest_side=longest_side, scale=scale, tile=2 * window, overlap=window // 4
        ),
        training=TrainingConfig(
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            learning_rate=LEARNING_RATE,
            weight_decay=5e-4,
            budget_minutes=budget_minutes,
        ),
    )


def report(metrics: dict, reference: dict | None = None, name: str = "reference") -> str:
    """The figures as a small table, beside ``reference`` when given."""
    keys = ("ap50", "ap50_95", "precision50", "recall50", "f1_50")
    lines = [f"{'':14}" + "".join(f"{key:>12}" for key in keys)]
    lines.append(f"{'emdl':14}" + "".join(f"{metrics[key]:12.3f}" for key in keys))
    if reference:
        lines.append(f"{name:14}" + "".join(f"{reference[key]:12.3f}" for key in keys))
    lines.append(
        f"score threshold {metrics['score_threshold']:.3f}; count error "
        f"{metrics['count_error']:.2f} per image ({metrics['count_bias']:+.2f} bias) on "
        f"{len(metrics['images'])} {metrics['evaluated_on']} images, {metrics['objects']} objects"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the loops111 folder (default: $EMDL_DATA_DIR/loops111)")
    parser.add_argument("--out", default="runs/yolo_loops", help="run directory")
    parser.add_argument(
        "--budget-minutes",
        type=float,
        help=f"minutes of training; 0: a fixed number of epochs (default: {BUDGET_MINUTES:g}, "
        "or 0 when --epochs is given)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help=f"epochs to train (default {EPOCHS}); with a budget, the most it may take "
        f"(default {EPOCH_CAP})",
    )
    parser.add_argument("--steps-per-epoch", type=int, default=40)
    parser.add_argument(
        "--overwrite", action="store_true", help="train again over a finished run in --out"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    folder = Path(args.data_dir or Path(os.environ.get("EMDL_DATA_DIR", "data")) / "loops111")
    labels = folder / "annotations.xml"
    if not labels.is_file():
        print(
            f"yolo_loops: {labels}: not found (give --data-dir or $EMDL_DATA_DIR)", file=sys.stderr
        )
        return 1

    from emdl.train.run import train_run

    budget = args.budget_minutes
    if budget is None:
        budget = BUDGET_MINUTES if args.epochs is None else 0.0
    epochs = args.epochs if args.epochs is not None else EPOCH_CAP if budget else EPOCHS
    try:
        config = detector_config(
            [str(labels)],
            str(folder / "images"),
            epochs=epochs,
            steps_per_epoch=args.steps_per_epoch,
            longest_side=640,
            budget_minutes=budget or None,
        )
    except ValueError as exc:  # e.g. a negative budget
        print(f"yolo_loops: {exc}", file=sys.stderr)
        return 1
    from emdl.errors import EmdlError

    try:
        result = train_run(config, args.out, verbose=2, overwrite=args.overwrite)
    except EmdlError as exc:  # e.g. a finished run in --out: one line, status 1
        print(f"yolo_loops: {exc}", file=sys.stderr)
        return 1
    print(report(result.metrics, ULTRALYTICS, "YOLOv8n (PyT)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
