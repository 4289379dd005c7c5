"""Counts and sizes on held-out labeled images: each method side by side in one run.

    python benchmarks/counting.py [--data-dir DIR] [--methods otsu,unet,unet-borders,unet-distance]
                                  [--epochs 16] [--steps-per-epoch 30] [--out runs/counting]
                                  [--atomai-python PY] [--atomai-cycles N] [--atomai-batch-size B]

The lecture's two bubble images, each held out in turn: a model trains on the other image alone
(the experiment's settings, ``emdl.experiments.unet_bubbles``) and is scored on the held-out one
with the default post-processing of ``emdl predict`` (``--min-area`` 10). Per method and image,
and pooled over both: count error (predicted minus true, % of true), mean equivalent diameter
error of the objects not cut by the edge (%), the two-sample Kolmogorov-Smirnov statistic of the
diameters and F1 at IoU 0.5 (boxes of the instances, greedy matching as COCO, at the instance
score, an instance's mean probability, that maximizes F1 on the scored image: an upper bound).

Methods: ``otsu`` (Otsu's threshold, the minority side taken as the defects, split by the
distance-transform watershed: no learning), ``unet`` (the two-class U-Net + the same watershed),
``unet-borders`` (the instance-aware U-Net, ``--border-width`` 2 px, ``--border-weight`` 1),
``unet-distance`` (the distance U-Net, ``--distance-weight`` 1, ``--peak-depth`` 0.15; its
instances grow from the peaks of the distance map it learned), the plain U-Net's watershed at
``--split-depth`` pixels (default its rule), ``maskrcnn`` (the experiment's Mask R-CNN),
each optionally with ``+tta``. Data: ``--data-dir``, else ``$EMDL_DATA_DIR/bubbles``.
``--synthetic DIR`` trains every model on the training image and the synthetic images of an
``emdl synth --kind bubbles`` folder together (its runs named ``...-synth``). ``--seed N``
(default 0) trains with another seed (runs and rows named ``...-sN``): one seed is one draw.

``atomai`` is the lecture's AtomAI recipe in a venv of its own (``--atomai-python``, default
``/work/peers/atomai/bin/python``; a missing one is said in one line and the method skipped). emdl
cuts the training image and its ``emdl.labels.semantic_mask`` into 256 x 256 crops (stride 128,
the last window flush with the edge: 9 of a 512 x 512 image; pixels min-max scaled to [0, 1] as
``emdl.io.image.read_image`` does, the lecture's ``norm2D``) and writes them to
``--out/atomai-cCYCLES-trainK/`` with a driver script (:data:`ATOMAI_DRIVER`); the peer's Python
trains ``aoi.models.Segmentor(model="Unet", nb_classes=1)`` with AtomAI's documented call,
``fit(images, masks, images_test, masks_test, training_cycles=..., compute_accuracy=True,
swa=True)`` (the lecture's notebook, ``Lecture 13/ML4EM_Summer2023_U_Net.ipynb``, is 2.7 MB of
mostly figures and its ``fit`` cell was not found; the data's README gives its 300 iterations), and
writes the held-out image's sigmoid probabilities to ``probabilities.npy``. Back here they go
through the ``unet`` method's post-processing (``instances_from_probabilities``, threshold 0.5,
``--split-depth``, ``--min-area`` 10), so only the model differs. AtomAI's other defaults: its
U-Net (16 base filters, 4 levels, batch norm), Adam at 1e-3, cross-entropy, no augmentation, seed
``--seed``. Its test stack is the training crops again: AtomAI only prints the test loss (the
weights kept are the last 30 cycles' average, SWA; below 30 cycles, where AtomAI's SWA fails, the
last weights), and the held-out image must not steer anything. Batches are
``--atomai-batch-size`` crops (default AtomAI's 32, capped at the 9 crops: it keeps whole batches
only); ``--atomai-cycles`` defaults to the crops emdl's U-Net sees (``--epochs`` x
``--steps-per-epoch`` x 8) over the batch: 16 x 30 x 8 / 9 = 427 cycles. The peer venv::

    python3.11 -m venv /work/peers/atomai
    /work/peers/atomai/bin/pip install torch==2.14.1 torchvision==0.29.1 atomai six
    python benchmarks/counting.py --methods atomai [--atomai-cycles N] [--out runs/counting]

(atomai 0.8.1 with PyPI's CUDA builds of torch and torchvision, run on the CPU: they import
together, unlike the CPU torch of ``benchmarks/atomai_augment.py``'s venv.)

``--detector-run RUN`` adds loops111's counts: the finished detector run ``RUN`` (e.g.
``benchmarks/detector_vs_ultralytics.py``'s ``OUT/emdl``) on its validation images
(``--detector-labels``, default ``validation.xml`` beside the run, images from
``$EMDL_DATA_DIR/loops111/images``), at its F1-best threshold and at its calibrated one. Both
were chosen on those same images, so these rows are not held out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# benchmarks/ is no package: its scripts import each other from their folder.
sys.path.insert(0, str(Path(__file__).parent))

IMAGES = ("DL_for_Microscopy_Train_Img_1.png", "DL_for_Microscopy_Train_Img_2.png")
LABELS = ("DL_for_Microscopy_Train_Lab_1.xml", "DL_for_Microscopy_Train_Lab_2.xml")
ATOMAI_PYTHON = "/work/peers/atomai/bin/python"
ATOMAI_BATCH = 32  # Segmentor.fit's default batch size
CROP, STRIDE = 256, 128  # AtomAI's training stack: same-size crops, as emdl's U-Net's windows

# Run by the peer's Python: ``driver.py fit SETTINGS.json``; writes SETTINGS["result"].
ATOMAI_DRIVER = '''"""AtomAI's side of benchmarks/counting.py's atomai method (written by it)."""
import json, sys, time
import numpy as np
import atomai as aoi
import torch

mode, settings = sys.argv[1], json.load(open(sys.argv[2]))
images, masks = np.load(settings["images"]), np.load(settings["masks"])
start = time.time()
model = aoi.models.Segmentor(model="Unet", nb_classes=1, seed=settings["seed"])
# AtomAI's documented recipe; the test stack only prints losses (see counting.py). SWA averages
# the last 30 cycles' weights and fails (KeyError) on fewer.
swa = settings["cycles"] >= 30
model.fit(images, masks, images, masks, training_cycles=settings["cycles"],
          batch_size=settings["batch_size"], compute_accuracy=True, swa=swa,
          print_loss=settings["print_loss"], filename=settings["weights"],
          plot_training_history=False)
trained = time.time()
image = np.load(settings["image"])
output = model.predict(image, compute_coords=False, verbose=False)
height, width = image.shape
np.save(settings["probabilities"], output[0, :height, :width, 0].astype("float32"))
json.dump({"version": aoi.__version__, "torch": torch.__version__, "crops": len(images),
           "cycles": settings["cycles"], "batch_size": settings["batch_size"], "swa": swa,
           "train_seconds": trained - start, "predict_seconds": time.time() - trained,
           "train_loss": float(model.loss_acc["train_loss"][-1]),
           "probabilities": settings["probabilities"]}, open(settings["result"], "w"))
'''


def otsu_instances(image):
    import numpy as np
    from skimage.filters import threshold_otsu

    from emdl.predict.instances import instances_from_probabilities
    from emdl.train.calibration import MIN_AREA

    above = image > threshold_otsu(image)
    objects = above if above.mean() < 0.5 else ~above
    return instances_from_probabilities(
        objects.astype(np.float32)[..., None], threshold=0.5, min_area=MIN_AREA
    )


_TRAINED: dict = {}


def trained(method: str, folder: Path, train_index: int, args, out: Path):
    """The run of ``method`` trained on image ``train_index`` alone: (config, model); the
    ``+tta`` variant of a method shares its runs, predicting with test-time augmentation."""
    base = method.removesuffix("+tta")
    if (base, train_index) not in _TRAINED:
        _TRAINED[base, train_index] = _train(base, folder, train_index, args, out)
    config, model = _TRAINED[base, train_index]
    return (config.with_model(tta=True) if method.endswith("+tta") else config), model


def _with_synthetic(folder: Path, train_index: int, synthetic: Path, out: Path):
    """Labels and an image folder (links, in ``out``) of the real training image and the
    synthetic images of ``synthetic`` (a folder ``emdl synth`` wrote)."""
    if not (synthetic / "annotations.xml").is_file():
        raise SystemExit(
            f"counting: {synthetic}: no annotations.xml (an `emdl synth --out` folder)"
        )
    images = out / f"images-train{train_index + 1}-synth"
    images.mkdir(parents=True, exist_ok=True)
    for path in [folder / IMAGES[train_index], *sorted((synthetic / "images").iterdir())]:
        link = images / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    return [str(folder / LABELS[train_index]), str(synthetic / "annotations.xml")], images


def _train(method: str, folder: Path, train_index: int, args, out: Path):
    from emdl.experiments import maskrcnn_bubbles, unet_bubbles
    from emdl.train.run import train_run

    labels = [str(folder / LABELS[train_index])]
    images = folder
    if args.synthetic:
        labels, images = _with_synthetic(folder, train_index, Path(args.synthetic), out)
        method += "-synth"
    settings = {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "hold_out": False}
    if method.startswith("maskrcnn"):
        config = maskrcnn_bubbles.default_config(labels, str(images), **settings)
    else:
        config = unet_bubbles.default_config(folder, **settings)
        data = dataclasses.replace(config.data, labels=tuple(labels), images=str(images))
        config = dataclasses.replace(config, data=data)
        if method.startswith("unet-borders"):
            config = config.with_model(
                border_width=args.border_width, border_weight=args.border_weight
            )
            method += f"-w{args.border_width}x{args.border_weight:g}"
        if method.startswith("unet-distance"):
            config = config.with_model(distance_weight=args.distance_weight)
            method += f"-w{args.distance_weight:g}"
    if args.seed:
        config = dataclasses.replace(
            config, training=dataclasses.replace(config.training, seed=args.seed)
        )
        method += f"-s{args.seed}"
    run_dir = out / f"{method}-train{train_index + 1}"
    if (run_dir / "metrics.json").is_file():  # trained by an earlier benchmark run
        from emdl.train.run import load_run

        return load_run(run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train_run(config, run_dir, verbose=2)
    return result.config, result.model


def atomai_crops(image, mask, size: int = CROP, stride: int = STRIDE) -> tuple:
    """AtomAI's training stack of ``image`` float32 ``(H, W)`` and its ``mask`` (``(H, W)``, 0/1):
    ``size`` x ``size`` windows every ``stride`` pixels in raster order, the last row and column
    flush with the far edges, as float32 ``(n, 1, size, size)`` images and masks (AtomAI's
    channel-first binary format)."""
    import numpy as np

    height, width = image.shape
    if mask.shape != image.shape:
        raise ValueError(f"atomai: mask {mask.shape} and image {image.shape} differ in shape")
    if min(height, width) < size:
        raise ValueError(f"atomai: image {height} x {width} is smaller than a {size} px crop")

    def starts(length):  # the last window ends at the edge
        return sorted({*range(0, length - size + 1, stride), length - size})

    windows = [(top, left) for top in starts(height) for left in starts(width)]
    images = np.stack([image[t : t + size, lt : lt + size] for t, lt in windows])
    masks = np.stack([mask[t : t + size, lt : lt + size] for t, lt in windows])
    return images[:, None].astype(np.float32), (masks[:, None] > 0).astype(np.float32)


def atomai_settings(image_shape, args) -> dict:
    """The peer's batch size and training cycles for a training image of ``image_shape``:
    ``--atomai-batch-size`` (AtomAI's default capped at the number of crops: it keeps whole
    batches only) and ``--atomai-cycles`` (default: the crops emdl's U-Net sees, ``--epochs`` x
    ``--steps-per-epoch`` x its batch of 8, over AtomAI's batch)."""
    import numpy as np

    from emdl.errors import EmdlError

    crops = len(atomai_crops(np.zeros(image_shape, np.float32), np.zeros(image_shape))[0])
    batch = args.atomai_batch_size or min(ATOMAI_BATCH, crops)
    if not 1 <= batch <= crops:
        raise EmdlError(f"--atomai-batch-size {batch}: must be 1 to the {crops} crops")
    seen = args.epochs * args.steps_per_epoch * 8  # unet_bubbles' batch_size
    cycles = args.atomai_cycles or max(1, round(seen / batch))
    return {"batch_size": batch, "cycles": cycles, "crops": crops}


def read_atomai_probabilities(path: Path, shape) -> np.ndarray:
    """The peer's probabilities of the held-out image, ``path`` (.npy float ``(H, W)`` in [0, 1]),
    as float32 ``(H, W, 1)``: the one sigmoid channel emdl's post-processing reads."""
    import numpy as np

    from emdl.errors import InputError

    try:
        probabilities = np.load(path)
    except (OSError, ValueError) as error:
        raise InputError(path, f"not a .npy array ({error})") from None
    if probabilities.shape != tuple(shape):
        raise InputError(path, f"shape {probabilities.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(probabilities)) or probabilities.min() < 0 or probabilities.max() > 1:
        raise InputError(path, "probabilities outside [0, 1]")
    return probabilities.astype(np.float32)[..., None]


def atomai_probabilities(folder: Path, train_index: int, classes, truth: dict, args, out: Path):
    """Train AtomAI on image ``train_index`` in the peer venv and predict the other image:
    (probabilities float32 ``(H, W, 1)``, the driver's result dict). A finished run in ``out``
    (its ``result.json``) is read again, not retrained."""
    import numpy as np

    from emdl.io.image import read_image
    from emdl.labels import semantic_mask

    image = read_image(folder / IMAGES[train_index])
    held_out = read_image(folder / IMAGES[1 - train_index])
    settings = atomai_settings(image.shape, args)
    name = f"atomai-c{settings['cycles']}" + (f"-s{args.seed}" if args.seed else "")
    run_dir = out / f"{name}-train{train_index + 1}"
    result = run_dir / "result.json"
    if not result.is_file():
        from detector_vs_ultralytics import drive_peer  # beside this script (see the top)

        run_dir.mkdir(parents=True, exist_ok=True)
        mask = semantic_mask(truth[IMAGES[train_index]], list(classes))
        images, masks = atomai_crops(image, mask)
        np.save(run_dir / "train_images.npy", images)
        np.save(run_dir / "train_masks.npy", masks)
        np.save(run_dir / "held_out.npy", held_out)
        driver = run_dir / "driver.py"
        driver.write_text(ATOMAI_DRIVER)
        peer = {
            "images": str(run_dir / "train_images.npy"),
            "masks": str(run_dir / "train_masks.npy"),
            "image": str(run_dir / "held_out.npy"),
            "probabilities": str(run_dir / "probabilities.npy"),
            "weights": str(run_dir / "model"),
            "seed": args.seed,
            "cycles": settings["cycles"],
            "batch_size": settings["batch_size"],
            "print_loss": max(1, settings["cycles"] // 10),
        }
        env = {**os.environ, "MPLBACKEND": "Agg"}
        print(f"{name}: training on {IMAGES[train_index]} in {args.atomai_python} ...", flush=True)
        drive_peer(args.atomai_python, driver, "fit", peer, result, env)
    done = json.loads(result.read_text())
    return read_atomai_probabilities(run_dir / "probabilities.npy", held_out.shape), done


def detector_rows(run_dir: Path, labels: Path, images: Path) -> list:
    """A finished detector run on labeled images (loops111's validation images): rows of
    ``(method, images, comparison, F1@0.5)`` at its default threshold (the F1-best on its
    validation images) and at its calibrated post-processing, counts and sizes from boxes (the
    box's equivalent diameter, as ``emdl predict`` measures a detector's defects)."""
    import json

    import numpy as np

    from emdl.analysis.statistics import compare_sets, instance_defects
    from emdl.analysis.truth import truth_defects
    from emdl.data import load_labeled_images
    from emdl.io.image import read_image
    from emdl.labels import box_targets
    from emdl.metrics.detection import match_detections
    from emdl.train.calibration import MIN_AREA, read_calibration
    from emdl.train.run import load_run

    config, model = load_run(run_dir)
    kind = config.model_kind
    metrics = json.loads((run_dir / "metrics.json").read_text())
    default = kind.default_threshold(config, metrics)
    calibration = read_calibration(run_dir) or {}
    settings = {
        "detector, F1-best threshold": (default, MIN_AREA),
        "detector, calibrated": (
            calibration.get("threshold", default),
            calibration.get("min_area", MIN_AREA),
        ),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records, _ = load_labeled_images([labels], images)
    classes = list(config.classes)
    found_all = {name: ([], [], [0, 0, 0]) for name in settings}  # defects, truth, TP/N/M
    for record in records:
        image = read_image(record.path)
        truth = truth_defects(record.annotation, as_boxes=True)
        true_boxes = box_targets(record.annotation, classes)["boxes"]
        for name, (threshold, min_area) in settings.items():
            found = kind.instances(model, image, config, threshold=threshold, min_area=min_area)
            predicted, true, counts = found_all[name]
            predicted += instance_defects(found, classes)
            true += truth
            counts[0] += int(np.sum(match_detections(found.boxes, found.scores, true_boxes)))
            counts[1] += len(found.boxes)
            counts[2] += len(true_boxes)
    rows = []
    for name, (predicted, true, (hits, n_predicted, n_true)) in found_all.items():
        f1 = 2 * hits / max(n_predicted + n_true, 1)
        rows.append((name, f"{len(records)} validation images", compare_sets(predicted, true), f1))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the bubbles folder (default $EMDL_DATA_DIR/bubbles)")
    parser.add_argument("--methods", default="otsu,unet,unet-borders")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--steps-per-epoch", type=int, default=30)
    parser.add_argument("--out", default="runs/counting", help="folder for the runs")
    parser.add_argument(
        "--seed", type=int, default=0, help="training seed (runs and labels end -sSEED if not 0)"
    )
    parser.add_argument("--border-width", type=int, default=2, help="unet-borders' border, px")
    parser.add_argument("--border-weight", type=float, default=1.0, help="its loss weight")
    parser.add_argument(
        "--distance-weight", type=float, default=1.0, help="unet-distance's map loss weight"
    )
    parser.add_argument(
        "--split-depth", type=float, help="the plain U-Net's split depth, px (default: its rule)"
    )
    parser.add_argument("--peak-depth", type=float, default=0.15, help="unet-distance's peak depth")
    parser.add_argument(
        "--synthetic",
        metavar="DIR",
        help="also train every model on this `emdl synth` folder's images (run names end -synth)",
    )
    parser.add_argument(
        "--atomai-python", default=ATOMAI_PYTHON, help="the AtomAI venv's Python (see docstring)"
    )
    parser.add_argument(
        "--atomai-cycles", type=int, help="AtomAI's training cycles (default: emdl's crops seen)"
    )
    parser.add_argument(
        "--atomai-batch-size", type=int, help="AtomAI's batch (default 32, at most the crops)"
    )
    parser.add_argument(
        "--detector-run",
        help="a finished loops111 detector run to count with (e.g. the detector benchmark's)",
    )
    parser.add_argument(
        "--detector-labels", help="its validation labels (default: validation.xml beside it)"
    )
    args = parser.parse_args(argv)
    folder = Path(args.data_dir or Path(os.environ.get("EMDL_DATA_DIR", "data")) / "bubbles")
    if not (folder / IMAGES[0]).is_file():
        print(f"counting: {folder}: no bubbles images (give --data-dir)", file=sys.stderr)
        return 1

    from emdl.analysis.statistics import compare_sets, instance_defects
    from emdl.analysis.truth import truth_defects
    from emdl.data import load_labeled_images
    from emdl.errors import EmdlError
    from emdl.io.image import read_image
    from emdl.labels import instance_targets
    from emdl.metrics.instances import score_instances
    from emdl.predict.instances import instances_from_probabilities
    from emdl.train.calibration import MIN_AREA
    from emdl.train.kinds.unet import THRESHOLD  # the unet method's, so only the model differs

    truth = {}
    for labels in LABELS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            records, classes = load_labeled_images([folder / labels], folder, missing="skip")
        for record in records:
            truth[record.name] = record.annotation
    rows = []
    borders = f"unet-borders-w{args.border_width}x{args.border_weight:g}"
    distance = f"unet-distance-w{args.distance_weight:g}-h{args.peak_depth:g}"
    for method in filter(None, args.methods.split(",")):
        if method == "atomai" and not Path(args.atomai_python).is_file():
            print(f"atomai: {args.atomai_python}: no such Python, skipped (see the docstring)")
            continue
        label = method.replace("unet-borders", borders).replace("unet-distance", distance)
        if method == "atomai":
            try:
                shape = read_image(folder / IMAGES[0]).shape
                label += f"-c{atomai_settings(shape, args)['cycles']}"
            except EmdlError as error:  # --atomai-batch-size out of range
                print(f"counting: {error}", file=sys.stderr)
                return 1
        if args.split_depth and method.split("+")[0] in ("unet", "atomai"):
            label = label.replace("unet", f"unet-split{args.split_depth:g}", 1)
            label = label.replace("atomai", f"atomai-split{args.split_depth:g}", 1)
        if args.synthetic and not method.startswith(("otsu", "atomai")):  # atomai: real only
            label = label.replace("+", "-synth+", 1) if "+" in label else label + "-synth"
        if args.seed and not method.startswith("otsu"):
            label = (
                label.replace("+", f"-s{args.seed}+", 1)
                if "+" in label
                else f"{label}-s{args.seed}"
            )
        predicted_all, truth_all, pairs, seconds = [], [], [], 0.0
        for held_out in (0, 1):
            name = IMAGES[held_out]
            image, annotation = read_image(folder / name), truth[name]
            if method.startswith("otsu"):
                start = time.perf_counter()
                found = otsu_instances(image)
            elif method == "atomai":
                try:
                    probabilities, done = atomai_probabilities(
                        folder, 1 - held_out, classes, truth, args, Path(args.out)
                    )
                except EmdlError as error:  # the peer failed, or wrote something unusable
                    print(f"counting: {error}", file=sys.stderr)
                    return 1
                start = time.perf_counter() - done["predict_seconds"]  # the peer's + ours
                found = instances_from_probabilities(
                    probabilities,
                    threshold=THRESHOLD,
                    min_area=MIN_AREA,
                    split_depth=args.split_depth,
                )
            else:
                config, model = trained(method, folder, 1 - held_out, args, Path(args.out))
                if method.split("+")[0] == "unet":
                    config = config.with_model(split_depth=args.split_depth)
                if method.startswith("unet-distance"):
                    config = config.with_model(peak_depth=args.peak_depth)
                kind = config.model_kind
                start = time.perf_counter()
                found = kind.instances(
                    model,
                    image,
                    config,
                    threshold=kind.default_threshold(config, None),
                    min_area=MIN_AREA,
                )
            seconds += time.perf_counter() - start
            predicted = instance_defects(found, list(classes))
            true = truth_defects(annotation)
            row = compare_sets(predicted, true)
            f1 = score_instances([(name, found, instance_targets(annotation, classes))], classes)[
                "f1_50"
            ]
            rows.append((label, name, row, f1))
            predicted_all += predicted
            truth_all += true
            pairs.append((name, found, instance_targets(annotation, classes)))
        pooled = compare_sets(predicted_all, truth_all)
        rows.append((label, "both", pooled, score_instances(pairs, classes)["f1_50"]))
        print(f"{label}: predicted in {seconds:.1f} s for both images", flush=True)

    if args.detector_run:
        run = Path(args.detector_run)
        labels = Path(args.detector_labels or run.parent / "validation.xml")
        loops = Path(os.environ.get("EMDL_DATA_DIR", "data")) / "loops111" / "images"
        rows += detector_rows(run, labels, loops)

    if not rows:  # every method skipped
        return 0
    print()
    width = max(len("method"), *(len(label) for label, *_ in rows)) + 2
    header = f"{'count':>14}{'count err':>11}{'diam err':>10}{'KS':>7}{'F1':>7}"
    print(f"{'method':{width}}{'image':36}{header}")
    for method, name, row, f1 in rows:
        count = f"{row['count_predicted']}/{row['count_truth']}"
        count_error = 100 * row["count_error"] / max(row["count_truth"], 1)
        if row["mean_diameter_error"] == "":
            diameter = "-"
        else:
            diameter = f"{100 * row['mean_diameter_error'] / row['mean_diameter_truth']:+.1f}%"
        ks = "-" if row["ks_statistic"] == "" else f"{row['ks_statistic']:.3f}"
        print(
            f"{method:{width}}{name:36}{count:>14}{count_error:>+10.1f}%{diameter:>10}{ks:>7}{f1:>7.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
