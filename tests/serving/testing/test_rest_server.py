"""The local REST server speaks TF Serving's documented JSON: rows and columns in, errors as
{"error": ...} with 400/404."""

import json
import urllib.error
import urllib.request

import pytest

from emdl.serving.testing import RestTestServer
from tests.serving.conftest import call_saved_model, image


@pytest.fixture(scope="module")
def server(served):
    with RestTestServer(served) as server:
        yield server


def post(url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data)) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_rows_in_predictions_out(server, tiny_saved_model):
    batch = image(0)
    expected = call_saved_model(tiny_saved_model, batch)
    status, answer = post(f"{server.url}/v1/models/tiny:predict", {"instances": batch.tolist()})
    assert status == 200
    assert answer == {
        "predictions": [
            {"doubled": expected["doubled"][i].tolist(), "mean": expected["mean"][i].item()}
            for i in range(2)
        ]
    }
    # Named instances, and a single output without its name.
    rows = [{"image": item.tolist()} for item in batch]
    body = {"signature_name": "bright", "instances": rows}
    status, answer = post(f"{server.url}/v1/models/tiny/versions/1:predict", body)
    assert (status, answer) == (
        200,
        {"predictions": call_saved_model(tiny_saved_model, batch, "bright")["count"].tolist()},
    )


def test_columns_in_outputs_out(server, tiny_saved_model):
    batch = image(1)
    body = {"signature_name": "bright", "inputs": batch.tolist()}  # a single input, unnamed
    status, answer = post(f"{server.url}/v1/models/tiny:predict", body)
    expected = call_saved_model(tiny_saved_model, batch, "bright")["count"]
    assert (status, answer) == (200, {"outputs": expected.tolist()})


ONE = [[[[1.0]]]]  # a (1, 1, 1, 1) image
ERRORS = [
    (
        "tiny:predict",
        b"{",
        400,
        "JSON Parse error: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
    ),
    (
        "tiny:predict",
        {"inputs": ONE, "instances": ONE},
        400,
        "expecting exactly one of 'inputs' or 'instances' keys",
    ),
    ("tiny:predict", {"inputs": {"x": ONE}}, 400, "Missing named input: image in 'inputs' object."),
    ("tiny:predict", {"instances": [[[1.0]], [[1.0], [2.0]]]}, 400, "input 'image': ragged lists"),
    (
        "tiny:predict",
        {"inputs": [[[1.0]]]},
        400,
        "input 'image' has shape [1, 1, 1], the signature takes [-1, -1, -1, 1]",
    ),
    (
        "tiny:predict",
        {"signature_name": "bytes", "inputs": [[[[256]]]]},
        400,
        "input 'image': values out of uint8",
    ),
    (
        "nope/versions/2:predict",
        {"inputs": ONE},
        404,
        "Servable not found for request: Specific(nope, 2)",
    ),
    ("tiny:classify", {"inputs": ONE}, 404, "Malformed request: POST /v1/models/tiny:classify"),
]


@pytest.mark.parametrize(("path", "body", "status", "error"), ERRORS)
def test_errors(server, path, body, status, error):
    assert post(f"{server.url}/v1/models/{path}", body) == (status, {"error": error})


def test_metadata(server):
    with urllib.request.urlopen(f"{server.url}/v1/models/tiny_versions/metadata") as response:
        metadata = json.loads(response.read())
    assert metadata["model_spec"] == {"name": "tiny_versions", "signature_name": "", "version": "3"}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert sorted(signatures) == ["bright", "bytes", "serving_default"]
    assert signatures["bytes"]["inputs"]["image"]["dtype"] == "DT_UINT8"
    assert signatures["bright"]["outputs"]["count"] == {
        "dtype": "DT_INT32",
        "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False},
        "name": "count",
    }
