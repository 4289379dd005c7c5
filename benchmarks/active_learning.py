"""Active learning: label the images `emdl rank` picks, or random ones? Both orders in one run.

    python benchmarks/active_learning.py [--data-dir DIR] [--out runs/active_learning]
        [--sets loops,bubbles] [--rounds 2] [--bubble-rounds 3] [--steps 300 100] [--batch 4]
        [--unet-steps 200 100] [--pool 32] [--seed 0]

Each data set starts from a few labeled images and adds ``K`` at a time, chosen either by
:func:`emdl.commands.rank.rank_run` (the library function of ``emdl rank``: the images whose
eight flips and quarter turns disagree most, with its diversity term, ranked by the model of
the round before) or at random (a ``numpy`` generator seeded with ``--seed``). The first
model, trained on the starting images, is the same for both orders; after each addition the
model of the round before is trained further ("retrained briefly": its weights, a fresh
optimizer, the same seed and number of steps) on all the labeled images so far, and scored on
a fixed held-out set.

- ``loops``: the detector of :func:`emdl.experiments.yolo_loops.detector_config` ("xs", from
  scratch, micrographs resized to 640 px, 320 px crops, batch ``--batch`` 4 instead of 8) on
  loops111. A fixed tenth of the images (``split_by_image``, seed 0: 27 images, 536 loops) is
  the validation split, scored by F1 at IoU 0.5 (at the F1-best score threshold on those
  images, as ``emdl train`` records it; the ranking predicts at that threshold too); the pool
  to label from is a fixed random subset of ``--pool`` 32 of the other 239 images (ranking all
  of them would cost 8 predictions each per round); start 8 images, ``K`` = 8, ``--rounds`` 2
  additions: 8, 16, 24 labeled images.
- ``bubbles``: the U-Net of :func:`emdl.experiments.unet_bubbles.default_config` with 128 px
  crops (instead of 256). The shared set has only two labeled 512 x 512 images, so the
  "images" to label are the 16 tiles of 128 x 128 px of ``DL_for_Microscopy_Train_Img_2.png``
  (70 bubbles; each tile written as a PNG with its bubble pixels as one mask shape, into
  ``OUT/bubble_tiles``) and the other image, ``Img_1`` (37 bubbles), is held out and scored by
  foreground IoU at threshold 0.5; start 2 tiles, ``K`` = 2, ``--bubble-rounds`` 3 additions:
  2, 4, 6, 8 labeled tiles.

The trainings are very short, so that the whole benchmark ends within about 40 minutes on 2
CPU cores shared with other jobs: the detector's first model 300 steps of 4 crops, then 100
more steps per addition (so 500 steps in all for the last model of each order); the U-Net's
first model 200 steps of 8 crops, then 100 more per addition; no validation during training,
no checkpoints. Such short trainings leave the models far from converged (the experiments
train the detector for 1200 steps of 8): the figures compare the two orders at this budget
only, on one seed.

Writes into ``--out``: ``results.json`` (every round's picks and score, the wall time),
``active_learning.png`` (score against labeled images, both orders, one panel per set) and the
rankings (``ranking_<set>_<round>.csv``); prints a Markdown table.
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ORDERS = ("rank", "random")


@dataclasses.dataclass
class Task:
    """One data set: the config, the pool to label from, the held-out records and the figure
    (a key of the kind's scores) it is scored by."""

    name: str
    config: object
    pool: list
    held_out: list
    classes: list[str]
    metric: str
    start: int
    step: int
    first_steps: int
    steps: int


class Ranker:
    """What :func:`emdl.commands.rank.rank_run` asks of a run: ``classes`` and ``predict``."""

    def __init__(self, model, config, threshold: float, min_area: float) -> None:
        self.model, self.config = model, config
        self.threshold, self.min_area = threshold, min_area
        self.classes = list(config.classes)

    def predict(self, image):
        return self.config.model_kind.instances(
            self.model, image, self.config, threshold=self.threshold, min_area=self.min_area
        )


def train_briefly(task: Task, labeled: list, steps: int, previous=None):
    """A model trained on ``labeled`` for ``steps`` steps, starting from the weights of
    ``previous`` (a model of the round before) when given, and its scores on the held-out
    records (the steps :func:`emdl.train.run.train_run` takes, without its checkpoints,
    exports and plots)."""
    import keras

    config = dataclasses.replace(
        task.config, training=dataclasses.replace(task.config.training, steps_per_epoch=steps)
    )
    kind = config.model_kind
    keras.utils.set_random_seed(config.training.seed)
    train_data, _, _ = kind.datasets(labeled, [], task.classes, config, config.data.batch_size)
    model = kind.build(config)
    if previous is not None:
        model.set_weights(previous.get_weights())
    model.fit(
        train_data,
        epochs=config.training.epochs,
        steps_per_epoch=config.training.steps_per_epoch,
        verbose=0,
    )
    return model, kind.evaluate(model, task.held_out, task.classes, config)


def with_classes(config, classes):
    return dataclasses.replace(
        config,
        model=config.model_kind.model_config(config.model, classes),
        classes=tuple(classes),
    )


def loops_task(folder: Path, steps: tuple[int, int], batch: int, pool_size: int, seed: int) -> Task:
    import numpy as np

    from emdl.data import load_labeled_images
    from emdl.data.sources import split_by_image
    from emdl.experiments.yolo_loops import detector_config

    labels, images = folder / "annotations.xml", folder / "images"
    config = detector_config(
        [str(labels)], str(images), epochs=1, steps_per_epoch=steps[1], longest_side=640
    )
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, batch_size=batch))
    records, classes = load_labeled_images(config.data.labels, images)
    rest, held_out = split_by_image(records, config.data.validation_fraction, seed=0)
    chosen = np.sort(np.random.default_rng(seed).permutation(len(rest))[:pool_size])
    pool = [rest[i] for i in chosen]
    config = with_classes(config, classes)
    return Task("loops", config, pool, held_out, classes, "f1_50", 8, 8, *steps)


def bubble_tiles(folder: Path, out: Path, grid: int) -> tuple[list, list, list[str]]:
    """``grid x grid`` tiles of the second bubble image as labeled records (PNG files in
    ``out``, each tile's bubble pixels as one mask shape), the first image's record and the
    classes."""
    import numpy as np
    from PIL import Image

    from emdl.annotations import ImageAnnotation, Mask
    from emdl.data import LabeledImage, load_labeled_images
    from emdl.errors import LabelWarning
    from emdl.experiments.unet_bubbles import LABELS
    from emdl.labels import semantic_mask

    with warnings.catch_warnings():
        # Lab_2 also labels four images the data set does not ship (see unet_bubbles).
        warnings.simplefilter("ignore", LabelWarning)
        records, classes = load_labeled_images(
            [str(folder / name) for name in LABELS], folder, missing="skip"
        )
    by_name = {r.name: r for r in records}
    held_out = by_name["DL_for_Microscopy_Train_Img_1.png"]
    source = by_name["DL_for_Microscopy_Train_Img_2.png"]
    pixels = np.asarray(Image.open(source.path).convert("L"))
    mask = semantic_mask(source.annotation, classes) > 0
    size = pixels.shape[0] // grid
    out.mkdir(parents=True, exist_ok=True)
    tiles = []
    for row in range(grid):
        for col in range(grid):
            window = np.s_[row * size : (row + 1) * size, col * size : (col + 1) * size]
            name = f"img2_r{row}c{col}.png"
            Image.fromarray(pixels[window]).save(out / name)
            shapes = [Mask.from_array(mask[window], label=classes[0])] if mask[window].any() else []
            tiles.append(LabeledImage(out / name, ImageAnnotation(name, size, size, shapes)))
    return tiles, [held_out], classes


def bubbles_task(folder: Path, out: Path, steps: tuple[int, int]) -> Task:
    from emdl.experiments.unet_bubbles import default_config

    pool, held_out, classes = bubble_tiles(folder, out / "bubble_tiles", 4)
    config = default_config(folder, epochs=1, steps_per_epoch=steps[1], hold_out=False)
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, window=128, stride=64)
    )
    config = with_classes(config, classes)
    return Task("bubbles", config, pool, held_out, classes, "iou", 2, 2, *steps)


def run_task(task: Task, rounds: int, seed: int, out: Path, log) -> dict:
    """Both orders on ``task``: per order the labeled counts and scores of each round."""
    import numpy as np

    from emdl.commands.rank import rank_run
    from emdl.train.calibration import MIN_AREA

    rng = np.random.default_rng(seed)
    first = list(rng.permutation(len(task.pool))[: task.start])
    start = time.perf_counter()
    model, metrics = train_briefly(task, [task.pool[i] for i in first], task.first_steps)
    log(
        f"{task.name}: {len(first)} labeled -> {task.metric} {metrics[task.metric]:.3f} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    results = {}
    for order in ORDERS:
        labeled, current, scores = list(first), (model, metrics), [metrics[task.metric]]
        counts = [len(first)]
        picks = [[task.pool[i].name for i in first]]
        for number in range(1, rounds + 1):
            remaining = [i for i in range(len(task.pool)) if i not in labeled]
            picked = time.perf_counter()
            if order == "random":
                chosen = [int(i) for i in rng.permutation(remaining)[: task.step]]
            else:
                threshold = current[1].get("score_threshold", 0.5)
                ranker = Ranker(current[0], task.config, threshold, MIN_AREA)
                ranked = rank_run(
                    ranker,
                    [task.pool[i].path for i in remaining],
                    out / f"ranking_{task.name}_{number}.csv",
                )
                by_name = {task.pool[i].path.name: i for i in remaining}
                chosen = [by_name[row["image"]] for row in ranked[: task.step]]
            labeled += chosen
            picks.append([task.pool[i].name for i in chosen])
            chosen_at = time.perf_counter()
            labeled_records = [task.pool[i] for i in labeled]
            current = train_briefly(task, labeled_records, task.steps, previous=current[0])
            scores.append(current[1][task.metric])
            counts.append(len(labeled))
            log(
                f"{task.name} {order}: {len(labeled)} labeled -> {task.metric} {scores[-1]:.3f} "
                f"(choosing {chosen_at - picked:.0f} s, training and scoring "
                f"{time.perf_counter() - chosen_at:.0f} s)"
            )
        results[order] = {"labeled": counts, task.metric: scores, "picks": picks}
    results["metric"] = task.metric
    results["held_out"] = [r.name for r in task.held_out]
    results["pool"] = len(task.pool)
    results["steps"] = {"first": task.first_steps, "each_round": task.steps}
    results["batch"] = task.config.data.batch_size
    results["seconds"] = time.perf_counter() - start
    return results


def table(results: dict) -> str:
    lines = ["| set | labeled | " + " | ".join(ORDERS) + " |", "|---|---|---|---|"]
    for name, found in results.items():
        metric = found["metric"]
        for k, count in enumerate(found["rank"]["labeled"]):
            cells = " | ".join(f"{found[order][metric][k]:.3f}" for order in ORDERS)
            lines.append(f"| {name} ({metric}) | {count} | {cells} |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3), squeeze=False)
    for axis, (name, found) in zip(axes[0], results.items(), strict=True):
        metric = found["metric"]
        for order, style in zip(ORDERS, ("o-", "s--"), strict=True):
            axis.plot(found[order]["labeled"], found[order][metric], style, label=order)
        unit = "tiles" if name == "bubbles" else "images"
        axis.set(title=name, xlabel=f"labeled {unit}", ylabel=metric.replace("_50", " @ IoU 0.5"))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with loops111/ and bubbles/ ($EMDL_DATA_DIR)")
    parser.add_argument("--out", default="runs/active_learning")
    parser.add_argument("--sets", default="loops,bubbles")
    parser.add_argument("--rounds", type=int, default=2, help="loops111: additions of K images")
    parser.add_argument(
        "--bubble-rounds", type=int, default=3, help="bubbles: additions of K tiles"
    )
    parser.add_argument(
        "--steps",
        type=int,
        nargs=2,
        default=(300, 100),
        metavar=("FIRST", "EACH"),
        help="detector training steps: of the first model, and added in each round",
    )
    parser.add_argument("--batch", type=int, default=4, help="detector batch size")
    parser.add_argument(
        "--unet-steps",
        type=int,
        nargs=2,
        default=(200, 100),
        metavar=("FIRST", "EACH"),
        help="U-Net training steps: of the first model, and added in each round",
    )
    parser.add_argument("--pool", type=int, default=32, help="loops111 images to label from")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = Path(args.data_dir or os.environ.get("EMDL_DATA_DIR", "data"))
    out = Path(args.out)
    if (out / "results.json").exists():
        print(f"active_learning: {out / 'results.json'} exists; give another --out")
        return 1
    out.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)

    start = time.perf_counter()
    results = {}
    for name in args.sets.split(","):
        if name == "loops":
            task = loops_task(data / "loops111", args.steps, args.batch, args.pool, args.seed)
        elif name == "bubbles":
            task = bubbles_task(data / "bubbles", out, args.unet_steps)
        else:
            parser.error(f"unknown set {name!r} (loops, bubbles)")
        rounds = args.rounds if name == "loops" else args.bubble_rounds
        results[name] = run_task(task, rounds, args.seed, out, log)
    results_path = out / "results.json"
    wall = time.perf_counter() - start
    results_path.write_text(json.dumps({"wall_seconds": wall, **results}, indent=2) + "\n")
    plot(results, out / "active_learning.png")
    print(table(results))
    print(f"wall time {wall / 60:.1f} min -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
