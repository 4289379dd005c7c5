"""predict_grpc against the in-process gRPC server built from tensorflow-serving-api's own
PredictionService definition (TF Serving's binary cannot be installed here)."""

import socket
import sys

import numpy as np
import pytest

from emdl.errors import InputError
from emdl.serving import ServingError, predict_grpc
from emdl.serving.testing import GrpcTestServer
from tests.serving.conftest import assert_same, call_saved_model, closed_port, image


@pytest.fixture(scope="module")
def server(served):
    with GrpcTestServer(served) as server:
        yield server


def test_outputs_are_what_the_saved_model_returns(server, tiny_saved_model):
    batch = image(0)
    assert_same(
        predict_grpc(server.target, "tiny", batch), call_saved_model(tiny_saved_model, batch)
    )


def test_one_image_is_sent_as_a_batch_of_one(server, tiny_saved_model):
    single = image(1, shape=(7, 4, 1)).astype(np.float64)  # sent as float32
    outputs = predict_grpc(server.target, "tiny", single)
    assert_same(outputs, call_saved_model(tiny_saved_model, single[None].astype(np.float32)))


def test_other_signatures_and_dtypes(server, tiny_saved_model):
    batch = image(2)
    outputs = predict_grpc(server.target, "tiny", batch, signature="bright")
    assert_same(outputs, call_saved_model(tiny_saved_model, batch, "bright"))
    assert outputs["count"].dtype == np.int32
    batch = image(3, dtype=np.uint8)
    outputs = predict_grpc(server.target, "tiny", batch, signature="bytes")
    assert_same(outputs, call_saved_model(tiny_saved_model, batch, "bytes"))


def test_the_dtype_is_kept_and_checked_by_the_signature(server):
    with pytest.raises(ServingError) as error:
        predict_grpc(server.target, "tiny", image(0, dtype=np.uint16), signature="serving_default")
    assert str(error.value) == (
        f"{server.target}: INVALID_ARGUMENT: Expects arg[0] to be float32 but uint16 is provided"
    )


def test_a_version(server, tiny_saved_model):
    batch = image(4, shape=(1, 3, 3, 1))
    outputs = predict_grpc(server.target, "tiny_versions", batch, version=3)
    assert_same(outputs, call_saved_model(tiny_saved_model, batch))
    with pytest.raises(ServingError) as error:
        predict_grpc(server.target, "tiny_versions", batch, version=2)
    assert str(error.value) == (
        f"{server.target}: NOT_FOUND: Servable not found for request: Specific(tiny_versions, 2)"
    )


def test_an_unknown_model_is_not_found(server):
    with pytest.raises(ServingError) as error:
        predict_grpc(server.target, "bubbles", image(0))
    assert str(error.value) == (
        f"{server.target}: NOT_FOUND: Servable not found for request: Latest(bubbles)"
    )


def test_an_unknown_signature(server):
    with pytest.raises(ServingError) as error:
        predict_grpc(server.target, "tiny", image(0), signature="detect")
    assert str(error.value) == (
        f'{server.target}: FAILED_PRECONDITION: Serving signature key "detect" not found.'
    )


def test_a_refused_connection():
    target = f"localhost:{closed_port()}"
    with pytest.raises(ServingError) as error:
        predict_grpc(target, "tiny", image(0), timeout=10)
    assert str(error.value) == f"{target}: connection refused (is TF Serving running?)"


def test_a_server_that_does_not_answer():
    with socket.socket() as silent:  # accepts connections (the backlog), never speaks HTTP/2
        silent.bind(("localhost", 0))
        silent.listen()
        target = f"localhost:{silent.getsockname()[1]}"
        with pytest.raises(ServingError) as error:
            predict_grpc(target, "tiny", image(0), timeout=0.5)
    assert str(error.value).startswith(f"{target}: DEADLINE_EXCEEDED: no answer in time (")


def test_a_bad_image_is_refused_before_sending():
    with pytest.raises(InputError) as error:
        predict_grpc(f"localhost:{closed_port()}", "tiny", np.zeros((3, 4), np.int64))
    assert (
        str(error.value) == "image: dtype int64 is not accepted (uint8, uint16, float32 or float64)"
    )


def test_a_real_kinds_export(unet_serving_dir):
    """The U-Net kind's export in a serving layout, its uint8 and uint16 signatures given the
    pixels as they are."""
    from emdl.serving.testing import ServedModels

    model_dir = unet_serving_dir / "unet_bubbles" / "1"
    with GrpcTestServer(ServedModels.from_serving_dir(unet_serving_dir)) as server:
        for dtype, signature in ((np.uint8, "serving_uint8"), (np.uint16, "serving_uint16")):
            pixels = image(6, shape=(1, 12, 10, 1), dtype=dtype)
            # No signature given: the one that takes the image's dtype.
            outputs = predict_grpc(server.target, "unet_bubbles", pixels)
            assert_same(outputs, call_saved_model(model_dir, pixels, signature))
            as_float = call_saved_model(model_dir, pixels.astype(np.float32))
            assert np.abs(outputs["probabilities"] - as_float["probabilities"]).max() < 1e-6


def test_without_the_serving_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)  # import fails
    with pytest.raises(ServingError) as error:
        predict_grpc("localhost:8500", "tiny", image(0))
    assert str(error.value).startswith("predict_grpc needs tensorflow-serving-api (")
    assert str(error.value).endswith('): pip install "emdl[serving]"')
