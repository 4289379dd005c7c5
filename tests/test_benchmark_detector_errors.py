"""The prediction-free parts of benchmarks/detector_errors.py: its report and the one-line
refusals of what is no detector run."""

from __future__ import annotations

import json

import pytest

from tests.conftest import load_benchmark, tiny_config


@pytest.fixture(scope="module")
def errors():
    return load_benchmark("detector_errors")


def test_report_of_misses_by_size_and_detections(errors):
    result = {
        "images": 2,
        "threshold": 0.35,
        "errors": {
            "missed_by_size": [
                {"smallest_px": 10.0, "largest_px": 20.5, "objects": 4, "missed": 1},
                {"smallest_px": 21.0, "largest_px": 40.0, "objects": 5, "missed": 0},
            ],
            "detections": 8,
            "unlabeled": 2,
            "f1_50": 0.75,
            "f1_loose": 0.8125,
            "size_ratio_median": 1.05,
        },
    }
    assert errors.report(result).splitlines() == [
        "2 images, detections with score >= 0.350",
        " labeled size px  objects  missed  missed %",
        "       10.0-20.5        4       1      25.0",
        "       21.0-40.0        5       0       0.0",
        "detections kept 8, 2 (25.0 %) with IoU < 0.3 with every labeled object",
        "F1 at IoU 0.5 0.750, at IoU 0.3 0.812; matched boxes 1.050 times their labels' size "
        "(median)",
    ]


def test_what_is_no_detector_run_ends_in_one_line(errors, tmp_path, capsys):
    arguments = ["--labels", "l.xml", "--images", str(tmp_path)]
    assert errors.main([str(tmp_path / "none"), *arguments]) == 1
    message = capsys.readouterr().err
    assert message == f"detector_errors: {tmp_path / 'none'}: not a run directory: no config.json\n"
    unet = tmp_path / "unet"
    unet.mkdir()
    config = tiny_config("l.xml", "images").to_dict()
    (unet / "config.json").write_text(json.dumps(config))
    assert errors.main([str(unet), *arguments]) == 1
    message = capsys.readouterr().err
    assert message == f"detector_errors: {unet}: not a detector run (its kind is not yolo)\n"
