"""Counts and sizes on held-out labeled images: each method side by side in one run.

    python benchmarks/counting.py [--data-dir DIR] [--methods otsu,unet,unet-borders,unet-distance]
                                  [--epochs 16] [--steps-per-epoch 30] [--out runs/counting]

The lecture's two bubble images, each held out in turn: a model trains on the other image alone
(the experiment's settings, ``emdl.experiments.unet_bubbles``) and is scored on the held-out one
with the default post-processing of ``emdl predict`` (``--min-area`` 10). Per method and image,
and pooled over both: count error (predicted minus true, % of true), mean equivalent diameter
error of the objects not cut by the edge (%), the two-sample Kolmogorov-Smirnov statistic of the
diameters and F1 at IoU 0.5 (boxes of the instances, greedy matching as COCO).

Methods: ``otsu`` (Otsu's threshold, the minority side taken as the defects, split by the
distance-transform watershed: no learning), ``unet`` (the two-class U-Net + the same watershed),
``unet-borders`` (the instance-aware U-Net, ``--border-width`` 2 px, ``--border-weight`` 1),
``unet-distance`` (the distance U-Net, ``--distance-weight`` 1, ``--peak-depth`` 0.15; its
instances grow from the peaks of the distance map it learned), the plain U-Net's watershed at
``--split-depth`` pixels (default its rule), ``maskrcnn`` (the experiment's Mask R-CNN; slow),
each optionally with ``+tta``. Data: ``--data-dir``, else ``$EMDL_DATA_DIR/bubbles``.
``--synthetic DIR`` trains every model on the training image and the synthetic images of an
``emdl synth --kind bubbles`` folder together (its runs named ``...-synth``). ``--seed N``
(default 0) trains with another seed (runs and rows named ``...-sN``): one seed is one draw.

``--detector-run RUN`` adds loops111's counts: the finished detector run ``RUN`` (e.g.
``benchmarks/detector_vs_ultralytics.py``'s ``OUT/emdl``) on its validation images
(``--detector-labels``, default ``validation.xml`` beside the run, images from
``$EMDL_DATA_DIR/loops111/images``), at its F1-best threshold and at its calibrated one. Both
were chosen on those same images, so these rows are not held out.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMAGES = ("DL_for_Microscopy_Train_Img_1.png", "DL_for_Microscopy_Train_Img_2.png")
LABELS = ("DL_for_Microscopy_Train_Lab_1.xml", "DL_for_Microscopy_Train_Lab_2.xml")


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
    from emdl.io.image import read_image
    from emdl.labels import instance_targets
    from emdl.metrics.instances import score_instances
    from emdl.train.calibration import MIN_AREA

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
        label = method.replace("unet-borders", borders).replace("unet-distance", distance)
        if args.split_depth and method.split("+")[0] == "unet":
            label = label.replace("unet", f"unet-split{args.split_depth:g}", 1)
        if args.synthetic and not method.startswith("otsu"):
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

    print()
    width = max(len(label) for label, *_ in rows) + 2
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
