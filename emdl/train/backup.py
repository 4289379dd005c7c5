"""The training state a run keeps on disk: its best weights and its backup (``backup/``, from
which an interrupted run resumes), written whole or not at all, and checked before a restart
uses them.

Keras writes both files in place, so a full disk or a kill while saving leaves a truncated file
under the final name and every later restart fails; here each is written under a temporary name
and renamed over the last good one (:mod:`emdl.io.atomic`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import keras

from emdl.errors import EmdlError, InputError
from emdl.io.atomic import atomic_path, write_text
from emdl.train.config import RunConfig

log = logging.getLogger(__name__)

BACKUP = "backup"
BACKUP_WEIGHTS = "latest.weights.h5"  # Keras' names inside backup/
BACKUP_STATE = "training_metadata.json"


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore (every epoch), each save replacing the last good one whole:
    the weights first, then the epoch count (so that a crash between the two repeats an epoch
    rather than skipping one)."""

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        with atomic_path(self._weights_path) as temporary:
            self.model.save_weights(filepath=str(temporary), overwrite=True)
        state = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        write_text(self._training_metadata_path, json.dumps(state))


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keras' ModelCheckpoint of weights only, each save replacing the last whole. With
    ``unusable`` (the epoch's logs -> why it cannot be the best, or ""), such epochs are passed
    over; if every epoch of a run was, the last one's weights are written at the end, so that
    the run has weights to go on with."""

    def __init__(self, *args, unusable: Callable[[dict], str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.unusable = unusable

    def _should_save_model(self, epoch, batch, logs, filepath):
        why = self.unusable(logs or {}) if self.unusable else ""
        if why:
            log.info("epoch %d: not a best checkpoint, as %s", epoch + 1, why)
            return False
        return super()._should_save_model(epoch, batch, logs, filepath)

    def on_train_end(self, logs=None):
        path = self._get_file_path(0, None, logs or {})
        if self.unusable and not os.path.exists(path):
            log.info("no epoch could be a best checkpoint; keeping the last epoch's weights")
            self._write(path)

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        self._write(filepath)

    def _write(self, filepath: str) -> None:
        os.makedirs(os.path.dirname(filepath) or ".", exist_ok=True)
        with atomic_path(filepath) as temporary:
            if self.save_weights_only:
                self.model.save_weights(str(temporary), overwrite=True)
            else:
                self.model.save(str(temporary), overwrite=True)


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` says the disk is full (h5py's errors carry errno 28 only in the text)."""
    return isinstance(error, OSError) and (
        error.errno == errno.ENOSPC
        or "No space left on device" in str(error)
        or "errno = 28," in str(error)
    )


@contextlib.contextmanager
def disk_full_is_one_line(run_dir: Path) -> Iterator[None]:
    """Turns a full disk (:func:`is_disk_full`) inside the block into one EmdlError naming
    ``run_dir``, the file being written and the fix."""
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        where = f" while writing {exc.filename}" if exc.filename else ""
        raise EmdlError(
            f"{run_dir}: no space left on the device{where}; free some space and run the same "
            "command again to resume from the last good backup"
        ) from None


def check_restart(
    run_dir: Path, state_dir: Path, config: RunConfig, weights: str, *, trained: bool
) -> None:
    """Before a run restarts in ``run_dir`` (its state in ``state_dir``: the run directory, or a
    worker's ``worker_tmp/``): the backup and the best weights (file name ``weights``) it finds
    can be read, and fit the model of ``config``. The backup is not checked when ``trained``
    (training ended; the later stages use the best weights only). Nothing to check: returns.

    Raises:
        InputError: naming the unreadable file or the weights that do not fit, and the fix.
    """
    backup = state_dir / BACKUP
    found = [state_dir / weights]
    if not trained:
        found.insert(0, backup / BACKUP_WEIGHTS)
    found = [path for path in found if path.is_file()]
    if not trained and (backup / BACKUP_STATE).is_file():
        try:
            epoch = json.loads((backup / BACKUP_STATE).read_text(encoding="utf-8"))["epoch"]
            if not isinstance(epoch, int) or isinstance(epoch, bool):
                raise TypeError(f"epoch is {epoch!r}")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise _unreadable(backup / BACKUP_STATE, exc, trained) from None
    for path in found:
        try:
            with h5py.File(path, "r") as file:
                file.visit(lambda name: None)  # reads the whole index: a truncated file fails
        except OSError as exc:
            raise _unreadable(path, exc, trained) from None
    if not found:
        return
    model = config.model_kind.build(config, compiled=False)
    for path in found:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # keras warns per layer before it raises
                model.load_weights(path)
        except OSError as exc:  # an index that reads, data that do not
            raise _unreadable(path, exc, trained) from None
        except (ValueError, KeyError, TypeError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(
                path,
                f"does not fit the model of this config ({reason}); train it with the run's "
                f"own {run_dir / 'config.json'}, give --overwrite to start the run afresh, "
                "or another --out",
            ) from None


def _unreadable(path: Path, error: BaseException, trained: bool) -> InputError:
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if path.parent.name == BACKUP:
        fix = f"delete {path.parent} to train the run again from its first epoch, or "
    elif not trained and (path.parent / BACKUP).is_dir():
        fix = f"delete it to resume from {path.parent / BACKUP} (which writes it again), or "
    else:
        fix = ""
    return InputError(
        path,
        f"cannot be read ({reason}), left by an interrupted run; {fix}give --overwrite to "
        "start the run afresh",
    )
