"""``python -m emdl.experiments.yolo_loops``: trains for 60 minutes by default (epochs sized to the
budget); ``--epochs`` alone trains a fixed number, ``--budget-minutes 0`` too."""

from __future__ import annotations

import pytest

import emdl.train.run
from emdl.errors import EmdlError
from emdl.experiments import yolo_loops
from tests.conftest import box_xml, cvat_text


@pytest.fixture
def loops(tmp_path, monkeypatch):
    """A loops111 folder and a train_run that keeps the config it is given and trains nothing."""
    folder = tmp_path / "loops111"
    (folder / "images").mkdir(parents=True)
    xml = cvat_text(box_xml("a.png", 64, [(4, 4, 20, 20)], label="loop"), labels=("loop",))
    (folder / "annotations.xml").write_text(xml)
    seen = []

    def train_run(config, run_dir, **kwargs):
        seen.append(config.training)
        raise EmdlError("not trained here")

    monkeypatch.setattr(emdl.train.run, "train_run", train_run)
    return folder, seen


@pytest.mark.parametrize(
    ("arguments", "budget", "epochs"),
    [
        ([], 60.0, yolo_loops.EPOCH_CAP),  # the default: the hour, epochs sized to it
        (["--epochs", "5"], None, 5),  # a fixed number
        (["--budget-minutes", "0"], None, 30),  # the old default
        (["--budget-minutes", "10", "--epochs", "7"], 10.0, 7),  # at most 7 epochs in 10 min
    ],
)
def test_the_budget_and_the_epochs(loops, capsys, arguments, budget, epochs):
    folder, seen = loops
    assert yolo_loops.main(["--data-dir", str(folder), *arguments]) == 1
    assert capsys.readouterr().err == "yolo_loops: not trained here\n"
    assert (seen[0].budget_minutes, seen[0].epochs, seen[0].steps_per_epoch) == (budget, epochs, 40)
    # The experiment's other defaults are unchanged.
    assert (seen[0].learning_rate, seen[0].warmup_steps, seen[0].ema_momentum) == (4e-3, 0, 0.0)


def test_a_negative_budget_is_one_line(loops, capsys):
    folder, seen = loops
    assert yolo_loops.main(["--data-dir", str(folder), "--budget-minutes", "-1"]) == 1
    assert capsys.readouterr().err == (
        "yolo_loops: training.budget_minutes: expected a positive number of minutes (null: train "
        "for the epochs given), got -1.0\n"
    )
    assert seen == []
