"""Throughput of AtomAI's segmentation augmentor, for comparison with emdl's tf.data pipeline.

Measures how many augmented 256 x 256 crops per second ``atomai.transforms.seg_augmentor`` makes
on this machine, the way AtomAI's trainer uses it: the two 512 x 512 bubble images are cut into
256 x 256 crops (sliding window, stride 128: 18 crops), and each training batch (random crops,
``--batch-size``) goes through the augmentor with the batch counter as seed. After a short
warm-up it runs for ``--seconds`` and prints one JSON line: crops per second and CPU use
(process CPU time / wall time, in percent; 100 = one core busy).

Every augmentation AtomAI offers is on, with AtomAI's own default ranges (``True``): rotation
(flips and 90-degree turns), zoom, gauss_noise, jitter, poisson_noise, salt_and_pepper, blur,
contrast, background. Left out: ``resize`` (it changes the crop size, so the crops would no
longer be 256 x 256) and ``custom_transform`` (a user hook, not an augmentation).

AtomAI needs its own virtualenv (run from the repository root)::

    python3 -m venv /work/atomai/venv
    /work/atomai/venv/bin/pip install torch==2.13.0            # the CPU build
    /work/atomai/venv/bin/pip install atomai torch==2.13.0 six  # pins torch; mendeleev needs six
    /work/atomai/venv/bin/python benchmarks/atomai_augment.py [--seconds 20] [--batch-size 8]

PyPI's torchvision is built against CUDA torch and does not import beside CPU torch, which
breaks ``import atomai`` (its package imports torchvision models). The augmentor itself needs
only numpy, scipy, scikit-image and OpenCV, so the script then loads AtomAI's
``transforms/imaug.py`` on its own: the code timed is the same.
"""

import argparse
import importlib.util
import json
import os
import time
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from skimage.draw import polygon2mask
from skimage.io import imread

AUGMENTATIONS = {
    "rotation": True,
    "zoom": True,
    "gauss_noise": True,
    "jitter": True,
    "poisson_noise": True,
    "salt_and_pepper": True,
    "blur": True,
    "contrast": True,
    "background": True,
}
CROP, STRIDE = 256, 128


def load_seg_augmentor():
    try:
        from atomai.transforms import seg_augmentor
    except (ImportError, RuntimeError, OSError):  # torchvision without CUDA torch: see docstring
        package = Path(importlib.util.find_spec("atomai").submodule_search_locations[0])
        spec = importlib.util.spec_from_file_location("imaug", package / "transforms" / "imaug.py")
        imaug = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(imaug)
        seg_augmentor = imaug.seg_augmentor
    return seg_augmentor


def load_crops(data_dir):
    """256 x 256 crops of both images and their rasterized polygon masks, as (n, 1, h, w)."""
    images, masks = [], []
    for i in (1, 2):
        image = imread(data_dir / f"DL_for_Microscopy_Train_Img_{i}.png").astype(np.float32)
        mask = np.zeros(image.shape, bool)
        for polygon in ET.parse(data_dir / f"DL_for_Microscopy_Train_Lab_{i}.xml").iter("polygon"):
            xy = np.array([p.split(",") for p in polygon.get("points").split(";")], float)
            mask |= polygon2mask(image.shape, xy[:, ::-1])
        for top in range(0, image.shape[0] - CROP + 1, STRIDE):
            for left in range(0, image.shape[1] - CROP + 1, STRIDE):
                images.append(image[top : top + CROP, left : left + CROP])
                masks.append(mask[top : top + CROP, left : left + CROP])
    return torch.from_numpy(np.stack(images)[:, None]), torch.from_numpy(np.stack(masks)[:, None])


def run(augment, images, labels, batch_size, seconds, rng, first_seed=0):
    """Augment random batches for ``seconds``; return (crops, wall seconds, CPU seconds)."""
    crops, seed = 0, first_seed
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        index = torch.from_numpy(rng.integers(0, len(images), batch_size))
        out, _ = augment(images[index], labels[index].float(), seed)
        assert out.shape == (batch_size, 1, CROP, CROP)
        crops, seed = crops + batch_size, seed + 1
    return crops, time.perf_counter() - wall0, time.process_time() - cpu0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    repo = Path(__file__).resolve().parents[1]
    data_dir = Path(os.environ.get("EMDL_DATA_DIR", repo.parent / "shared" / "data")) / "bubbles"
    images, labels = load_crops(data_dir)
    augment = load_seg_augmentor()(1, **AUGMENTATIONS)
    rng = np.random.default_rng(0)

    run(augment, images, labels, args.batch_size, 2.0, rng)  # warm-up
    crops, wall, cpu = run(augment, images, labels, args.batch_size, args.seconds, rng)
    result = {
        "tool": "atomai",
        "version": version("atomai"),
        "crops_per_second": round(crops / wall, 1),
        "cpu_percent": round(100 * cpu / wall, 1),
        "batch_size": args.batch_size,
        "augmentations": list(AUGMENTATIONS),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
