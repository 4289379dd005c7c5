"""emdl.settings: every value from a config file checked where it enters, by key path."""

from __future__ import annotations

import math

import pytest

from emdl.train.config import RunConfig

DATA = {"labels": ["x.xml"], "images": "."}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"data": {**DATA, "window": "64"}}, 'data.window: expected an integer, got "64"'),
        ({"data": {**DATA, "batch_size": 2.5}}, "data.batch_size: expected an integer, got 2.5"),
        ({"data": {**DATA, "batch_size": True}}, "data.batch_size: expected an integer, got true"),
        ({"data": {**DATA, "labels": "x.xml"}}, 'data.labels: expected a list, got "x.xml"'),
        ({"data": {**DATA, "labels": [1]}}, "data.labels: expected a list of strings, got [1]"),
        ({"data": {**DATA, "empty_crops": True}}, "data.empty_crops: expected a string or a"),
        ({"data": DATA, "model": {"depth": 2.0}}, "model.depth: expected an integer, got 2.0"),
        (
            {"data": DATA, "training": {"learning_rate": math.nan}},
            "training.learning_rate: expected a finite number, got NaN",
        ),
        (
            {"data": DATA, "training": {"learning_rate": math.inf}},
            "training.learning_rate: expected a finite number, got Infinity",
        ),
        (
            {"data": DATA, "kind": "yolo", "model": {"longest_side": "640"}},
            'model.longest_side: expected an integer or null, got "640"',
        ),
        (
            {"data": DATA, "kind": "maskrcnn", "model": {"filters": [64, "x", 1, 1]}},
            "model.filters: expected a list of integers",
        ),
        ({"data": DATA, "loss": {"dice": "1"}}, 'loss.dice: expected a finite number, got "1"'),
        ({"data": DATA, "loss": {"dice": -1.0}}, "loss.dice: expected a weight >= 0, got -1.0"),
        ({"data": ["x"]}, 'data: expected an object of settings, got ["x"]'),
    ],
)
def test_wrong_values_are_named_by_their_key_path(values, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        RunConfig.from_dict(values)


def test_right_values_pass_ints_for_floats_and_null_for_optionals():
    config = RunConfig.from_dict(
        {
            "data": {**DATA, "empty_crops": 0.5},
            "kind": "yolo",
            "model": {"longest_side": None, "scale": 1},
            "training": {"learning_rate": 1, "monitor": None},
        }
    )
    assert config.training.learning_rate == 1 and config.model.longest_side is None
