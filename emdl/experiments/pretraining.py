"""Pretraining on synthetic bubbles against training from scratch, in one experiment.

In ``OUT/``: ``synthetic/`` (emdl.synth's bubble preset, :func:`bubbles.synthetic_data`),
``pretrain/`` (the ``unet_bubbles`` U-Net trained on them, a few held out to pick its best
epoch), ``pretrained/`` (that U-Net fine-tuned on the lecture's images, ``training.pretrained``
pointing at ``pretrain/``), ``scratch/`` (the same run from initialisation: same data, split,
seed, augmentation, learning rate and budget) and ``metrics.json``. Both are scored on the
lecture's test pair when the data folder has it, else on the training image the unet_bubbles
experiment holds out (:func:`emdl.experiments.unet_bubbles.default_config`).

Scores: ``iou``, the foreground IoU of the whole image predicted in tiles, and ``count_error``,
the mean over the scored images of ``|detected - true|`` bubbles, detected being the U-Net's
instances at its default threshold (0.5, no smallest size) and true the labeled polygons (or
the test label's connected components: bubbles that touch there count as one).
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from emdl.experiments import bubbles, unet_bubbles

ARMS = ("pretrained", "scratch")
SYNTHETIC = "synthetic"
PRETRAIN = "pretrain"
PRETRAIN_HELD_OUT = 4  # synthetic images that pick the pretraining's best epoch


@dataclass(frozen=True)
class Budget:
    """The experiment's size: ``count`` synthetic ``size x size`` images, ``pretrain_epochs``
    on them and ``epochs`` of fine-tuning (and of training from scratch), each epoch
    ``steps_per_epoch`` batches; ``model`` and ``window`` replace the unet_bubbles U-Net and
    its 256-pixel crops (for tiny runs)."""

    count: int = 48
    size: int = 512
    pretrain_epochs: int = 12
    epochs: int = 10
    steps_per_epoch: int = 30
    model: object = None  # a UNetConfig
    window: int | None = None


def fine_tune_config(
    folder: Path, budget: Budget, *, hold_out: bool, pretrained: str | None = None
):
    """The unet_bubbles run on the lecture's images at ``budget``, from ``pretrained``."""
    config = unet_bubbles.default_config(
        folder, epochs=budget.epochs, steps_per_epoch=budget.steps_per_epoch, hold_out=hold_out
    )
    config = _sized(config, budget)
    training = dataclasses.replace(config.training, pretrained=pretrained)
    return dataclasses.replace(config, training=training)


def pretrain_config(labels: Path, images: Path, budget: Budget):
    """The unet_bubbles run on the synthetic images, :data:`PRETRAIN_HELD_OUT` of them held
    out, for ``budget.pretrain_epochs``."""
    config = unet_bubbles.default_config(
        images,
        epochs=budget.pretrain_epochs,
        steps_per_epoch=budget.steps_per_epoch,
        hold_out=True,
    )
    held_out = min(PRETRAIN_HELD_OUT / budget.count, 0.5)
    data = dataclasses.replace(
        config.data, labels=(str(labels),), images=str(images), validation_fraction=held_out
    )
    return _sized(dataclasses.replace(config, data=data), budget)


def _sized(config, budget: Budget):
    if budget.model is not None:
        config = dataclasses.replace(config, model=budget.model)
    if budget.window is not None:
        data = dataclasses.replace(config.data, window=budget.window, stride=budget.window)
        config = dataclasses.replace(config, data=data)
    return config


def compare(
    folder: Path,
    pair: tuple[Path, Path] | None,
    out: str | Path,
    budget: Budget = Budget(),
    *,
    overwrite: bool = False,
) -> dict:
    """Run the experiment (see the module) in ``out`` on the lecture's data in ``folder`` (test
    pair ``pair`` or None) and write ``out/metrics.json``: ``pretrained`` and ``scratch``, each
    ``{"iou", "count_error", "evaluated_on", "dice", "objects", "detected", "run"}``, and
    ``pretrain`` (the pretraining's own IoU on its held-out synthetic images) and ``budget``.
    A run already finished in ``out`` is reused, an interrupted one resumes; ``overwrite``
    trains them all again (the synthetic images stay: the same seed makes the same).

    A run that fails with an EmdlError prints it in one line and exits with status 1
    (:func:`bubbles.train`).

    Raises:
        EmdlError: ``out`` holds a finished experiment (``metrics.json``) and not
            ``overwrite``, or a finished run there was trained with other settings.
    """
    from emdl.errors import InputError

    out = Path(out)
    if (out / "metrics.json").is_file() and not overwrite:
        raise InputError(
            out, "holds a finished experiment; give --overwrite to run it again or another --out"
        )
    labels, images = bubbles.synthetic_data(out, budget.count, budget.size, folder=SYNTHETIC)
    pretrain_run = out / PRETRAIN
    pretrain = _trained(pretrain_config(labels, images, budget), pretrain_run, overwrite)
    hold_out = pair is None
    configs = {
        "pretrained": fine_tune_config(
            folder, budget, hold_out=hold_out, pretrained=str(pretrain_run.resolve())
        ),
        "scratch": fine_tune_config(folder, budget, hold_out=hold_out),
    }
    metrics: dict = {}
    for arm in ARMS:
        config, model, _ = _trained(configs[arm], out / arm, overwrite)
        metrics[arm] = score(model, config, pair) | {"run": str(out / arm)}
    metrics["pretrain"] = {"iou": pretrain[2]["iou"], "evaluated_on": "synthetic validation"}
    metrics["budget"] = {
        key: value
        for key, value in dataclasses.asdict(budget).items()
        if key not in ("model", "window")
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _trained(config, run_dir: Path, overwrite: bool):
    """(config, model, metrics) of the run in ``run_dir``: trained now, or read back when it
    finished before (unless ``overwrite``)."""
    from emdl.errors import EmdlError
    from emdl.train.config import RunConfig
    from emdl.train.run import load_run

    if (run_dir / "metrics.json").is_file() and not overwrite:
        stored = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        if _settings(stored) != _settings(config.to_dict()):
            raise EmdlError(
                f"{run_dir}: trained before with other settings than these; give --overwrite "
                "to train it again, or another --out"
            )
        print(f"{run_dir}: trained before; using it")
        _, model = load_run(run_dir)
        # The stored config, not load_run's calibrated one: a fresh run is scored with the
        # default post-processing, and the calibration was chosen on the very image scored.
        config = RunConfig.from_dict(stored)
        return config, model, json.loads((run_dir / "metrics.json").read_text())
    print(f"training {run_dir} ...", flush=True)
    result = bubbles.train(config, str(run_dir), overwrite=overwrite)
    return result.config, result.model, result.metrics


def _settings(values: dict) -> dict:
    """What makes two run configs (:meth:`RunConfig.to_dict`) the same run: all but the classes
    (filled in when a run starts), with absolute paths, as JSON has them."""
    values = json.loads(json.dumps(values))
    data, training = values["data"], values["training"]
    for key in ("labels", "validation_labels"):
        data[key] = [os.path.abspath(name) for name in data[key]]
    data["images"] = os.path.abspath(data["images"])
    if training["pretrained"] is not None:
        training["pretrained"] = os.path.abspath(training["pretrained"])
    values.pop("classes")
    values["model"].pop("classes", None)
    return values


def score(model, config, pair: tuple[Path, Path] | None) -> dict:
    """``iou``, ``dice``, ``count_error``, ``objects``, ``detected`` and ``evaluated_on`` of
    ``model`` on the test pair, else on the run's held-out images (its validation split)."""
    from emdl.metrics.evaluate import score_masks

    kind = config.model_kind
    threshold = kind.default_threshold(config, None)
    pairs, counts = [], []
    for name, image, truth, objects in _scored_images(config, pair):
        pairs.append((name, kind.predict(model, image, config), truth))
        found = kind.instances(model, image, config, threshold=threshold)
        counts.append((objects, len(found.classes)))
    masks = score_masks(pairs, list(config.classes))
    return {
        "iou": masks["iou"],
        "count_error": sum(abs(found - true) for true, found in counts) / len(counts),
        "evaluated_on": "test_image" if pair else "validation",
        "dice": masks["dice"],
        "objects": sum(true for true, _ in counts),
        "detected": sum(found for _, found in counts),
    }


def _scored_images(config, pair: tuple[Path, Path] | None):
    """``(name, image, truth mask, true count)`` of each image scored."""
    from skimage.measure import label

    from emdl.data import load_labeled_images
    from emdl.data.sources import split_by_image
    from emdl.io.image import read_image
    from emdl.train.kinds.base import object_counts

    if pair is not None:
        image_path, label_path = pair
        truth = (read_image(label_path) > 0.5).astype("uint8")
        yield image_path.name, read_image(image_path), truth, int(label(truth).max())
        return
    data = config.data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the four images Lab_2 names but the lecture lacks
        records, _ = load_labeled_images(data.labels, data.images, missing=data.missing)
    # The run's own split (emdl.train.run): the same images, the same seed.
    _, validation = split_by_image(records, data.validation_fraction, seed=config.training.seed)
    kind = config.model_kind
    counts = object_counts(validation, config.classes)
    for record, objects in zip(validation, counts, strict=True):
        truth = kind.truth(record.annotation, config.classes, config)
        yield record.name, read_image(record.path), truth, objects


def table(metrics: dict) -> str:
    """Both arms and their difference, e.g.::

    start                  IoU  count error  scored on
    pretrained           0.874         3.00  validation
    scratch              0.861         5.00  validation
    pretrained-scratch  +0.013        -2.00
    """
    rows = ["start                  IoU  count error  scored on"]
    for arm in ARMS:
        scores = metrics[arm]
        rows.append(
            f"{arm:<18} {scores['iou']:6.3f} {scores['count_error']:12.2f}  "
            f"{scores['evaluated_on']}"
        )
    iou = metrics["pretrained"]["iou"] - metrics["scratch"]["iou"]
    count = metrics["pretrained"]["count_error"] - metrics["scratch"]["count_error"]
    rows.append(f"{'pretrained-scratch':<18} {iou:+6.3f} {count:+12.2f}")
    return "\n".join(rows)
