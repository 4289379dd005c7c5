"""emdl's detector beside Ultralytics YOLOv8n: the same loops111 split, the same wall-clock budget.

Measures, one after the other (never at the same time: the CPU has two cores), on one split of
``DIR/loops111`` (the validation images chosen by emdl's own rule,
:func:`emdl.data.sources.split_by_image`, with ``--seed``; ``--validation-fraction`` of them):

- emdl: :func:`emdl.train.run.train_run` with the ``yolo_loops`` experiment's config
  (:func:`emdl.experiments.yolo_loops.detector_config`, micrographs resized to 640 pixels on the
  longest side, batches of eight 320 x 320 crops), with ``training.budget_minutes`` the budget
  (:mod:`emdl.train.budget`, what Ultralytics' ``time=`` does: after every epoch the run re-plans
  the epochs that fit from the mean epoch time so far and stretches the cosine decay of the
  learning rate to the steps that fit; it stops after the batch that spends the budget).
- the peer: Ultralytics YOLOv8n from ``yolov8n.yaml`` (no pretrained weights), ``time=`` the
  budget in hours, ``imgsz`` 640 (emdl's input size), batch 16, ``device="cpu"``, 2 dataloader
  workers asked (on a CPU Ultralytics loads in its main process anyway), otherwise its defaults,
  in its own virtual environment (``--peer-python``) through a driver script written
  into ``--out/peer/``. Its dataset is ``emdl convert --to yolo`` of the same training and
  validation images (``--out/yolo/``, images linked, not copied). Its ``best.pt`` predicts the
  validation images whole (conf 0.001, IoU 0.7, at most 300 boxes) into ``--out/peer/boxes.json``.

Both are scored by emdl's own functions on the same validation images, whole: emdl's run by the
scores its run records (the kind's ``evaluate``, as ``emdl evaluate`` does, with the detections
its config keeps: score >= 0.05, IoU 0.6, at most 300, tiled), the peer's boxes by
:func:`emdl.metrics.detection.score_detections` against the same truth boxes. Precision, recall
and F1 are at IoU 0.5 and the F1-best score threshold; the count error is the mean over images of
|detected - true| at that threshold. Steps per second are training batches (emdl: 8 crops of
320 x 320; Ultralytics: 16 letterboxed 640 x 640 images, mosaics mostly) over the seconds from
the start of training to its end, validation after each epoch included; "images seen" are the
crops or images those batches held. "train min" is that training time, "total min" the whole
contender from start to scores (datasets, training, evaluation, export, prediction).

Install the peer (never into emdl's environment)::

    python3.11 -m venv /work/peers/ultralytics
    /work/peers/ultralytics/bin/pip install torch torchvision \\
        --index-url https://download.pytorch.org/whl/cpu   # CPU-only PyTorch, where reachable
    /work/peers/ultralytics/bin/pip install ultralytics

On this machine download.pytorch.org is not reachable; what was used instead (PyPI's builds,
CUDA-enabled, run on the CPU; PyPI's torchvision does not import beside the CPU-only torch wheel
on disk) was::

    /work/peers/ultralytics/bin/pip install torch==2.14.1 torchvision==0.29.1
    /work/peers/ultralytics/bin/pip install ultralytics    # 8.4.190

Run alone on the machine. A 60-minute budget took 2 h 3 min end to end: 2 x 60 min of
training, then emdl's evaluation, calibration and export on the validation images and the peer's
final validation and prediction (with ``--budget-minutes 1 --limit-images 20``: 3.5 min, on a
shared CPU)::

    python benchmarks/detector_vs_ultralytics.py --data-dir $EMDL_DATA_DIR --out /tmp/vs_ul \\
        --budget-minutes 60 [--peer-python /work/peers/ultralytics/bin/python] [--seed 0]

``--limit-images N`` keeps the first N labeled images (a quick check that it all runs, not a
measurement). The table is printed at the end and written to ``--out/results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# the experiment's cap with a budget: far more epochs than fit, so the budget ends training
from emdl.experiments.yolo_loops import EPOCH_CAP

PEER_PYTHON = "/work/peers/ultralytics/bin/python"
STEPS_PER_EPOCH = 40  # the yolo_loops experiment's
LONGEST_SIDE = 640  # the yolo_loops experiment's resize, and so the peer's imgsz
COLUMNS = (  # (results key, heading, format)
    ("ap50", "AP50", "{:.3f}"),
    ("ap50_95", "AP50:95", "{:.3f}"),
    ("precision50", "P", "{:.3f}"),
    ("recall50", "R", "{:.3f}"),
    ("f1_50", "F1", "{:.3f}"),
    ("count_error", "count err", "{:.2f}"),
    ("steps_per_second", "steps/s", "{:.3f}"),
    ("images_seen", "images seen", "{:.0f}"),
    ("train_minutes", "train min", "{:.1f}"),
    ("total_minutes", "total min", "{:.1f}"),
)

# Run by the peer's Python: ``driver.py train|predict SETTINGS.json``; writes SETTINGS["result"].
DRIVER = '''"""Ultralytics' side of benchmarks/detector_vs_ultralytics.py (written by it)."""
import json, sys, time
from ultralytics import YOLO, __version__

mode, settings = sys.argv[1], json.load(open(sys.argv[2]))
if mode == "train":
    counts, clock = [], {}
    model = YOLO("yolov8n.yaml")
    model.add_callback("on_train_start", lambda t: clock.setdefault("start", time.time()))
    model.add_callback("on_train_epoch_start", lambda t: counts.append(0))
    def batch_end(trainer):
        counts[-1] += 1
    def epoch_end(trainer):
        clock["end"], clock["images"] = time.time(), len(trainer.train_loader.dataset)
        clock["batch"] = trainer.batch_size
    model.add_callback("on_train_batch_end", batch_end)
    model.add_callback("on_fit_epoch_end", epoch_end)
    model.train(**settings["train"])
    # A whole epoch holds each training image once; a cut one, its batches' images.
    seen = sum(min(n * clock["batch"], clock["images"]) for n in counts)
    result = {"version": __version__, "steps": sum(counts), "epochs": len(counts),
              "images_seen": seen, "train_seconds": clock["end"] - clock["start"],
              "weights": str(model.trainer.best)}
else:
    model, found = YOLO(settings["weights"]), []
    for image in settings["images"]:
        boxes = model.predict(image["path"], **settings["predict"])[0].boxes
        found.append({"name": image["name"], "boxes": boxes.xyxy.tolist(),
                      "scores": boxes.conf.tolist(), "classes": boxes.cls.int().tolist()})
    result = {"version": __version__, "images": found}
json.dump(result, open(settings["result"], "w"))
'''


def split_images(records: Sequence, fraction: float, seed: int, limit: int | None = None):
    """(training, validation) of ``records`` (emdl's :class:`~emdl.data.LabeledImage`): the
    first ``limit`` of them (all when None), split by emdl's own rule
    (:func:`emdl.data.sources.split_by_image`) with ``seed``."""
    from emdl.data.sources import split_by_image

    if limit is not None:
        if limit < 2:
            raise ValueError(f"--limit-images {limit}: at least 2 images are needed to split")
        records = list(records)[:limit]
    return split_by_image(records, fraction, seed=seed)


def write_subset(annotations, names: Sequence[str], path: Path) -> Path:
    """A CVAT XML file at ``path`` holding the images of ``annotations`` named in ``names``,
    in the file's order."""
    from emdl.io.cvat import write_cvat

    wanted = set(names)
    subset = dataclasses.replace(
        annotations, images=[image for image in annotations.images if image.name in wanted]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_cvat(subset, path)
    return path


def write_yolo_dataset(parts: dict[str, Path], images_dir: Path, out_dir: Path) -> Path:
    """A YOLO dataset of CVAT files ``parts`` (e.g. ``{"training": XML, "validation": XML}``):
    ``out_dir/PART/labels/*.txt`` from :func:`emdl.commands.convert.convert_labels` ("yolo"),
    ``out_dir/PART/images/*`` symbolic links to the images in ``images_dir`` (Ultralytics
    finds a label by replacing the last ``/images/`` of the image path with ``/labels/``), and
    ``out_dir/data.yaml`` naming the parts "train" and "val" and the classes. Returns that
    file."""
    from emdl.commands.convert import convert_labels
    from emdl.io.labels import image_file

    names = None
    for part, labels in parts.items():
        annotations, _ = convert_labels(labels, "yolo", out_dir / part, images_dir=images_dir)
        names = annotations.label_names
        for image in annotations.images:
            link = out_dir / part / "images" / image.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(image_file(images_dir, image.name, labels).resolve())
    train, val = list(parts)
    classes = "\n".join(f"  {k}: {json.dumps(name)}" for k, name in enumerate(names))
    data = out_dir / "data.yaml"
    data.write_text(
        f"path: {json.dumps(str(out_dir.resolve()))}\ntrain: {train}/images\n"
        f"val: {val}/images\nnames:\n{classes}\n"
    )
    return data


def read_peer_boxes(path: Path, names: Sequence[str], classes: Sequence[str]) -> dict:
    """The peer's detections from the driver's JSON (``{"images": [{"name", "boxes" "xyxy"
    pixels of the image, "scores", "classes" 0-based}]}``), as ``{name: {"boxes" float32
    (N, 4), "scores" float32 (N,), "classes" int32 (N,)}}`` for exactly the images ``names``.
    A file that does not hold that is an InputError naming it."""
    import numpy as np

    from emdl.errors import InputError

    try:
        images = json.loads(Path(path).read_text())["images"]
        found = {}
        for image in images:
            boxes = np.asarray(image["boxes"], np.float32).reshape(-1, 4)
            scores = np.asarray(image["scores"], np.float32).reshape(-1)
            labels = np.asarray(image["classes"], np.int32).reshape(-1)
            if not len(boxes) == len(scores) == len(labels):
                raise ValueError(f"image '{image['name']}': boxes, scores and classes differ")
            if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
                raise ValueError(f"image '{image['name']}': a class outside {list(classes)}")
            found[image["name"]] = {"boxes": boxes, "scores": scores, "classes": labels}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"not the peer's boxes: {exc}") from None
    missing = [name for name in names if name not in found]
    if missing or len(found) != len(names):
        raise InputError(path, f"expected boxes of {len(names)} images, missing {missing[:3]}")
    return found


def score_peer(records: Sequence, found: dict, classes: Sequence[str], config) -> dict:
    """emdl's detection scores of the peer's ``found`` boxes on ``records``, against the truth
    boxes emdl's own evaluation uses (the detector kind's ``truth``)."""
    from emdl.metrics.detection import score_detections

    kind = config.model_kind
    pairs = (
        (record.name, found[record.name], kind.truth(record.annotation, classes, config))
        for record in records
    )
    return score_detections(pairs, classes)


def stopwatch():
    """A Keras callback that counts the ``steps`` (training batches) and ``epochs`` of a fit and
    its ``train_seconds`` (wall clock, from the start of training to its end)."""
    import keras

    class Stopwatch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps = self.epochs = 0
            self.start = self.train_seconds = 0.0

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1

        def on_epoch_end(self, epoch, logs=None):
            self.epochs += 1

        def on_train_end(self, logs=None):
            self.train_seconds = time.perf_counter() - self.start

    return Stopwatch()


def emdl_config(
    training_xml,
    validation_xml,
    images_dir,
    seed: int,
    *,
    budget_minutes: float | None = None,
    epochs: int = EPOCH_CAP,
    steps_per_epoch: int = STEPS_PER_EPOCH,
    **options,
):
    """The ``yolo_loops`` experiment's run config
    (:func:`emdl.experiments.yolo_loops.detector_config`, its steps per epoch and resize, and
    ``options`` of it such as ``window``) on the benchmark's split: trained on ``training_xml``,
    validated on ``validation_xml``, with ``seed``, for ``budget_minutes`` (at most ``epochs``)
    or, without a budget, ``epochs`` of ``steps_per_epoch``."""
    from emdl.experiments.yolo_loops import detector_config

    config = detector_config(
        [str(training_xml)],
        str(images_dir),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        longest_side=LONGEST_SIDE,
        validation_fraction=0.0,
        budget_minutes=budget_minutes,
        **options,
    )
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, validation_labels=(str(validation_xml),)),
        training=dataclasses.replace(config.training, seed=seed),
    )


def run_emdl(training_xml, validation_xml, images_dir, out_dir, budget_s, seed) -> tuple:
    """Train and score emdl's detector (see the module docstring); (its row of the table, the
    run's config)."""
    from emdl.train.run import train_run

    start = time.perf_counter()
    config = emdl_config(
        training_xml, validation_xml, images_dir, seed, budget_minutes=budget_s / 60
    )
    clock = stopwatch()
    result = train_run(config, out_dir, verbose=2, callbacks=[clock])
    row = {
        **_scores(result.metrics),
        "steps": clock.steps,
        "epochs": clock.epochs,
        "steps_per_second": clock.steps / clock.train_seconds,
        "images_seen": clock.steps * config.data.batch_size,
        "train_minutes": clock.train_seconds / 60,
        "total_minutes": (time.perf_counter() - start) / 60,
    }
    return row, result.config


def run_peer(python, data_yaml, validation, out_dir, budget_s, seed, batch, workers) -> tuple:
    """Train Ultralytics YOLOv8n and predict the ``validation`` records, in the peer's
    environment; (its row without scores, its boxes file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    driver = out_dir / "driver.py"
    driver.write_text(DRIVER)
    # Ultralytics keeps its settings file under YOLO_CONFIG_DIR: inside --out, not in $HOME.
    env = {**os.environ, "YOLO_CONFIG_DIR": str(out_dir / "settings")}
    start = time.perf_counter()
    train = {
        "data": str(data_yaml),
        "time": budget_s / 3600,
        "imgsz": LONGEST_SIDE,
        "batch": batch,
        "workers": workers,
        "device": "cpu",
        "pretrained": False,
        "seed": seed,
        "project": str(out_dir.resolve()),
        "name": "train",
        "plots": False,
    }
    trained = drive_peer(python, driver, "train", {"train": train}, out_dir / "train.json", env)
    predict = {"imgsz": LONGEST_SIDE, "conf": 0.001, "iou": 0.7, "max_det": 300}
    settings = {
        "weights": trained["weights"],
        "images": [{"name": r.name, "path": str(r.path)} for r in validation],
        "predict": {**predict, "device": "cpu", "verbose": False},
    }
    boxes = out_dir / "boxes.json"
    drive_peer(python, driver, "predict", settings, boxes, env)
    row = {
        "version": trained["version"],
        "steps": trained["steps"],
        "epochs": trained["epochs"],
        "steps_per_second": trained["steps"] / trained["train_seconds"],
        "images_seen": trained["images_seen"],
        "train_minutes": trained["train_seconds"] / 60,
        "total_minutes": (time.perf_counter() - start) / 60,
    }
    return row, boxes


def drive_peer(python, driver: Path, mode: str, settings: dict, result: Path, env: dict) -> dict:
    """Run the driver in ``mode`` with ``settings``, its output into ``MODE.log`` beside it;
    what it wrote to ``result``."""
    from emdl.errors import EmdlError

    path, log = driver.with_name(f"{mode}_settings.json"), driver.with_name(f"{mode}.log")
    path.write_text(json.dumps({**settings, "result": str(result)}, indent=2))
    print(f"  the peer's {mode} output: {log}", flush=True)
    with log.open("w") as output:
        command = [str(python), str(driver), mode, str(path)]
        done = subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    if done.returncode:
        raise EmdlError(f"{log}: the peer's {mode} exited with status {done.returncode}")
    return json.loads(result.read_text())


def _scores(metrics: dict) -> dict:
    """The figures of emdl's detection metrics the table and results.json keep."""
    keys = ("ap50", "ap50_95", "precision50", "recall50", "f1_50", "count_error")
    return {key: metrics[key] for key in (*keys, "score_threshold", "objects")}


def ratios(mine: dict, peer: dict) -> dict:
    """emdl / peer of every column of the table (None where the peer's figure is 0)."""
    return {key: mine[key] / peer[key] if peer[key] else None for key, _, _ in COLUMNS}


def table(rows: dict[str, dict]) -> str:
    """The rows (``{contender: {column key: value}}``) as a text table, with a last row of the
    ratios of the first contender to the second when there are two."""
    width = max(len(name) for name in [*rows, "contender"]) + 2
    lines = [f"{'contender':{width}}" + "".join(f"{head:>12}" for _, head, _ in COLUMNS)]
    for name, row in rows.items():
        cells = (form.format(row[key]) for key, _, form in COLUMNS)
        lines.append(f"{name:{width}}" + "".join(f"{cell:>12}" for cell in cells))
    if len(rows) == 2:
        first, second = rows.values()
        shares = ratios(first, second)
        cells = ("n/a" if shares[key] is None else f"{shares[key]:.2f}" for key, _, _ in COLUMNS)
        lines.append(f"{'emdl / peer':{width}}" + "".join(f"{cell:>12}" for cell in cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the folder holding loops111/")
    parser.add_argument("--out", required=True, help="a new or empty folder for everything")
    parser.add_argument("--budget-minutes", type=float, required=True)
    parser.add_argument("--peer-python", default=PEER_PYTHON)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--limit-images", type=int, help="the first N labeled images only")
    parser.add_argument("--peer-batch", type=int, default=16, help="Ultralytics' batch size")
    parser.add_argument("--peer-workers", type=int, default=2)
    args = parser.parse_args(argv)

    from emdl.data import load_labeled_images
    from emdl.errors import EmdlError
    from emdl.io.labels import read_labels

    folder, out = Path(args.data_dir).resolve() / "loops111", Path(args.out).resolve()
    labels, images_dir = folder / "annotations.xml", folder / "images"
    try:
        if not labels.is_file():
            raise EmdlError(f"{labels}: not found (give --data-dir, the folder of loops111/)")
        if not Path(args.peer_python).is_file():
            raise EmdlError(f"{args.peer_python}: no such Python (see this script's docstring)")
        if args.budget_minutes <= 0:
            raise EmdlError(f"--budget-minutes {args.budget_minutes}: must be positive")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise EmdlError(f"{out}: exists and is not an empty folder; give a new --out")
        records, classes = load_labeled_images([labels], images_dir)
        training, validation = split_images(
            records, args.validation_fraction, args.seed, args.limit_images
        )
        annotations = read_labels(labels)
        training_xml = write_subset(annotations, [r.name for r in training], out / "training.xml")
        validation_xml = write_subset(
            annotations, [r.name for r in validation], out / "validation.xml"
        )
        data_yaml = write_yolo_dataset(
            {"training": training_xml, "validation": validation_xml}, images_dir, out / "yolo"
        )
        budget = args.budget_minutes * 60
        print(f"emdl: training for {args.budget_minutes:g} min ...", flush=True)
        mine, config = run_emdl(
            training_xml, validation_xml, images_dir, out / "emdl", budget, args.seed
        )
        print(f"Ultralytics YOLOv8n: training for {args.budget_minutes:g} min ...", flush=True)
        peer, boxes_json = run_peer(
            args.peer_python,
            data_yaml,
            validation,
            out / "peer",
            budget,
            args.seed,
            args.peer_batch,
            args.peer_workers,
        )
        found = read_peer_boxes(boxes_json, [r.name for r in validation], classes)
        peer.update(_scores(score_peer(validation, found, classes, config)))
    except (EmdlError, ValueError) as exc:
        print(f"detector_vs_ultralytics: {exc}", file=sys.stderr)
        return 1

    rows = {"emdl yolo_loops": mine, f"Ultralytics {peer['version']} YOLOv8n": peer}
    print(
        f"{os.cpu_count()} CPU cores, budget {args.budget_minutes:g} min each, seed {args.seed}; "
        f"{len(training)} training images, {len(validation)} validation images "
        f"({mine['objects']} objects), scored whole by emdl's metrics"
    )
    print(table(rows))
    results = {
        "budget_minutes": args.budget_minutes,
        "seed": args.seed,
        "cpu_count": os.cpu_count(),
        "training_images": len(training),
        "validation_images": [r.name for r in validation],
        "rows": rows,
        "ratios_emdl_to_peer": ratios(mine, peer),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
