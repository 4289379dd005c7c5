"""The detector's epochs with tf.data's autotuning on the validation windows and without it, side
by side: seconds an epoch, and the wait at each validation's start.

Keras' ``evaluate`` drops the previous evaluation's iterator before it starts (``fit`` calls
it after every epoch). Destroying an iterator waits for its autotuning thread, and on the
2-core machines here that wait came and went: about half the epochs of the default
``yolo_loops`` run took 16 s longer than the others (15 s idle before validation: py-spy
showed the main thread in ``RootDataset::Iterator::~Iterator``, waiting for the thread of
``Model::OptimizeLoop``). Since then :func:`emdl.data.build_dataset` turns autotuning off for
the validation windows (``training=False``; ``emdl.data.datasets.VALIDATION_AUTOTUNE``), which
read once, in order, need none of it.

Each setting is a child process that trains the ``yolo_loops`` detector
(:func:`emdl.experiments.yolo_loops.detector_config`, seed 0) for ``--epochs`` epochs of
``--steps`` steps with Keras' ``fit`` on loops111's training images, validating on its held-out
tenth after every epoch, as ``emdl train`` does (no checkpoints or logs: only the clock). A
callback times each epoch, its training part, the wait between the last training step and the
validation's start, and the validation. Epoch 0 (which traces the steps) is left out of the
table. The children run one after the other, so run it alone on the machine: each uses both
cores.

    python benchmarks/epoch_time.py --data-dir $EMDL_DATA_DIR [--epochs 10] [--steps 40]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# benchmarks/ is no package: its scripts import each other from their folder.
sys.path.insert(0, str(Path(__file__).parent))
from child_process import run_json

SETTINGS = {"autotuned": True, "emdl": False}  # the validation windows' autotuning
SLOW = 1.0  # seconds of wait before a validation that count as a stall


def child(data_dir: Path, autotune: bool, epochs: int, steps: int) -> dict:
    """Train the detector for ``epochs`` epochs in this process and time them."""
    import dataclasses

    import keras

    import emdl.data.datasets
    from emdl.data import load_labeled_images
    from emdl.data.sources import split_by_image
    from emdl.experiments.yolo_loops import detector_config

    emdl.data.datasets.VALIDATION_AUTOTUNE = autotune
    folder = data_dir / "loops111"
    config = detector_config(
        [str(folder / "annotations.xml")],
        str(folder / "images"),
        epochs=epochs,
        steps_per_epoch=steps,
        longest_side=640,
    )
    records, classes = load_labeled_images(config.data.labels, config.data.images)
    training, validation = split_by_image(
        records, config.data.validation_fraction, seed=config.training.seed
    )
    kind = config.model_kind
    config = dataclasses.replace(
        config, model=kind.model_config(config.model, classes), classes=tuple(classes)
    )
    keras.utils.set_random_seed(config.training.seed)
    train, windows, windows_steps = kind.datasets(
        training, validation, classes, config, config.data.batch_size
    )
    model = kind.build(config)
    times: list[dict] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last_step = time.perf_counter()

        def on_test_begin(self, logs=None):
            self.test = time.perf_counter()

        def on_test_end(self, logs=None):
            self.tested = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(
                {
                    "epoch_s": time.perf_counter() - self.begin,
                    "train_s": self.last_step - self.begin,
                    "wait_s": self.test - self.last_step,
                    "validation_s": self.tested - self.test,
                }
            )

    model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=steps,
        validation_data=windows,
        validation_steps=windows_steps,
        callbacks=[Clock()],
        verbose=0,
    )
    return {"autotune": autotune, "epochs": times}


def summary(run: dict) -> dict:
    """The figures of a child's epochs after the first."""
    epochs = run["epochs"][1:]
    seconds = [epoch["epoch_s"] for epoch in epochs]
    waits = [epoch["wait_s"] for epoch in epochs]
    return {
        "epochs": len(epochs),
        "median_s": statistics.median(seconds),
        "mean_s": statistics.fmean(seconds),
        "slowest_s": max(seconds),
        "wait_s": sum(waits),
        "stalls": sum(wait > SLOW for wait in waits),
        "validation_s": statistics.median(epoch["validation_s"] for epoch in epochs),
    }


def table(runs: dict[str, dict]) -> str:
    """One row a setting; the last column is the autotuned setting's mean epoch over this one's."""
    lines = [
        "| validation windows | epochs | median epoch s | mean epoch s | slowest s | "
        f"wait before validation s (sum) | waits > {SLOW:g} s | validation s | mean ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    figures = {name: summary(run) for name, run in runs.items()}
    base = figures["autotuned"]["mean_s"]
    for name, row in figures.items():
        lines.append(
            f"| {name} | {row['epochs']} | {row['median_s']:.1f} | {row['mean_s']:.1f} | "
            f"{row['slowest_s']:.1f} | {row['wait_s']:.1f} | {row['stalls']} | "
            f"{row['validation_s']:.1f} | {base / row['mean_s']:.2f} |"
        )
    return "\n".join(lines)


def run_child(name: str, args: argparse.Namespace) -> dict:
    arguments = [__file__, "--child", name, "--data-dir", str(args.data_dir)]
    arguments += ["--epochs", str(args.epochs), "--steps", str(args.steps)]
    return run_json(arguments, f"epoch_time: the {name} child failed")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("EMDL_DATA_DIR"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--json", type=Path, help="also write every epoch's times here")
    parser.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.data_dir is None:
        parser.error("give --data-dir (the folder holding loops111/) or $EMDL_DATA_DIR")
    if args.epochs < 2 or args.steps < 1:
        parser.error("--epochs must be at least 2 (the first is not timed), --steps at least 1")
    if not (args.data_dir / "loops111" / "annotations.xml").is_file():
        parser.error(f"{args.data_dir / 'loops111' / 'annotations.xml'}: not found")
    if args.child:
        result = child(args.data_dir, SETTINGS[args.child], args.epochs, args.steps)
        print(json.dumps(result))
        return 0
    runs = {}
    for name in SETTINGS:
        runs[name] = run_child(name, args)
        print(f"{name}: {summary(runs[name])}", file=sys.stderr, flush=True)
    print(table(runs))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
