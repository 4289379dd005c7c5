"""emdl.cvat.serverless: the nuclio function folder, and its handler imported from the written
main.py and called as nuclio calls it, with a stand-in context and CVAT's request."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import sys
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from PIL import Image

from emdl.cvat.serverless import detector_results, write_serverless_function
from emdl.errors import InputError
from tests.conftest import BOXES, box_image
from tests.cvat.conftest import EchoModel


class Context:
    """nuclio's handler context, as far as the handler uses it."""

    def __init__(self):
        self.user_data = SimpleNamespace()
        self.logger = SimpleNamespace(info=lambda *a: None)

    class Response:
        def __init__(self, body, headers, content_type, status_code):
            self.body, self.headers = body, headers
            self.content_type, self.status_code = content_type, status_code


def png_base64(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.fixture
def folder(untrained_run, tmp_path):
    return write_serverless_function(untrained_run, tmp_path / "fn", pixel_size_nm=0.5)


def test_the_folder_is_a_cvat_detector_function(folder, untrained_run):
    assert sorted(p.name for p in folder.iterdir()) == [
        "emdl",
        "function.yaml",
        "main.py",
        "requirements.txt",
        "run",
    ]
    config = yaml.safe_load((folder / "function.yaml").read_text())
    meta = config["metadata"]
    assert (meta["name"], meta["namespace"]) == ("emdl-run", "cvat")
    assert (meta["annotations"]["name"], meta["annotations"]["type"]) == ("emdl run", "detector")
    text = [{"input_type": "text", "values": [""]}]
    assert json.loads(meta["annotations"]["spec"]) == [
        {
            "id": 0,
            "name": "bubble",
            "type": "mask",
            "attributes": [{"name": n, **text[0]} for n in ("score", "diameter_nm")],
        }
    ]
    spec = config["spec"]
    assert (spec["runtime"], spec["handler"]) == ("python:3.11", "main:handler")
    (install,) = spec["build"]["directives"]["postCopy"]
    assert install == {
        "kind": "RUN",
        "value": "pip install --no-cache-dir -r /opt/nuclio/requirements.txt",
    }
    assert sorted(p.name for p in (folder / "run").iterdir()) == [
        "best.weights.h5",
        "config.json",
        "metrics.json",
    ]
    assert (folder / "run/best.weights.h5").read_bytes() == (
        untrained_run / "best.weights.h5"
    ).read_bytes()
    assert (folder / "emdl/cvat/serverless.py").is_file()
    assert not list((folder / "emdl").rglob("__pycache__"))
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("tensorflow") for line in requirements)
    assert not any("extra" in line for line in requirements)


def test_a_folder_with_files_or_a_bad_run_is_refused(untrained_run, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="already holds files; give a new or empty folder"):
        write_serverless_function(untrained_run, taken)
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    with pytest.raises(InputError, match="not a finished run directory"):
        write_serverless_function(tmp_path / "nothing", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def load_main(folder, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # main.py puts its folder first
    spec = importlib.util.spec_from_file_location("emdl_nuclio_main", folder / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_handler_answers_cvats_request(folder, monkeypatch):
    main = load_main(folder, monkeypatch)
    context = Context()
    main.init_context(context)  # loads the copied run
    assert context.user_data.run.classes == ["bubble"]
    context.user_data.run = replace(context.user_data.run, model=EchoModel())
    body = {"image": png_base64(box_image(64)), "threshold": 0.5}
    # nuclio gives a JSON body parsed, or as bytes: both are read.
    for event in (SimpleNamespace(body=body), SimpleNamespace(body=json.dumps(body).encode())):
        response = main.handler(context, event)
        assert (response.status_code, response.content_type) == (200, "application/json")
        shapes = json.loads(response.body)
        assert len(shapes) == len(BOXES)
        found = []
        for shape in shapes:
            assert set(shape) == {"confidence", "label", "points", "mask", "type", "attributes"}
            assert (shape["confidence"], shape["label"], shape["type"]) == ("1.0", "bubble", "mask")
            *cells, xtl, ytl, xbr, ybr = shape["mask"]
            assert cells == [1] * ((xbr - xtl + 1) * (ybr - ytl + 1))  # a filled box
            found.append((xtl, ytl, xbr + 1, ybr + 1))
            xs, ys = shape["points"][0::2], shape["points"][1::2]
            assert (min(xs), min(ys), max(xs), max(ys)) == found[-1]  # the outline on the box
            diameter = 2 * np.sqrt(len(cells) / np.pi) * 0.5
            assert shape["attributes"] == [
                {"name": "score", "value": "1.000"},
                {"name": "diameter_nm", "value": f"{diameter:.2f}"},
            ]
        assert sorted(found) == sorted(tuple(b) for b in BOXES)


def test_a_bad_request_is_a_400(folder, monkeypatch):
    main = load_main(folder, monkeypatch)
    context = Context()
    main.init_context(context)
    image = png_base64(box_image(64))
    for body, problem in (
        ({"image": image, "threshold": 2}, "EmdlError: the confidence threshold must be in [0, 1]"),
        ({"threshold": 0.5}, "KeyError: 'image'"),
        ({"image": "not base64!"}, "Error: "),
        ({"image": image[:20]}, "Error: "),  # cut short: no image
    ):
        response = main.handler(context, SimpleNamespace(body=body))
        assert response.status_code == 400
        assert json.loads(response.body).startswith("bad request: ")
        assert problem in json.loads(response.body)


def test_a_detector_answers_rectangles(monkeypatch, echo_run):
    from emdl.train.config import RunConfig

    config = RunConfig(data=echo_run.config.data, kind="yolo", classes=("loop",))
    found = {
        "boxes": np.float32([[0, 10, 20, 30], [5, 5, 9, 9]]),
        "classes": np.int32([0, 0]),
        "scores": np.float32([0.75, 0.5]),
    }
    monkeypatch.setattr(
        "emdl.train.kinds.yolo.DetectorKind.predict", lambda self, model, image, cfg: found
    )
    run = replace(echo_run, config=config, model=None)
    assert detector_results(run, Image.fromarray(box_image(64)), 0.6) == [
        {
            "confidence": "0.75",
            "label": "loop",
            "points": [0.0, 10.0, 20.0, 30.0],
            "type": "rectangle",
            "attributes": [{"name": "score", "value": "0.750"}],
        }
    ]


@pytest.mark.slow
def test_a_trained_run_answers_from_its_folder(trained_run, tmp_path, monkeypatch):
    folder = write_serverless_function(trained_run, tmp_path / "fn")
    main = load_main(folder, monkeypatch)
    context = Context()
    main.init_context(context)
    event = SimpleNamespace(body={"image": png_base64(box_image(96))})
    response = main.handler(context, event)
    assert response.status_code == 200
    shapes = json.loads(response.body)
    assert shapes  # the two-epoch run finds the boxes (4 of them here)
    for shape in shapes:
        assert shape["type"] == "mask" and 0 <= float(shape["confidence"]) <= 1
        *cells, xtl, ytl, xbr, ybr = shape["mask"]
        assert len(cells) == (xbr - xtl + 1) * (ybr - ytl + 1) and set(cells) <= {0, 1}
        assert 0 <= xtl <= xbr < 96 and 0 <= ytl <= ybr < 96
        assert len(shape["points"]) >= 6
