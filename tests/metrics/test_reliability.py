"""emdl.metrics.reliability: wrong and right defects counted by how many views agreed, exactly,
and ``emdl evaluate --reliability`` on a stand-in network that finds the truth."""

from __future__ import annotations

import json

import numpy as np

from emdl.annotations import Box, ImageAnnotation
from emdl.metrics.reliability import reliability_line, reliability_table
from emdl.predict.instances import Instances
from emdl.predict.uncertainty import Agreement
from tests.conftest import BOXES, box_image, box_xml


def boxes_found(boxes, scores, agreement):
    n = len(boxes)
    found = Instances(
        None,
        np.float32(boxes),
        np.zeros(n, np.int32),
        np.float32(scores),
        np.zeros(n, bool),
        64,
        64,
    )
    return Agreement(found, np.asarray(agreement, np.float64), 0.0)


def box(x0, y0, x1, y1):
    return Box(label="bubble", xtl=x0, ytl=y0, xbr=x1, ybr=y1)


def test_the_table_counts_wrong_defects_by_agreeing_views():
    truth = ImageAnnotation(
        "a.png",
        64,
        64,
        [box(0, 0, 10, 10), box(20, 20, 30, 30), box(40, 40, 50, 50)],
    )
    found = boxes_found(
        # right (IoU 1), right (1 pixel off: IoU 90 / 110), wrong (on no labeled box)
        [[0, 0, 10, 10], [21, 20, 31, 30], [0, 50, 8, 60]],
        [0.9, 0.8, 0.7],
        [1.0, 0.25, 0.125],
    )
    # A second image: a duplicate of one object, the lower-scoring copy is the wrong one.
    twice = boxes_found([[0, 0, 10, 10], [0, 0, 10, 10]], [0.6, 0.9], [1.0, 0.125])
    only_first = ImageAnnotation("b.png", 64, 64, [truth.shapes[0]])
    table = reliability_table([(found, truth), (twice, only_first)], ["bubble"])
    rows = {r["views"]: (r["objects"], r["wrong"], r["error_rate"]) for r in table["rows"]}
    assert rows == {
        1: (2, 1, 0.5),  # the wrong box, and the copy scoring 0.9 which matched first: right
        2: (1, 0, 0.0),
        3: (0, 0, None),
        4: (0, 0, None),
        5: (0, 0, None),
        6: (0, 0, None),
        7: (0, 0, None),
        8: (2, 1, 0.5),  # the first box of a.png, and the copy scoring 0.6: wrong
    }
    assert (table["objects"], table["wrong"], table["missed"]) == (5, 2, 1)
    assert reliability_line(table) == (
        "reliability: 8 of 8 views: 1 of 2 wrong; 2 of 8 views: 0 of 1 wrong; "
        "1 of 8 views: 1 of 2 wrong; 1 labeled defects missed"
    )


def test_evaluate_reliability_on_a_network_that_finds_the_truth(
    labeled_folder, tmp_path, monkeypatch, capsys
):
    from emdl.cli import main
    from emdl.commands import evaluate
    from emdl.commands.predict import load_predictor
    from tests.cvat.conftest import EchoModel, write_untrained_run

    run_dir = write_untrained_run(tmp_path / "run")
    config, _ = load_predictor(run_dir)
    monkeypatch.setattr(evaluate, "load_predictor", lambda run_dir: (config, EchoModel()))
    labels, images = labeled_folder(
        {"a.png": (box_image(64), box_xml("a.png", 64))}, labels=("bubble",)
    )
    out = tmp_path / "scores.json"
    argv = ["evaluate", str(run_dir), "--labels", str(labels), "--images", str(images)]
    assert main([*argv, "--reliability", "--json", str(out)]) == 0
    table = json.loads(out.read_text())["reliability"]
    # The echo network's defects are the labeled boxes in every view: all right, all agreed.
    assert [(r["views"], r["objects"], r["wrong"]) for r in table["rows"]][-1] == (8, 4, 0)
    assert (table["objects"], table["wrong"], table["missed"]) == (len(BOXES), 0, 0)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "reliability: 8 of 8 views: 0 of 4 wrong; 0 labeled defects missed"
    # Without the flag the scores have no table.
    assert main([*argv, "--json", str(out)]) == 0
    assert "reliability" not in json.loads(out.read_text())
