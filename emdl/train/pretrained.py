"""Starting a run from the compatible weights of another: ``training.pretrained``.

The source is a run directory (its ``config.json`` and ``best.weights.h5``, else its
``model.keras``), a whole model saved as ``.keras``, or a ``.weights.h5`` file. The weights are
copied layer by layer: a layer of the new model takes the weights of the source's layer of the
same name when each of its weight arrays has the shape of the source's; every other layer keeps
its initialisation (e.g. a U-Net's output layer when the number of classes differs). Names are
used rather than Keras' own matching, which goes by each layer's position among the layers of
its class, so that a model of another depth takes nothing that only happens to have a fitting
shape. A ``.weights.h5`` file without a ``config.json`` beside it names no layers: it goes to
Keras' ``load_weights(skip_mismatch=True)``, which skips the layers whose shapes differ and is
right only for the same architecture.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from emdl.errors import InputError
from emdl.train.backup import BACKUP, BACKUP_WEIGHTS
from emdl.train.callbacks import BEST_WEIGHTS
from emdl.train.config import RunConfig

log = logging.getLogger(__name__)
KEY = "training.pretrained"
MODEL_FILE = "model.keras"  # a run's best model whole (emdl.train.run.MODEL_FILE)
WEIGHTS_SUFFIX = ".weights.h5"


@dataclass(frozen=True)
class Transfer:
    """Which layers of the new model (those that have weights) took pretrained weights and
    which kept their initialisation, by name."""

    loaded: tuple[str, ...]
    kept: tuple[str, ...]

    def summary(self, source: str | os.PathLike) -> str:
        """``pretrained weights from RUN: 41 layers took them, 1 kept its initialisation
        (probabilities)``."""
        kept = f"{len(self.kept)} kept {'its' if len(self.kept) == 1 else 'their'} initialisation"
        if self.kept:
            shown = ", ".join(self.kept[:4]) + (", ..." if len(self.kept) > 4 else "")
            kept += f" ({shown})"
        return f"pretrained weights from {source}: {len(self.loaded)} layers took them, {kept}"


def start_from_pretrained(
    model: keras.Model, config: RunConfig, state_dir: Path, *, trained: bool
) -> Transfer | None:
    """Load ``config.training.pretrained`` into the freshly built ``model`` of a run whose
    state is in ``state_dir`` (:func:`load_pretrained`), and log one line of what took.

    Nothing happens (None) without ``training.pretrained``, or when the run resumes: after its
    training ended (``trained``), or from a backup (``state_dir/backup/``), whose restored
    weights must stay.

    Raises:
        InputError: the path is not there, or is not a run directory or Keras file.
    """
    source = config.training.pretrained
    if source is None:
        return None
    if trained or (state_dir / BACKUP / BACKUP_WEIGHTS).is_file():
        log.info(f"resuming: the run's own weights stay ({KEY} is not loaded again)")
        return None
    transfer = load_pretrained(model, source)
    log.info(transfer.summary(source))
    return transfer


def load_pretrained(model: keras.Model, source: str | os.PathLike) -> Transfer:
    """Copy into ``model`` the weights of the layers of ``source`` (a run directory, ``.keras``
    or ``.weights.h5`` file) that have the same names and shapes (see the module).

    Raises:
        InputError: naming ``source`` (key ``training.pretrained``) when it is not there, is not
            a run directory or Keras file, or cannot be read.
    """
    path = Path(source)
    if not path.exists():
        raise InputError(path, f"{KEY}: no such run directory or file")
    if path.is_dir():
        if (path / "config.json").is_file() and (path / BEST_WEIGHTS).is_file():
            return copy_matching(model, run_model(path / "config.json", path / BEST_WEIGHTS))
        if (path / MODEL_FILE).is_file():
            return copy_matching(model, whole_model(path / MODEL_FILE))
        raise InputError(
            path,
            f"{KEY}: not a run directory (no {BEST_WEIGHTS} with config.json, no {MODEL_FILE})",
        )
    if path.name.endswith(".keras"):
        return copy_matching(model, whole_model(path))
    if path.name.endswith(WEIGHTS_SUFFIX):
        if (path.parent / "config.json").is_file():
            return copy_matching(model, run_model(path.parent / "config.json", path))
        return keras_matching(model, path)
    raise InputError(path, f"{KEY}: not a run directory, .keras or {WEIGHTS_SUFFIX} file")


def run_model(config_path: Path, weights: Path) -> keras.Model:
    """The model of a run's ``config.json`` with the ``weights`` file loaded."""
    try:
        config = RunConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        model = config.model_kind.build(config, compiled=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # keras warns per layer before it raises
            model.load_weights(weights)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _unreadable(weights, exc) from None
    return model


def whole_model(path: Path) -> keras.Model:
    """The model saved whole in ``path``, uncompiled (emdl's classes registered first)."""
    from emdl.train.kinds import KINDS, model_kind

    for name in KINDS:  # each kind's module registers the layers its models use
        model_kind(name)
    try:
        return keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _unreadable(path, exc) from None


def copy_matching(model: keras.Model, source: keras.Model) -> Transfer:
    """Give each layer of ``model`` that has weights those of ``source``'s layer of the same
    name when all their shapes agree; the rest keep theirs."""
    found = {layer.name: layer for layer in source.layers}
    loaded, kept = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        other = found.get(layer.name)
        if other is not None and _shapes(other) == _shapes(layer):
            layer.set_weights(other.get_weights())
            loaded.append(layer.name)
        else:
            kept.append(layer.name)
    return Transfer(tuple(loaded), tuple(kept))


def keras_matching(model: keras.Model, path: Path) -> Transfer:
    """Keras' ``load_weights(path, skip_mismatch=True)``. Every layer's weights are NaN while it
    loads, so that a layer took weights exactly when none is NaN after it (equal values would
    not tell: a fresh batch norm is the same in any model); the others, and any layer Keras
    filled only in part, get their initial weights back."""
    before = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    for layer in model.layers:
        if layer.name in before:
            layer.set_weights([np.full_like(array, np.nan) for array in before[layer.name]])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one warning per skipped layer; counted below
            model.load_weights(path, skip_mismatch=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        for layer in model.layers:
            if layer.name in before:
                layer.set_weights(before[layer.name])
        raise _unreadable(path, exc) from None
    loaded, kept = [], []
    for layer in model.layers:
        if layer.name not in before:
            continue
        if any(np.isnan(array).any() for array in layer.get_weights()):
            layer.set_weights(before[layer.name])
            kept.append(layer.name)
        else:
            loaded.append(layer.name)
    return Transfer(tuple(loaded), tuple(kept))


def _shapes(layer: keras.layers.Layer) -> list[tuple[int, ...]]:
    return [tuple(weight.shape) for weight in layer.weights]


def _unreadable(path: Path, error: BaseException) -> InputError:
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return InputError(path, f"{KEY}: cannot be read ({reason})")
