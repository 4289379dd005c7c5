"""How many augmented 256 x 256 crops per second emdl's tf.data pipeline makes on the bubbles data.

Measures, side by side in one run: the pipeline with every augmentation on (probability 1), the
same with crops only (no augmentation), and, when an AtomAI environment is given with
``--atomai-python``, AtomAI's ``seg_augmentor`` with all its augmentations on
(``benchmarks/atomai_augment.py``, run in that environment). CPU use is process CPU time over wall
time, so 200% means both cores of this machine are busy.

    python benchmarks/augment_throughput.py [--seconds 20] [--batch-size 32]
        [--atomai-python /path/to/atomai/venv/bin/python]

The last line is ``crops_per_second: N`` for emdl with every augmentation on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from emdl.data import Augmentation, build_dataset, load_labeled_images

HERE = Path(__file__).resolve().parent


def bubbles_dir() -> Path:
    return Path(os.environ.get("EMDL_DATA_DIR", HERE.parents[1] / "shared" / "data")) / "bubbles"


def measure_emdl(augmentation: Augmentation, seconds: float, batch_size: int) -> dict:
    folder = bubbles_dir()
    labels = sorted(folder.glob("DL_for_Microscopy_Train_Lab_*.xml"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lab_2 names four images that are not in the folder
        records, classes = load_labeled_images(labels, folder, missing="skip")
    dataset = build_dataset(
        records, classes, "semantic", window=256, batch_size=batch_size, augmentation=augmentation
    )
    batches = iter(dataset)
    for _ in range(3):  # warm up: trace the graphs and fill the cache
        next(batches)
    crops, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        images, _ = next(batches)
        crops += images.shape[0]
    wall = time.perf_counter() - start
    return {
        "crops_per_second": crops / wall,
        "cpu_percent": 100 * (time.process_time() - cpu) / wall,
    }


def measure_atomai(python: str, seconds: float, batch_size: int) -> dict:
    script = HERE / "atomai_augment.py"
    command = [python, str(script), "--seconds", str(seconds), "--batch-size", str(batch_size)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--atomai-python", help="python of an environment with AtomAI installed")
    args = parser.parse_args()

    rows = []
    everything = measure_emdl(Augmentation.default(1.0), args.seconds, args.batch_size)
    rows.append(("emdl, every augmentation on", everything))
    rows.append(("emdl, crops only", measure_emdl(Augmentation(), args.seconds, args.batch_size)))
    if args.atomai_python:
        atomai = measure_atomai(args.atomai_python, args.seconds, args.batch_size)
        rows.append((f"AtomAI {atomai['version']} seg_augmentor, all on", atomai))

    print(
        f"{os.cpu_count()} CPU cores, 256 x 256 crops, batch {args.batch_size}, "
        f"{args.seconds:g} s each"
    )
    print(f"{'pipeline':44s} {'crops/s':>9s} {'CPU %':>7s}")
    for name, row in rows:
        print(f"{name:44s} {row['crops_per_second']:9.1f} {row['cpu_percent']:7.0f}")
    print(f"crops_per_second: {everything['crops_per_second']:.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
