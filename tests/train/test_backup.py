"""Runs that cannot lie: a restart checks the backup and weights it finds before it writes
config.json, a full disk ends in one line with the last good backup kept, Ctrl-C ends in one
line, and a training set that can yield no crop is refused before training."""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import keras
import pytest

from emdl.cli import main
from emdl.errors import InputError
from emdl.io.atomic import TEMPORARY_PREFIX
from emdl.train.backup import AtomicModelCheckpoint, check_restart, is_disk_full
from emdl.train.run import train_run
from tests.conftest import REPO, box_image, box_xml, tiny_config


@pytest.fixture
def folder(labeled_folder):
    """Two labeled 64 x 64 images: one for training, one for validation."""
    return labeled_folder(
        {
            "a.png": (box_image(64), box_xml("a.png", 64)),
            "b.png": (box_image(64), box_xml("b.png", 64)),
        }
    )


class Interrupt(keras.callbacks.Callback):
    """Ctrl-C at the end of epoch ``at`` (1-based), after the run's own callbacks saved it."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.at:
            raise KeyboardInterrupt


def interrupted_run(folder, run_dir: Path, epochs: int = 3) -> None:
    with pytest.raises(KeyboardInterrupt):
        train_run(tiny_config(*folder, epochs=epochs), run_dir, verbose=0, callbacks=[Interrupt(1)])


def write_config(config, path: Path) -> Path:
    config.save(path)
    return path


def test_disk_full_is_told_from_other_errors():
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError("Unable to write (file write failed: errno = 28, error message"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("No space left on device"))


def test_nothing_to_check_on_a_new_run(tmp_path):
    check_restart(tmp_path, tmp_path, None, "best.weights.h5", trained=False)


@pytest.mark.parametrize("damage", ["truncated", "state"])
def test_an_unreadable_backup_is_named_with_the_fix(tmp_path, damage):
    backup = tmp_path / "backup"
    backup.mkdir()
    if damage == "truncated":
        with h5py.File(backup / "latest.weights.h5", "w") as file:
            file.create_dataset("x", data=list(range(1000)))
        data = (backup / "latest.weights.h5").read_bytes()
        (backup / "latest.weights.h5").write_bytes(data[: len(data) // 2])
        bad = backup / "latest.weights.h5"
    else:
        (backup / "training_metadata.json").write_text('{"epoch": "1"}')
        bad = backup / "training_metadata.json"
    with pytest.raises(InputError) as error:
        check_restart(tmp_path, tmp_path, None, "best.weights.h5", trained=False)
    message = str(error.value)
    assert message.startswith(f"{bad}: cannot be read (")
    assert message.endswith(
        f"), left by an interrupted run; delete {backup} to train the run again from its first "
        "epoch, or give --overwrite to start the run afresh"
    )


@pytest.mark.slow
def test_a_restart_with_another_model_leaves_config_json_alone(capsys, folder, tmp_path):
    run_dir = tmp_path / "run"
    interrupted_run(folder, run_dir)
    stored = (run_dir / "config.json").read_bytes()
    config = tiny_config(*folder, epochs=3)
    changed = dataclasses.replace(config, model=dataclasses.replace(config.model, filters=8))
    path = write_config(changed, tmp_path / "changed.json")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert main(["train", str(path), "--out", str(run_dir)]) == 1
    err = capsys.readouterr().err
    backup = run_dir / "backup" / "latest.weights.h5"
    assert err.startswith(f"emdl: error: {backup}: does not fit the model of this config (")
    assert err.endswith(
        f"); train it with the run's own {run_dir / 'config.json'}, give --overwrite to start "
        "the run afresh, or another --out\n"
    )
    assert err.count("\n") == 1
    assert (run_dir / "config.json").read_bytes() == stored
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    # The run's own config resumes it where it stopped.
    assert main(["train", str(run_dir / "config.json"), "--out", str(run_dir)]) == 0
    with open(run_dir / "history.csv") as file:
        assert [line.split(",")[0] for line in file][1:] == ["0", "1", "2"]


@pytest.mark.slow
def test_a_full_disk_ends_in_one_line_and_keeps_the_last_backup(
    capsys, folder, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    path = write_config(tiny_config(*folder, epochs=3), tmp_path / "run.json")
    real = keras.Model.save_weights
    backups = []

    def save_weights(self, filepath, *args, **kwargs):
        if "latest.weights.h5" in str(filepath):
            backups.append(filepath)
            if len(backups) == 2:  # the backup of epoch 2: the disk fills half-way
                Path(filepath).write_bytes(b"\x89HDF\r\n\x1a\n half")
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    assert main(["train", str(path), "--out", str(run_dir)]) == 1
    assert capsys.readouterr().err == (
        f"emdl: error: {run_dir}: no space left on the device; free some space and run the same "
        "command again to resume from the last good backup\n"
    )
    backup = run_dir / "backup"
    assert sorted(os.listdir(backup)) == ["latest.weights.h5", "training_metadata.json"]
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1
    with h5py.File(backup / "latest.weights.h5", "r") as file:
        assert len(file.keys()) > 0
    assert not any(p.name.startswith(TEMPORARY_PREFIX) for p in run_dir.rglob("*"))
    # Space again: the same command resumes at epoch 2 and finishes.
    monkeypatch.setattr(keras.Model, "save_weights", real)
    assert main(["train", str(path), "--out", str(run_dir)]) == 0
    with open(run_dir / "history.csv") as file:
        assert [line.split(",")[0] for line in file][1:] == ["0", "1", "2"]


@pytest.mark.slow
def test_ctrl_c_in_training_ends_in_one_line_and_keeps_the_backup(folder, tmp_path):
    run_dir = tmp_path / "run"
    path = write_config(tiny_config(*folder, epochs=200), tmp_path / "run.json")
    command = [sys.executable, "-m", "emdl.cli", "train", str(path), "--out", str(run_dir)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # A command started in the background of a script (as CI may be) ignores SIGINT, children
    # inherit that, and Python then leaves SIGINT ignored: the run would rightly not stop. A
    # terminal's foreground command starts with SIGINT at its default; a handled signal is reset
    # to the default across exec, so this gives the child that.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 120
    while not (run_dir / "backup" / "training_metadata.json").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.splitlines()[-1] == "emdl: interrupted; run the same command again to resume"
    assert "Traceback" not in err
    assert not (run_dir / "metrics.json").exists()
    assert (run_dir / "backup" / "latest.weights.h5").is_file()


def test_ctrl_c_in_another_command_is_one_line(capsys, monkeypatch, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("emdl.commands.convert.convert_labels", interrupted)
    status = main(["convert", str(tmp_path / "a.xml"), "--to", "coco", "--out", str(tmp_path)])
    assert (status, capsys.readouterr().err) == (130, "emdl: interrupted\n")


def test_no_objects_with_empty_crops_dropped_is_refused_before_training(
    capsys, labeled_folder, tmp_path
):
    empty = '<image id="0" name="{0}" width="64" height="64"></image>'
    labels, images = labeled_folder(
        {name: (box_image(64), empty.format(name)) for name in ("a.png", "b.png")}
    )
    config = tiny_config(labels, images)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, empty_crops="drop"))
    run_dir = tmp_path / "run"
    assert (
        main(["train", str(write_config(config, tmp_path / "run.json")), "--out", str(run_dir)])
        == 1
    )
    assert capsys.readouterr().err == (
        "emdl: error: empty_crops is 'drop' but none of the 1 training images ('b.png') has an "
        "object of the classes ['bubble', 'loop']: no training crop can be made; label objects, "
        "or keep some empty crops (empty_crops 'keep' or a rate above 0)\n"
    )
    assert os.listdir(run_dir) == []  # not even config.json


def read_bias(path: Path) -> float:
    """The bias of the one-unit Dense layer saved in ``path``."""
    with h5py.File(path) as file:
        return float(file["layers/dense/vars/1"][0])


def test_an_unusable_epoch_is_no_best_checkpoint_however_low_its_loss(tmp_path, caplog):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = tmp_path / "best.weights.h5"
    why = {0.001: "it detects nothing"}  # by the epoch's loss
    checkpoint = AtomicModelCheckpoint(
        str(path), monitor="val_loss", save_best_only=True, save_weights_only=True,
        unusable=lambda logs: why.get(logs["val_loss"], ""),
    )  # fmt: skip
    checkpoint.set_model(model)
    saved = []
    with caplog.at_level(logging.INFO, logger="emdl.train.backup"):
        for epoch, loss in enumerate([0.001, 4.0, 5.0]):
            model.layers[0].bias.assign([float(epoch)])
            checkpoint.on_epoch_end(epoch, {"val_loss": loss})
            saved.append(read_bias(path) if path.exists() else None)
        checkpoint.on_train_end()
    assert saved == [None, 1.0, 1.0]  # epoch 1's weights: epoch 0 passed over, epoch 2 worse
    assert [record.getMessage() for record in caplog.records] == [
        "epoch 1: not a best checkpoint, as it detects nothing"
    ]


def test_a_run_of_unusable_epochs_keeps_its_last_weights(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = tmp_path / "best.weights.h5"
    checkpoint = AtomicModelCheckpoint(
        str(path), monitor="val_loss", save_best_only=True, save_weights_only=True,
        unusable=lambda logs: "no",
    )  # fmt: skip
    checkpoint.set_model(model)
    for epoch in range(2):
        model.layers[0].bias.assign([float(epoch)])
        checkpoint.on_epoch_end(epoch, {"val_loss": 1.0})
    assert not path.exists()
    checkpoint.on_train_end()
    assert read_bias(path) == 1.0
