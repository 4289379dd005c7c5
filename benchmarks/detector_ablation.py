"""What matters when emdl's detector trains from scratch on loops111: one change at a time, at the
same number of steps.

Trains the ``yolo_loops`` detector (:func:`emdl.experiments.yolo_loops.detector_config`, through
``detector_vs_ultralytics.emdl_config``: micrographs resized to 640 pixels on the longest side,
batches of eight 320 x 320 crops, AdamW 4e-3 with a cosine decay) once per variant, each for
``--epochs`` x ``--steps-per-epoch`` steps (no time budget, so every variant takes the same
steps), on the split of ``benchmarks/detector_vs_ultralytics.py`` (the validation images chosen by
emdl's own rule with ``--seed``, ``--validation-fraction`` of them), one after the other:

- ``baseline``: the ``yolo_loops`` defaults;
- ``ema``: a moving average of the weights, ``training.ema_momentum`` = ``--ema-momentum``
  (default 0.99: an average over about the last 100 steps, 2.5 epochs of 40), kept beside the
  trained weights and swapped in for validation and the checkpoints, as Ultralytics' ModelEMA
  (whose momentum ramps up as 0.9999 x (1 - exp(-step / 2000)): about 0.45 after 1200 steps);
- ``warmup``: a linear warm-up of the learning rate over the first ``--warmup-steps`` steps
  (default 3 epochs' worth, as Ultralytics' ``warmup_epochs=3``), ``training.warmup_steps``;
- ``sgd``: SGD with Nesterov momentum 0.937 at a learning rate of 0.01 (Ultralytics' SGD and
  ``lr0``) instead of AdamW (what Ultralytics' ``optimizer="auto"`` picks for a run this
  short), ``training.optimizer``;
- ``narrow_zoom``: a zoom by 0.75 to 1.33 on half the crops, the default before 2026-12-02,
  instead of 0.5 to 1.5 on every crop (Ultralytics' ``scale=0.5``): the defects at fewer sizes
  (crops stay 320 x 320, so the wide zoom is the multi-scale training a fully convolutional
  detector gets from crops);
- ``mosaic``: half the groups of four crops made into mosaics (:mod:`emdl.data.mosaic`), cut at
  a point 0.25 to 0.75 of the window (as Ultralytics draws its mosaic's centre);
- ``whole``: whole micrographs, resized, instead of crops: a 640 x 640 window on images resized to
  640 pixels (all of loops111's are square), so a batch holds 8 whole images (4 times the pixels
  of a batch of crops, so its steps take about 4 times as long);
- ``whole_pixels``: ``whole`` for a quarter of the steps (``--steps-per-epoch`` // 4 an epoch), so
  it sees as many pixels as the crop variants and takes about as long;
- ``slow_lr``: AdamW at 2e-3, half the ``yolo_loops`` rate of 4e-3 and its rate before
  2026-12-08 (the same cosine decay to a twentieth of it);
- ``fine``: micrographs resized to 1024 pixels on the longest side instead of 640 (loops111's
  1024-pixel micrographs kept at their own pixels, its 2048-pixel ones halved), so a loop covers
  1.6 times the pixels on a side (the median loop about 38 pixels instead of 23, the smallest
  twentieth under 19 instead of 12) and a 320 x 320 crop a smaller part of the micrograph; the
  steps cost the same, the validation and prediction 2.6 times the pixels.

Each is scored by emdl's own evaluation of the run (the kind's ``evaluate`` on the validation
images, whole and tiled, as ``emdl evaluate`` does): AP50, AP50:95, precision, recall and F1 at IoU
0.5 at the F1-best score threshold, and the count error per image there. "train s" is the seconds
from the start of training to its end (validation after each epoch included): on a shared CPU,
not a speed measurement.

Run alone on the machine; at the defaults (30 x 40 steps) a crop variant trains about 20 minutes
alone (``detector_vs_ultralytics.py`` trained 32 such epochs in 20), plus its evaluation;
``whole`` about four times that. A smoke run of baseline, ema, warmup and whole x 4 steps on
20 images (``--epochs 2 --steps-per-epoch 2 --limit-images 20 --warmup-steps 2``) took 15 min on
a shared CPU::

    python benchmarks/detector_ablation.py --data-dir $EMDL_DATA_DIR --out /tmp/ablation \\
        [--variants baseline,ema,warmup,sgd,narrow_zoom,mosaic,whole,whole_pixels,slow_lr,fine] \\
        [--epochs 30] [--steps-per-epoch 40] [--seed 0]

``--limit-images N`` keeps the first N labeled images (a quick check that it all runs, not a
measurement). Each variant trains in ``--out/VARIANT/`` (a run directory) and leaves its row in
``--out/VARIANT/row.json``; run again with the same ``--out`` and settings, it reuses the rows it
finds (refusing, in one line, one trained with another config than its variant has now) and
resumes an interrupted variant from its backup (that variant's "train s" then counts the last
session only). The table is printed at the end and written to ``--out/results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# benchmarks/ is no package: its scripts import each other from their folder. The detector
# benchmark's split, subsets, run config and stopwatch are shared with it.
sys.path.insert(0, str(Path(__file__).parent))
import detector_vs_ultralytics as VS  # noqa: N812 (a module, named as a constant)

WHOLE = VS.LONGEST_SIDE  # the window that holds a whole resized micrograph
COLUMNS = (  # (row key, heading, format): the scores as the side-by-side prints them
    *VS.COLUMNS[:6],
    ("steps", "steps", "{:.0f}"),
    ("train_seconds", "train s", "{:.0f}"),
)


SGD_LEARNING_RATE = 0.01  # Ultralytics' lr0 for SGD
NARROW_ZOOM = {"probability": 0.5, "range": [0.75, 1.33]}  # yolo_loops' zoom before 2026-12-02
MOSAIC = {"probability": 0.5, "range": [0.25, 0.75]}  # Ultralytics' mosaic centre: 0.25 to 0.75
SLOW_LEARNING_RATE = 2e-3  # half yolo_loops' AdamW rate, its rate before 2026-12-08
FINE_LONGEST_SIDE = 1024  # loops111's usual size: its 1024-pixel micrographs left as they are


# name: (what it changes, the arguments -> the changes: detector_config's "options", and the
# "model" and "training" fields and "augmentation" effects replaced)
VARIANTS: dict[str, tuple[str, Callable[[argparse.Namespace], dict]]] = {
    "baseline": ("yolo_loops defaults", lambda args: {}),
    "ema": ("EMA of the weights", lambda args: {"training": {"ema_momentum": args.ema_momentum}}),
    "warmup": (
        "learning-rate warm-up",
        lambda args: {"training": {"warmup_steps": warmup_steps(args)}},
    ),
    "whole": ("whole resized images, not crops", lambda args: {"options": {"window": WHOLE}}),
    "whole_pixels": (
        "whole resized images, a quarter of the steps",
        lambda args: {
            "options": {"window": WHOLE},
            "training": {"steps_per_epoch": max(1, args.steps_per_epoch // 4)},
        },
    ),
    "sgd": (
        "SGD (Nesterov 0.937, lr 0.01), not AdamW",
        lambda args: {"training": {"optimizer": "sgd", "learning_rate": SGD_LEARNING_RATE}},
    ),
    "narrow_zoom": (
        "zoom 0.75-1.33 on half the crops",
        lambda args: {"augmentation": {"zoom": NARROW_ZOOM}},
    ),
    "mosaic": (
        "mosaic of four crops, half the groups",
        lambda args: {"augmentation": {"mosaic": MOSAIC}},
    ),
    "slow_lr": (
        f"AdamW at {SLOW_LEARNING_RATE:g}, half the rate",
        lambda args: {"training": {"learning_rate": SLOW_LEARNING_RATE}},
    ),
    "fine": (
        f"micrographs resized to {FINE_LONGEST_SIDE}, not {VS.LONGEST_SIDE}",
        lambda args: {"model": {"longest_side": FINE_LONGEST_SIDE}},
    ),
}


def warmup_steps(args) -> int:
    """``--warmup-steps``, or 3 epochs' worth (fewer than the run's steps)."""
    if args.warmup_steps is not None:
        return args.warmup_steps
    return min(3 * args.steps_per_epoch, args.epochs * args.steps_per_epoch - 1)


def variant_config(name: str, training_xml, validation_xml, images_dir, args):
    """The run config of variant ``name`` on the benchmark's split: the baseline
    (``detector_vs_ultralytics.emdl_config``, ``--epochs`` x ``--steps-per-epoch`` steps, no
    budget) with the variant's change."""
    changes = VARIANTS[name][1](args)
    config = VS.emdl_config(
        training_xml,
        validation_xml,
        images_dir,
        args.seed,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        **changes.get("options", {}),
    )
    return dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, **changes.get("model", {})),
        training=dataclasses.replace(config.training, **changes.get("training", {})),
        augmentation=config.augmentation | changes.get("augmentation", {}),
    )


def config_record(config) -> dict:
    """``config`` as its row keeps it (JSON types), to tell whether a kept row is still the
    variant's."""
    return json.loads(json.dumps(config.to_dict()))


def run_variant(name: str, config, out_dir: Path) -> dict:
    """Train and score one variant in ``out_dir`` (a run directory); its row of the table, also
    written to ``out_dir/row.json``."""
    from emdl.train.run import train_run

    clock = VS.stopwatch()
    result = train_run(config, out_dir, verbose=2, callbacks=[clock])
    metrics = result.metrics
    keys = ("ap50", "ap50_95", "precision50", "recall50", "f1_50", "count_error")
    row = {key: metrics[key] for key in (*keys, "score_threshold", "objects")}
    row |= {
        "variant": name,
        "change": VARIANTS[name][0],
        "steps": int(config.training.epochs * config.training.steps_per_epoch),
        "steps_this_session": clock.steps,
        "train_seconds": clock.train_seconds,
        "training": dataclasses.asdict(config.training),
        "window": config.data.window,
        "config": config_record(config),
    }
    (out_dir / "row.json").write_text(json.dumps(row, indent=2) + "\n")
    return row


def table(rows: Sequence[dict]) -> str:
    """The rows as a text table, one line per variant."""
    width = max(len(row["variant"]) for row in [*rows, {"variant": "variant"}]) + 2
    lines = [f"{'variant':{width}}" + "".join(f"{head:>11}" for _, head, _ in COLUMNS)]
    for row in rows:
        cells = (form.format(row[key]) for key, _, form in COLUMNS)
        lines.append(f"{row['variant']:{width}}" + "".join(f"{cell:>11}" for cell in cells))
    return "\n".join(lines)


def parse_variants(text: str) -> list[str]:
    """``"baseline,ema"`` as a list of known variant names, in that order, each once."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(
            f"--variants {text!r}: expected distinct names among {', '.join(VARIANTS)}"
        )
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the folder holding loops111/")
    parser.add_argument("--out", required=True, help="a new folder, or this benchmark's last one")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--epochs", type=int, default=30, help="the yolo_loops default")
    parser.add_argument("--steps-per-epoch", type=int, default=VS.STEPS_PER_EPOCH)
    parser.add_argument("--ema-momentum", type=float, default=0.99)
    parser.add_argument("--warmup-steps", type=int, help="default: 3 epochs' worth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--limit-images", type=int, help="the first N labeled images only")
    args = parser.parse_args(argv)

    from emdl.data import load_labeled_images
    from emdl.errors import EmdlError
    from emdl.io.labels import read_labels

    folder, out = Path(args.data_dir).resolve() / "loops111", Path(args.out).resolve()
    labels, images_dir = folder / "annotations.xml", folder / "images"
    settings = {key: value for key, value in vars(args).items() if key not in ("out", "variants")}
    settings["data_dir"] = str(Path(args.data_dir).resolve())  # the same folder however it is given
    try:
        names = parse_variants(args.variants)
        if not labels.is_file():
            raise EmdlError(f"{labels}: not found (give --data-dir, the folder of loops111/)")
        kept = out / "settings.json"
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            if not kept.is_file() or json.loads(kept.read_text()) != settings:
                raise EmdlError(
                    f"{out}: exists and is not this benchmark's folder with the same settings; "
                    "give a new --out"
                )
        records, _ = load_labeled_images([labels], images_dir)
        training, validation = VS.split_images(
            records, args.validation_fraction, args.seed, args.limit_images
        )
        annotations = read_labels(labels)
        training_xml = VS.write_subset(
            annotations, [r.name for r in training], out / "training.xml"
        )
        validation_xml = VS.write_subset(
            annotations, [r.name for r in validation], out / "validation.xml"
        )
        kept.write_text(json.dumps(settings, indent=2) + "\n")
        configs = {
            name: variant_config(name, training_xml, validation_xml, images_dir, args)
            for name in names
        }  # every config checked before the first variant trains
        rows = []
        for name in names:
            done = out / name / "row.json"
            if done.is_file():
                row = json.loads(done.read_text())
                if row.get("config") != config_record(configs[name]):
                    raise EmdlError(
                        f"{done}: trained with another config than variant {name} has now "
                        "(changed defaults?); give a new --out"
                    )
                print(f"{name}: reusing {done}", flush=True)
                rows.append(row)
                continue
            print(f"{name} ({VARIANTS[name][0]}): training ...", flush=True)
            rows.append(run_variant(name, configs[name], out / name))
    except (EmdlError, ValueError) as exc:
        print(f"detector_ablation: {exc}", file=sys.stderr)
        return 1

    steps = args.epochs * args.steps_per_epoch
    print(
        f"{os.cpu_count()} CPU cores, {args.epochs} x {args.steps_per_epoch} = {steps} steps "
        f"each, seed {args.seed}; {len(training)} training images, {len(validation)} validation "
        f"images ({rows[0]['objects']} objects), scored whole by emdl's metrics"
    )
    print(table(rows))
    results = {"settings": settings, "training_images": len(training), "rows": rows}
    results["validation_images"] = [r.name for r in validation]
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
