"""Time and peak memory of segmenting one 4096 x 4096 micrograph on this machine.

Each variant runs in its own process, so its peak resident memory (``ru_maxrss``) is its own:
emdl's tiled prediction (256 and 512 pixel tiles, a quarter overlap) and, for comparison, the whole
image through the U-Net at once. The micrograph is the first bubbles training image tiled 8 x 8.
The model is the experiment's U-Net (4 levels, 16 filters): with ``--run RUN_DIR`` a trained run,
else freshly initialized weights (the time and memory are the same).

    python benchmarks/predict_large.py [--size 4096] [--run RUN_DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def micrograph(size: int):
    import numpy as np

    from emdl.io.image import read_image

    data = Path(os.environ.get("EMDL_DATA_DIR", HERE.parents[1] / "shared" / "data"))
    tile = read_image(data / "bubbles" / "DL_for_Microscopy_Train_Img_1.png")
    reps = -(-size // tile.shape[0])
    return np.tile(tile, (reps, reps))[:size, :size]


def model_for(run: str | None):
    from emdl.models.unet import UNetConfig, build_unet
    from emdl.train.run import load_run

    if run:
        return load_run(run)[1]
    return build_unet(UNetConfig())


def variant(name: str, size: int, run: str | None) -> dict:
    """Run one variant in this process and return its time (model loading excluded)."""
    import numpy as np

    image = micrograph(size)
    model = model_for(run)
    start = time.perf_counter()
    if name == "whole":
        probabilities = model.predict_on_batch(image[np.newaxis, ..., np.newaxis])[0]
    else:
        from emdl.predict.segment import segment_image

        tile = int(name.split("-")[1])
        probabilities, _ = segment_image(model, image, tile=tile, overlap=tile // 4)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "shape": list(probabilities.shape)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--run", help="a run directory of emdl train / unet_bubbles")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # used by the child processes
    args = parser.parse_args()
    if args.variant:
        result = variant(args.variant, args.size, args.run)
        result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    print(f"segmenting a {args.size} x {args.size} micrograph, {os.cpu_count()} CPU cores")
    print(f"{'variant':28s} {'seconds':>8s} {'peak MiB':>9s}")
    for name, label in [
        ("tiled-256", "emdl tiled, 256 tiles"),
        ("tiled-512", "emdl tiled, 512 tiles"),
        ("whole", "whole image at once"),
    ]:
        command = [sys.executable, __file__, "--variant", name, "--size", str(args.size)]
        if args.run:
            command += ["--run", args.run]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["?"])[-1][:60]
            print(f"{label:28s} {'failed':>8s} {'':>9s}  {reason}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{label:28s} {row['seconds']:8.1f} {row['peak_mib']:9.0f}")


if __name__ == "__main__":
    main()
