"""The measuring-free parts of benchmarks/epoch_time.py: the summary of a child's epochs (the
first left out), the table and its ratio, the refusals before any child starts, and a child's
failure as one line."""

from __future__ import annotations

import argparse
import subprocess

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def epoch_time():
    return load_benchmark("epoch_time")


def epochs(*pairs):
    """Epochs of (seconds, wait before validation)."""
    return [
        {"epoch_s": s, "train_s": s - w - 2, "wait_s": w, "validation_s": 2.0} for s, w in pairs
    ]


AUTOTUNED = {"autotune": True, "epochs": epochs((60, 0), (25, 0), (41, 16), (25, 0.5), (41, 16))}
EMDL = {"autotune": False, "epochs": epochs((60, 0), (25, 0), (25, 0), (26, 0), (24, 0))}


def test_summary_leaves_out_the_traced_epoch(epoch_time):
    row = epoch_time.summary(AUTOTUNED)
    assert row == {"epochs": 4, "median_s": 33.0, "mean_s": 33.0, "slowest_s": 41,
                   "wait_s": 32.5, "stalls": 2, "validation_s": 2.0}  # fmt: skip


def test_table_gives_each_setting_its_ratio(epoch_time):
    lines = epoch_time.table({"autotuned": AUTOTUNED, "emdl": EMDL}).splitlines()
    assert lines[2] == "| autotuned | 4 | 33.0 | 33.0 | 41.0 | 32.5 | 2 | 2.0 | 1.00 |"
    assert lines[3] == "| emdl | 4 | 25.0 | 25.0 | 26.0 | 0.0 | 0 | 2.0 | 1.32 |"


def test_refusals_before_any_child(epoch_time, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("EMDL_DATA_DIR", raising=False)
    with pytest.raises(SystemExit):
        epoch_time.main([])
    assert "give --data-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        epoch_time.main(["--data-dir", str(tmp_path), "--epochs", "1"])
    assert "--epochs must be at least 2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        epoch_time.main(["--data-dir", str(tmp_path)])
    assert "loops111/annotations.xml: not found" in capsys.readouterr().err


def test_a_failed_child_is_one_line(epoch_time, monkeypatch):
    failed = subprocess.CompletedProcess([], 1, stdout="", stderr="Traceback\nValueError: boom\n")
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: failed)
    args = argparse.Namespace(data_dir="d", epochs=2, steps=1)
    with pytest.raises(SystemExit, match="the emdl child failed: ValueError: boom"):
        epoch_time.run_child("emdl", args)
