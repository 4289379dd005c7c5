"""Time and peak memory of ``emdl predict`` on a folder of 512 x 512 micrographs and on one
4096 x 4096 micrograph, on this machine.

Each case runs ``emdl predict`` in its own process, so its peak resident memory (``ru_maxrss``) is
its own; the seconds are the whole command (model loading, prediction, instances, statistics,
overlays, CVAT XML), and seconds per image divide them by the images. The 512 x 512 images are the
two bubbles training images turned and flipped; the large one is the first tiled 8 x 8.

The model: ``--run RUN_DIR`` (e.g. ``runs/unet_bubbles``); without it a run directory with the
experiment's U-Net (4 levels, 16 filters) and freshly initialized weights is made, which predicts
as fast but finds other objects, so the instance and statistics steps then take other times.

    python benchmarks/predict_folder.py [--run RUN_DIR] [--images 16] [--size 4096]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def bubbles():
    from emdl.io.image import read_image

    data = Path(os.environ.get("EMDL_DATA_DIR", HERE.parents[1] / "shared" / "data"))
    return [read_image(data / "bubbles" / f"DL_for_Microscopy_Train_Img_{i}.png") for i in (1, 2)]


def write_images(work: Path, count: int, size: int) -> tuple[Path, Path]:
    """A folder of ``count`` 512 x 512 PNGs and one ``size`` x ``size`` PNG."""
    import numpy as np
    from skimage import io as skio

    folder, large = work / "folder", work / "large.png"
    folder.mkdir()
    sources = bubbles()
    for i in range(count):
        image = np.rot90(sources[i % 2], i // 2 % 4)
        image = image[:, ::-1] if i // 8 % 2 else image
        skio.imsave(folder / f"img_{i:03d}.png", (image * 255).astype(np.uint8))
    reps = -(-size // sources[0].shape[0])
    tiled = np.tile(sources[0], (reps, reps))[:size, :size]
    skio.imsave(large, (tiled * 255).astype(np.uint8), check_contrast=False)
    return folder, large


def untrained_run(work: Path) -> Path:
    """A run directory of the experiment's config with freshly initialized weights."""
    from emdl.models.unet import build_unet
    from emdl.train.config import RunConfig

    values = json.loads((HERE.parent / "experiments/unet_bubbles/config.json").read_text())
    config = RunConfig.from_dict(values)
    run_dir = work / "run"
    run_dir.mkdir()
    config.save(run_dir / "config.json")
    build_unet(config.model).save_weights(run_dir / "best.weights.h5")
    return run_dir


def case(run_dir: str, images: str, out: str) -> dict:
    """Run ``emdl predict`` in this process; its seconds and printed summary."""
    from emdl.cli import main

    start = time.perf_counter()
    status = main(["predict", run_dir, images, "--out", out])
    return {"seconds": time.perf_counter() - start, "status": status}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run directory of emdl train / unet_bubbles")
    parser.add_argument("--images", type=int, default=16, help="512 x 512 images in the folder")
    parser.add_argument("--size", type=int, default=4096, help="side of the large image")
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)  # used by the child processes
    args = parser.parse_args()
    if args.case:
        result = case(*args.case)
        result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        folder, large = write_images(work, args.images, args.size)
        run_dir = args.run or str(untrained_run(work))
        print(f"emdl predict with {run_dir}, {os.cpu_count()} CPU cores")
        print(f"{'case':34s} {'images':>6s} {'seconds':>8s} {'s/image':>8s} {'peak MiB':>9s}")
        for name, target, count in [
            ("folder of 512 x 512", folder, args.images),
            (f"one {args.size} x {args.size}", large, 1),
        ]:
            out = work / f"out-{count}"
            command = [sys.executable, __file__, "--case", run_dir, str(target), str(out)]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                reason = (done.stderr.strip().splitlines() or ["?"])[-1][:60]
                print(f"{name:34s} {count:6d} {'failed':>8s}  {reason}")
                continue
            lines = done.stdout.strip().splitlines()
            row = json.loads(lines[-1])
            seconds = row["seconds"]
            print(
                f"{name:34s} {count:6d} {seconds:8.1f} {seconds / count:8.2f} "
                f"{row['peak_mib']:9.0f}   {lines[0].split(' -> ')[0]}"
            )


if __name__ == "__main__":
    main()
