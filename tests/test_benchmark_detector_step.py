"""The measuring-free parts of benchmarks/detector_step.py: the FLOP-limit arithmetic, the FLOP
counter on a tiny graph, the median timer, the XLA error cell, the table and the one-line
refusals before anything is built, the padding of the former rows."""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def step():
    return load_benchmark("detector_step")


def test_flop_limit_and_fraction(step):
    # 52 GFLOP at 216 GFLOP/s: 0.241 s; a 1 s step reaches 24.1 % of the peak.
    assert step.flop_limit(52e9, 216e9) == pytest.approx(0.24074, abs=1e-5)
    assert step.fraction_of_limit(1.0, 52e9, 216e9) == pytest.approx(0.24074, abs=1e-5)
    assert step.fraction_of_limit(0.5, 52e9, 216e9) == pytest.approx(0.48148, abs=1e-5)


def test_forward_flops_counts_a_dense_layer(step):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    # (2, 4) x (4, 3): 2 x 2 x 4 x 3 = 48 multiply-adds' operations, plus 6 bias additions.
    assert step.forward_flops(model, (2, 4)) == 54


def test_median_seconds_and_one_line(step, monkeypatch):
    clock = itertools.chain([0.0, 1.0, 1.0, 4.0, 4.0, 6.0])  # calls of 1, 3 and 2 s
    monkeypatch.setattr(step.time, "perf_counter", lambda: next(clock))
    calls = []
    assert step.median_seconds(calls.append, 3) == 2.0
    assert calls == [0, 1, 2]
    error = ValueError("\n  Detected unsupported operations: Foo\n\nmore detail\n")
    assert step.one_line(error) == "ValueError: Detected unsupported operations: Foo"
    assert step.one_line(RuntimeError("")) == "RuntimeError"
    assert step.one_line(ValueError("x" * 300), limit=20) == "ValueError: xxxxx..."


def test_table(step):
    rows = [
        {"row": "input", "seconds": 0.0125, "traces": None, "compile_seconds": None},
        {"row": "train_step", "seconds": 0.8, "traces": 1, "compile_seconds": 12.34,
         "of_limit": 0.3},
        {"row": "train_step XLA", "error": "InvalidArgumentError: no XLA kernel"},
    ]  # fmt: skip
    lines = step.table(rows).splitlines()
    assert lines[0].split() == ["row", "median", "ms", "per", "s", "traces", "compile", "s",
                                "of", "limit"]  # fmt: skip
    assert lines[1].split() == ["input", "12.5", "80.00", "-", "-", "-"]
    assert lines[2].split() == ["train_step", "800.0", "1.25", "1", "12.3", "30.0%"]
    assert lines[3] == "train_step XLA  failed: InvalidArgumentError: no XLA kernel"


def test_bad_inputs_end_in_one_line(step, tmp_path, capsys):
    common = ["--data-dir", str(tmp_path), "--out", str(tmp_path / "out")]
    assert step.main([*common, "--repeats", "0"]) == 1
    assert capsys.readouterr().err == "detector_step: --repeats must be at least 1\n"
    assert step.main(common) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "loops111/annotations.xml: not found" in err
    assert not (tmp_path / "out").exists()


def test_pad_boxes_gives_the_former_padding(step):
    import numpy as np

    targets = {
        "boxes": np.array([[[1, 2, 3, 4], [-1, -1, -1, -1]]], np.float32),
        "classes": np.array([[0, -1]], np.float32),
    }
    padded = step.pad_boxes(targets, 4)
    assert padded["boxes"].numpy().tolist() == [[[1, 2, 3, 4]] + [[-1, -1, -1, -1]] * 3]
    assert padded["classes"].numpy().tolist() == [[0, -1, -1, -1]]
