"""A training step of each model kind with TensorFlow's oneDNN kernels and with its own (Eigen),
side by side on this machine: milliseconds a step, steps a second, and the ratio.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it loads, and turns oneDNN on by itself
only on x86 CPUs with AVX512_VNNI, AVX512_BF16 or AMX; on others (an AMD EPYC with AVX2, say)
its convolutions and their gradients run on Eigen. ``import emdl`` sets the variable to 1 unless
it is set already (:mod:`emdl`), so this benchmark is what that default buys or costs here.

Each contender is a child process of this script with the variable set (``0``: Eigen, ``1``:
oneDNN), one per model kind and setting, at the experiments' settings on the shared data:

- ``yolo``: :func:`emdl.experiments.yolo_loops.detector_config` on loops111 (eight 320 x 320
  crops of micrographs resized to 640, boxes padded per batch);
- ``unet``: :func:`emdl.experiments.unet_bubbles.default_config` on the bubbles (eight 256 x 256
  crops);
- ``maskrcnn``: :func:`emdl.experiments.maskrcnn_bubbles.default_config` on the bubbles (four
  256 x 256 crops).

A child builds the model as ``emdl train`` does (``kind.model_config``, ``kind.datasets``,
``kind.build``, seed 0, so both settings start from the same weights and draw the same crops),
takes ``model.train_step`` in a ``tf.function`` as Keras' ``fit`` does, calls it once per batch
of ``--batches`` (tracing), then times ``--rounds`` rounds over the same batches; a row is the
median time of a step. The children run one after another, Eigen then oneDNN for each kind, so
run it alone on the machine: every child uses both cores. "loss 1" is the loss of the first step
(same weights, same batch): the two settings agree to float32 rounding or something is wrong.

    python benchmarks/onednn.py --data-dir $EMDL_DATA_DIR [--kinds yolo,unet,maskrcnn]
        [--batches 3] [--rounds 3] [--json FILE]
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

KINDS = ("yolo", "unet", "maskrcnn")
SETTINGS = {"Eigen": "0", "oneDNN": "1"}


def config_of(kind: str, data_dir: Path):
    """The experiment's run config of ``kind`` on the data in ``data_dir``."""
    if kind == "yolo":
        from emdl.experiments.yolo_loops import detector_config

        folder = data_dir / "loops111"
        return detector_config(
            [str(folder / "annotations.xml")],
            str(folder / "images"),
            epochs=1,
            steps_per_epoch=1,
            longest_side=640,
        )
    folder = data_dir / "bubbles"
    if kind == "unet":
        from emdl.experiments.unet_bubbles import default_config

        return default_config(folder, epochs=1, steps_per_epoch=1, hold_out=False)
    from emdl.experiments.maskrcnn_bubbles import default_config
    from emdl.experiments.unet_bubbles import LABELS

    labels = [str(folder / name) for name in LABELS]
    return default_config(labels, str(folder), epochs=1, steps_per_epoch=1, hold_out=False)


def child(kind: str, data_dir: Path, batches: int, rounds: int) -> dict:
    """Time ``kind``'s training step in this process (TensorFlow as the environment set it)."""
    import dataclasses

    import keras
    import tensorflow as tf

    from emdl.data import load_labeled_images
    from emdl.train.strategy import onednn_enabled

    config = config_of(kind, data_dir)
    records, classes = load_labeled_images(
        config.data.labels, config.data.images, missing=config.data.missing
    )
    model_kind = config.model_kind
    config = dataclasses.replace(
        config, model=model_kind.model_config(config.model, classes), classes=tuple(classes)
    )
    keras.utils.set_random_seed(0)
    train_data, _, _ = model_kind.datasets(records, [], classes, config, config.data.batch_size)
    model = model_kind.build(config)
    iterator = iter(train_data)
    drawn = [next(iterator) for _ in range(batches)]
    step = tf.function(model.train_step, reduce_retracing=True, autograph=False)
    start = time.perf_counter()
    first = step(drawn[0])
    loss = float(first["loss"])
    for batch in drawn[1:]:
        step(batch)
    warm_up = time.perf_counter() - start
    times = []
    for _ in range(rounds):
        for batch in drawn:
            start = time.perf_counter()
            result = step(batch)
            float(result["loss"])  # waits for the step
            times.append(time.perf_counter() - start)
    return {
        "kind": kind,
        "onednn": onednn_enabled(),
        "batch": int(config.data.batch_size),
        "window": int(config.data.window),
        "ms": 1000 * statistics.median(times),
        "warm_up_s": warm_up,
        "loss1": loss,
    }


def run_child(kind: str, setting: str, args: argparse.Namespace) -> dict:
    arguments = [__file__, "--child", kind, "--data-dir", str(args.data_dir)]
    arguments += ["--batches", str(args.batches), "--rounds", str(args.rounds)]
    result = run_json(
        arguments,
        f"onednn: the {setting} child of {kind} failed",
        {"TF_ENABLE_ONEDNN_OPTS": SETTINGS[setting]},
    )
    return result | {"setting": setting}


def table(rows: Sequence[dict]) -> str:
    lines = [
        "| kind | batch | kernels | oneDNN on | ms a step | steps/s | loss 1 | Eigen / oneDNN |",
        "|---|---|---|---|---|---|---|---|",
    ]
    eigen = {row["kind"]: row["ms"] for row in rows if row["setting"] == "Eigen"}
    for row in rows:
        ratio = f"{eigen[row['kind']] / row['ms']:.2f}" if row["setting"] == "oneDNN" else "1"
        lines.append(
            f"| {row['kind']} | {row['batch']} x {row['window']}^2 | {row['setting']} | "
            f"{row['onednn']} | {row['ms']:.0f} | {1000 / row['ms']:.2f} | {row['loss1']:.6f} | "
            f"{ratio} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("EMDL_DATA_DIR"))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.data_dir is None:
        parser.error("give --data-dir (the folder of bubbles/ and loops111/) or $EMDL_DATA_DIR")
    kinds = [kind for kind in args.kinds.split(",") if kind]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"--kinds: unknown {', '.join(unknown)} (known: {', '.join(KINDS)})")
    if args.child:
        print(json.dumps(child(args.child, args.data_dir, args.batches, args.rounds)))
        return 0
    rows = []
    for kind in kinds:
        for setting in SETTINGS:
            rows.append(run_child(kind, setting, args))
            print(f"{kind} {setting}: {rows[-1]['ms']:.0f} ms a step", file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
