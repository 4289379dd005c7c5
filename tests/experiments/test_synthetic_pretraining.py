"""``python -m emdl.experiments.synthetic_pretraining``: pretrained against scratch on tiny runs,
and what its command line refuses."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from skimage import io as skio

from emdl.errors import EmdlError, InputError
from emdl.experiments import pretraining, synthetic_pretraining
from tests.conftest import BUBBLE_BOXES, box_image

KEYS = {"iou", "count_error", "evaluated_on", "dice", "objects", "detected", "run"}


def tiny_budget():
    from tests.conftest import TINY_MODEL

    settings = {"pretrain_epochs": 1, "epochs": 1, "steps_per_epoch": 1}
    return pretraining.Budget(count=2, size=128, model=TINY_MODEL, window=64, **settings)


@pytest.mark.slow
def test_it_scores_both_starts_on_the_held_out_image(bubbles_folder, tmp_path, capsys):
    out = tmp_path / "experiment"
    metrics = pretraining.compare(bubbles_folder, None, out, tiny_budget())
    assert json.loads((out / "metrics.json").read_text()) == metrics
    for arm in ("pretrained", "scratch"):
        assert set(metrics[arm]) == KEYS
        assert metrics[arm]["evaluated_on"] == "validation"
        assert 0 <= metrics[arm]["iou"] <= 1 and metrics[arm]["count_error"] >= 0
        # The stand-in holds out one of its two images, with its four labeled boxes.
        assert metrics[arm]["objects"] == len(BUBBLE_BOXES)
        # The run's own score of its validation image is the experiment's.
        run = json.loads((out / arm / "metrics.json").read_text())
        assert run["evaluated_on"] == "validation"
        assert metrics[arm]["iou"] == pytest.approx(run["iou"], abs=1e-12)
    stored = json.loads((out / "pretrained" / "config.json").read_text())
    assert stored["training"]["pretrained"] == str((out / "pretrain").resolve())
    assert (
        json.loads((out / "scratch" / "config.json").read_text())["training"]["pretrained"] is None
    )
    assert sorted(p.name for p in (out / "synthetic" / "images").iterdir()) == [
        "synthetic_0000.png",
        "synthetic_0001.png",
    ]
    assert metrics["budget"] == {
        "count": 2,
        "size": 128,
        "pretrain_epochs": 1,
        "epochs": 1,
        "steps_per_epoch": 1,
    }
    lines = pretraining.table(metrics).splitlines()
    assert lines[0].split() == ["start", "IoU", "count", "error", "scored", "on"]
    assert lines[1].split() == [
        "pretrained",
        f"{metrics['pretrained']['iou']:.3f}",
        f"{metrics['pretrained']['count_error']:.2f}",
        "validation",
    ]
    difference = metrics["pretrained"]["iou"] - metrics["scratch"]["iou"]
    assert lines[3].split()[:2] == ["pretrained-scratch", f"{difference:+.3f}"]

    # Run again: refused over the finished experiment; without its metrics.json (an
    # interruption after the runs) the finished runs are reused, nothing trained again.
    with pytest.raises(InputError, match="holds a finished experiment; give --overwrite"):
        pretraining.compare(bubbles_folder, None, out, tiny_budget())
    (out / "metrics.json").unlink()
    capsys.readouterr()
    again = pretraining.compare(bubbles_folder, None, out, tiny_budget())
    assert again == metrics
    printed = capsys.readouterr().out
    assert "trained before; using it" in printed and "training " not in printed
    # Other settings are not mixed with the runs of these.
    (out / "metrics.json").unlink()
    longer = dataclasses.replace(tiny_budget(), epochs=2)
    with pytest.raises(EmdlError) as error:
        pretraining.compare(bubbles_folder, None, out, longer)
    assert str(error.value) == (
        f"{out / 'pretrained'}: trained before with other settings than these; give "
        "--overwrite to train it again, or another --out"
    )

    # With the test pair (what compare passes on), the arms are scored on it, and trained on
    # both images (nothing held out); scored here with the run trained above.
    from emdl.train.run import load_run

    skio.imsave(
        bubbles_folder / "test_image.png", box_image(256, BUBBLE_BOXES), check_contrast=False
    )
    label = (box_image(256, BUBBLE_BOXES) > 0).astype(np.uint8) * 255
    skio.imsave(bubbles_folder / "test_label.png", label, check_contrast=False)
    pair = (bubbles_folder / "test_image.png", bubbles_folder / "test_label.png")
    config, model = load_run(out / "scratch")
    scored = pretraining.score(model, config, pair)
    assert (scored["evaluated_on"], scored["objects"]) == ("test_image", len(BUBBLE_BOXES))
    whole = pretraining.fine_tune_config(bubbles_folder, tiny_budget(), hold_out=False)
    assert whole.data.validation_fraction == 0.0


def test_the_table_shows_both_and_the_difference():
    metrics = {
        "pretrained": {"iou": 0.75, "count_error": 3.0, "evaluated_on": "validation"},
        "scratch": {"iou": 0.5, "count_error": 5.5, "evaluated_on": "validation"},
    }
    assert pretraining.table(metrics).splitlines() == [
        "start                  IoU  count error  scored on",
        "pretrained          0.750         3.00  validation",
        "scratch             0.500         5.50  validation",
        "pretrained-scratch +0.250        -2.50",
    ]


@pytest.mark.parametrize(
    "arguments, problem",
    [
        (["--synthetic-count", "1"], "argument --synthetic-count: must be at least 2, got 1"),
        (["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
        (["--steps-per-epoch", "x"], "argument --steps-per-epoch: expected an integer, got 'x'"),
    ],
)
def test_bad_arguments_end_in_one_line(arguments, problem, capsys):
    with pytest.raises(SystemExit) as stopped:
        synthetic_pretraining.main(arguments)
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(problem)


def test_without_data_it_says_where_it_looked(tmp_path, capsys):
    status = synthetic_pretraining.main(
        ["--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "run")]
    )
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and err.startswith("synthetic_pretraining: ")
    assert not (tmp_path / "run").exists()
