"""One validated configuration per run, stored as the run's ``config.json``.

A config file for ``emdl train`` is JSON with the sections below; paths in it (the data's and
``training.pretrained``) are relative to the file. Unknown keys are refused, so a typo does not
silently fall back to a default::

    {
      "data": {"labels": ["labels.xml"], "images": "images", "validation_fraction": 0.5},
      "augmentation": {"rotate": {"probability": 0.5}},
      "model": {"depth": 4, "filters": 16},
      "loss": {"cross_entropy": 1.0, "dice": 1.0},
      "training": {"epochs": 30, "steps_per_epoch": 50}
    }
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from emdl.data.augment import Augmentation
from emdl.errors import InputError
from emdl.io.checks import label_problem
from emdl.rasterize import check_line_width
from emdl.settings import check_value, from_known_fields
from emdl.train.kinds import model_kind


@dataclass(frozen=True)
class DataConfig:
    """Which labeled images, how they are split and cropped.

    ``labels``: CVAT XML or COCO JSON files; ``images``: their folder, or a list of folders
    searched all (an image in two is an error); ``missing``: "error" or "skip" for labeled
    images in none of them. ``validation_fraction`` of the images (by image)
    are held out, or ``validation_labels`` name the validation images explicitly. ``window`` and
    ``stride`` are the crop size and the validation windows' spacing in pixels; ``batch_size`` is
    per replica (the global batch is ``batch_size x replicas``).
    """

    labels: tuple[str, ...]
    images: str | tuple[str, ...]
    validation_fraction: float = 0.0
    validation_labels: tuple[str, ...] = ()
    missing: str = "error"
    window: int = 256
    stride: int = 128
    batch_size: int = 8
    empty_crops: str | float = "keep"
    line_width: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "validation_labels", tuple(self.validation_labels))
        if not isinstance(self.images, str):
            object.__setattr__(self, "images", tuple(self.images))
            if not self.images or not all(isinstance(f, str) for f in self.images):
                raise ValueError("data: images: expected a folder or a list of folders")
        if not self.labels:
            raise ValueError("data: no label files")
        if self.batch_size < 1:
            raise ValueError(f"data: batch_size must be at least 1, got {self.batch_size}")
        check_line_width(self.line_width, "data.line_width")


OPTIMIZERS = ("adamw", "sgd")  # training.optimizer's choices (:mod:`emdl.train.optimizer`)


@dataclass(frozen=True)
class TrainingConfig:
    """How long and how fast: ``epochs`` of ``steps_per_epoch`` batches or, with
    ``budget_minutes``, as many epochs as fit in that many minutes of training (``epochs`` then
    only caps them; :mod:`emdl.train.budget`); ``optimizer`` ("adamw", or "sgd": Nesterov
    momentum 0.937, as Ultralytics' SGD) at ``learning_rate`` after a linear warm-up
    over the first ``warmup_steps`` steps (0: none), with a cosine decay to
    ``final_learning_rate_fraction`` of it over the rest of the run (:mod:`emdl.train.optimizer`);
    with ``ema_momentum`` above 0 an exponential moving average of the weights is kept beside
    them and is what is validated, checkpointed and exported, training going on with the
    trained weights (off by default);
    ``early_stopping_patience`` epochs without a better ``monitor`` stop the run (0: never);
    ``monitor`` (None: the model kind's own, "val_iou" or "val_loss") also picks the best
    checkpoint, lower being better for a loss and higher for anything else.
    ``mixed_precision``: true, false or "auto" (on when training on GPUs, where float16 maths
    is fast; on a CPU it is slower than float32). ``pretrained``: a run directory, ``.keras``
    or ``.weights.h5`` file whose compatible weights start the run
    (:mod:`emdl.train.pretrained`); None: from initialisation."""

    epochs: int = 30
    steps_per_epoch: int = 50
    learning_rate: float = 1e-3
    final_learning_rate_fraction: float = 0.05
    weight_decay: float = 1e-4
    ema_momentum: float = 0.0
    early_stopping_patience: int = 0
    monitor: str | None = None
    seed: int = 0
    mixed_precision: bool | str = "auto"
    pretrained: str | None = None
    budget_minutes: float | None = None
    warmup_steps: int = 0
    optimizer: str = "adamw"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"training.optimizer: expected one of {', '.join(map(json.dumps, OPTIMIZERS))}, "
                f"got {json.dumps(self.optimizer)}"
            )
        if self.pretrained is not None and not (
            isinstance(self.pretrained, str) and self.pretrained.strip()
        ):
            raise ValueError(
                "training.pretrained: expected the path of a run directory or a .keras or "
                f".weights.h5 file, got {json.dumps(self.pretrained)}"
            )
        if not (isinstance(self.mixed_precision, bool) or self.mixed_precision == "auto"):
            raise ValueError(
                'training.mixed_precision: expected true, false or "auto", '
                f"got {json.dumps(self.mixed_precision)}"
            )
        if self.epochs < 1 or self.steps_per_epoch < 1:
            raise ValueError("training: epochs and steps_per_epoch must be at least 1")
        if self.early_stopping_patience < 0:
            raise ValueError(
                "training.early_stopping_patience: expected an integer >= 0 (0: never stop "
                f"early), got {self.early_stopping_patience}"
            )
        if self.learning_rate <= 0:
            raise ValueError(f"training: learning_rate must be positive, got {self.learning_rate}")
        if not 0 <= self.ema_momentum < 1:
            raise ValueError(f"training: ema_momentum must be in [0, 1), got {self.ema_momentum}")
        if self.budget_minutes is not None and not 0 < self.budget_minutes < math.inf:
            raise ValueError(
                "training.budget_minutes: expected a positive number of minutes (null: train "
                f"for the epochs given), got {json.dumps(self.budget_minutes)}"
            )
        steps = self.epochs * self.steps_per_epoch
        if not 0 <= self.warmup_steps < steps:
            raise ValueError(
                f"training.warmup_steps: expected 0 to {steps - 1} (fewer than the run's epochs x "
                f"steps_per_epoch = {steps} steps), got {self.warmup_steps}"
            )


@dataclass(frozen=True)
class RunConfig:
    """A whole run: the model ``kind`` (a name in :data:`emdl.train.kinds.KINDS`: "unet",
    "yolo", "maskrcnn"), data, augmentation (as :meth:`Augmentation.to_dict`), model, loss terms
    and training. ``classes`` are filled in from the labels when the run starts. Left out,
    ``model``, ``loss`` and the training ``monitor`` take the kind's defaults."""

    data: DataConfig
    kind: str = "unet"
    augmentation: dict = field(default_factory=lambda: Augmentation.default().to_dict())
    model: Any = None  # the kind's config_class
    loss: dict | None = None
    training: TrainingConfig = field(default_factory=TrainingConfig)
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        kind = model_kind(self.kind)
        model_class = kind.config_class
        Augmentation.from_dict(self.augmentation)  # refuse bad settings now, not mid-run
        if self.model is None:
            object.__setattr__(self, "model", model_class())
        if not isinstance(self.model, model_class):
            raise ValueError(f"model: a {self.kind} run needs a {model_class.__name__}")
        if self.loss is None:
            object.__setattr__(self, "loss", dict(kind.default_loss))
        terms = kind.loss_terms
        for term, weight in (self.loss or {}).items():
            check_value(weight, float, f"loss.{term}")
            if weight < 0:
                raise ValueError(f"loss.{term}: expected a weight >= 0, got {weight}")
        if not self.loss or set(self.loss) - set(terms):
            raise ValueError(f"loss: terms must be among {terms}, got {sorted(self.loss)}")
        if self.training.monitor is None:
            training = TrainingConfig(**{**asdict(self.training), "monitor": kind.monitor})
            object.__setattr__(self, "training", training)
        object.__setattr__(self, "classes", tuple(self.classes))
        if self.classes:
            self._check_classes(kind)

    def _check_classes(self, kind) -> None:
        """A run's class names (filled in when it started) must be distinct label names, as many
        as its model predicts: otherwise defects would be named wrongly."""
        for index, name in enumerate(self.classes):
            check_value(name, str, f"classes[{index}]")
            problem = label_problem(name) if name.strip() else "a class name is empty"
            if problem:
                raise ValueError(f"classes[{index}]: {problem}")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes: a name repeats in {list(self.classes)}")
        if not self.model.classes:
            return  # 0: to be filled in from the labels when the run starts
        try:
            matches = kind.model_config(self.model, self.classes) == self.model
        except ValueError:
            matches = False
        if not matches:
            raise ValueError(
                f"classes: {len(self.classes)} names {list(self.classes)}, but the model section "
                f"predicts {self.model.classes} classes"
            )

    def to_dict(self) -> dict:
        values = asdict(self)
        values["data"]["labels"] = list(self.data.labels)
        values["data"]["validation_labels"] = list(self.data.validation_labels)
        values["classes"] = list(self.classes)
        return values

    def with_model(self, **changes) -> RunConfig:
        """This config with the model section's ``changes`` (e.g. ``tta=True``)."""
        return replace(self, model=replace(self.model, **changes))

    @property
    def model_kind(self):
        """The :class:`~emdl.train.kinds.base.ModelKind` of this run."""
        return model_kind(self.kind)

    @classmethod
    def from_dict(cls, values: dict) -> RunConfig:
        values = dict(values)
        if "data" not in values:
            raise ValueError("no 'data' section")
        known = {f.name for f in fields(cls)}
        if set(values) - known:
            raise ValueError(
                f"unknown section(s) {sorted(set(values) - known)}; known: {sorted(known)}"
            )
        values["data"] = from_known_fields(DataConfig, values["data"], "data")
        kind = model_kind(values.get("kind", "unet"))
        if "model" in values:
            values["model"] = kind.config_class.from_dict(values["model"])
        if "training" in values:
            values["training"] = from_known_fields(TrainingConfig, values["training"], "training")
        return cls(**values)

    def save(self, path: str | os.PathLike) -> None:
        """Write the config as JSON with absolute label and image paths, so that
        ``emdl train RUN_DIR/config.json`` works from any directory."""
        values = self.to_dict()
        data = values["data"]
        for key in ("labels", "validation_labels"):
            data[key] = [os.path.abspath(name) for name in data[key]]
        data["images"] = _each_folder(data["images"], os.path.abspath)
        if values["training"]["pretrained"] is not None:
            values["training"]["pretrained"] = os.path.abspath(values["training"]["pretrained"])
        Path(path).write_text(json.dumps(values, indent=2) + "\n")


def _each_folder(images, where):
    """``images`` (a folder or a list of folders; anything else is left for the checks to
    name) with ``where`` applied to each folder."""
    if isinstance(images, str):
        return where(images)
    if isinstance(images, list | tuple) and all(isinstance(f, str) for f in images):
        return [where(f) for f in images]
    return images


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a run's JSON config; label and image paths become relative to the file's folder.

    Raises InputError naming the file for bad JSON or bad settings.
    """
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(path, exc.strerror or "cannot be read") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not JSON: {exc.msg}", exc.lineno) from None
    try:
        data = values.get("data", {}) if isinstance(values, dict) else None
        if not isinstance(data, dict):
            raise ValueError("not a run configuration (a JSON object with a 'data' section)")
        base = path.parent
        for key in ("labels", "validation_labels"):
            if key in data:
                names = [data[key]] if isinstance(data[key], str) else data[key]
                data[key] = [str(base / name) for name in names]
        if "images" in data:
            data["images"] = _each_folder(data["images"], lambda name: str(base / name))
        training = values.get("training")
        pretrained = training.get("pretrained") if isinstance(training, dict) else None
        if isinstance(pretrained, str) and pretrained.strip():
            training["pretrained"] = str(base / pretrained)
        return RunConfig.from_dict(values)
    except (TypeError, ValueError) as exc:
        raise InputError(path, str(exc)) from None
