"""The measuring-free parts of benchmarks/onednn.py: the table and its ratios, the refusals
before any child starts, and a child's failure as one line."""

from __future__ import annotations

import argparse
import subprocess

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def onednn():
    return load_benchmark("onednn")


def row(kind, setting, ms, loss=1.5):
    return {"kind": kind, "setting": setting, "onednn": setting == "oneDNN", "batch": 8,
            "window": 320, "ms": ms, "loss1": loss}  # fmt: skip


def test_table_gives_each_kind_its_ratio(onednn):
    rows = [row("yolo", "Eigen", 1800.0), row("yolo", "oneDNN", 750.0),
            row("unet", "Eigen", 400.0), row("unet", "oneDNN", 500.0)]  # fmt: skip
    lines = onednn.table(rows).splitlines()
    assert lines[2] == "| yolo | 8 x 320^2 | Eigen | False | 1800 | 0.56 | 1.500000 | 1 |"
    assert lines[3] == "| yolo | 8 x 320^2 | oneDNN | True | 750 | 1.33 | 1.500000 | 2.40 |"
    assert lines[5].endswith("| 0.80 |")


def test_refusals_before_any_child(onednn, monkeypatch, capsys):
    monkeypatch.delenv("EMDL_DATA_DIR", raising=False)
    with pytest.raises(SystemExit):
        onednn.main([])
    assert "give --data-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        onednn.main(["--data-dir", "x", "--kinds", "yolo,rcnn"])
    assert "--kinds: unknown rcnn" in capsys.readouterr().err


def test_a_failed_child_is_one_line(onednn, monkeypatch):
    failed = subprocess.CompletedProcess([], 1, stdout="", stderr="Traceback\nValueError: boom\n")
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: failed)
    args = argparse.Namespace(data_dir="d", batches=1, rounds=1)
    with pytest.raises(SystemExit, match="the oneDNN child of unet failed: ValueError: boom"):
        onednn.run_child("unet", "oneDNN", args)


def test_a_child_gets_its_setting_and_gives_its_last_line(onednn, monkeypatch):
    seen = {}

    def run(command, env, **kwargs):
        seen.update(command=command, env=env)
        return subprocess.CompletedProcess(command, 0, stdout='log\n{"ms": 5.0}\n', stderr="")

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # the user's setting wins over the quiet one
    args = argparse.Namespace(data_dir="d", batches=2, rounds=3)
    assert onednn.run_child("yolo", "Eigen", args) == {"ms": 5.0, "setting": "Eigen"}
    assert (seen["env"]["TF_ENABLE_ONEDNN_OPTS"], seen["env"]["TF_CPP_MIN_LOG_LEVEL"]) == ("0", "0")
    assert seen["command"][2:] == [
        "--child", "yolo", "--data-dir", "d", "--batches", "2", "--rounds", "3"
    ]  # fmt: skip
