"""predict_rest against the local REST server (TF Serving's binary cannot be installed here)."""

import socket

import numpy as np
import pytest

from emdl.errors import InputError
from emdl.serving import ServingError, predict_rest
from emdl.serving.testing import RestTestServer
from tests.serving.conftest import assert_same, call_saved_model, closed_port, image


@pytest.fixture(scope="module")
def server(served):
    with RestTestServer(served) as server:
        yield server


def test_outputs_are_what_the_saved_model_returns(server, tiny_saved_model):
    batch = image(0)
    outputs = predict_rest(server.url, "tiny", batch)
    assert_same(outputs, call_saved_model(tiny_saved_model, batch))
    assert outputs["mean"].dtype == np.float32


def test_one_image_of_integers_is_sent_as_a_batch_of_one(server, tiny_saved_model):
    # JSON integers, which TF Serving converts to the signature's float32.
    single = image(1, shape=(7, 4), dtype=np.uint16)
    outputs = predict_rest(server.url, "tiny", single)
    expected = call_saved_model(tiny_saved_model, single[None, :, :, None].astype(np.float32))
    assert_same(outputs, expected)


def test_a_single_integer_output_has_its_name_and_dtype(server, tiny_saved_model):
    # TF Serving leaves out the name of a single output; the client reads it from the metadata.
    batch = image(2)
    outputs = predict_rest(server.url, "tiny", batch, signature="bright")
    assert_same(outputs, call_saved_model(tiny_saved_model, batch, "bright"))
    assert outputs["count"].dtype == np.int32


def test_a_uint8_signature(server, tiny_saved_model):
    batch = image(3, dtype=np.uint8)
    outputs = predict_rest(server.url, "tiny", batch, signature="bytes")
    assert_same(outputs, call_saved_model(tiny_saved_model, batch, "bytes"))


def test_a_version(server, tiny_saved_model):
    batch = image(4, shape=(1, 3, 3, 1))
    outputs = predict_rest(server.url + "/", "tiny_versions", batch, version=3)
    assert_same(outputs, call_saved_model(tiny_saved_model, batch))
    with pytest.raises(ServingError) as error:
        predict_rest(server.url, "tiny_versions", batch, version=2)
    assert str(error.value) == (
        f"{server.url}/v1/models/tiny_versions/versions/2:predict: HTTP 404: "
        "Servable not found for request: Specific(tiny_versions, 2)"
    )


def test_an_unknown_model_is_a_404(server):
    with pytest.raises(ServingError) as error:
        predict_rest(server.url, "bubbles", image(0))
    assert str(error.value) == (
        f"{server.url}/v1/models/bubbles:predict: HTTP 404: "
        "Servable not found for request: Latest(bubbles)"
    )


def test_an_unknown_signature_is_a_400(server):
    with pytest.raises(ServingError) as error:
        predict_rest(server.url, "tiny", image(0), signature="detect")
    assert str(error.value) == (
        f'{server.url}/v1/models/tiny:predict: HTTP 400: Serving signature key "detect" not found.'
    )


def test_a_float_image_for_a_uint8_signature_is_a_400(server):
    with pytest.raises(ServingError) as error:
        predict_rest(server.url, "tiny", image(0), signature="bytes")
    assert str(error.value) == (
        f"{server.url}/v1/models/tiny:predict: HTTP 400: "
        "input 'image': JSON values of type float64 are not of expected type: uint8"
    )


def test_a_refused_connection():
    url = f"http://localhost:{closed_port()}"
    with pytest.raises(ServingError) as error:
        predict_rest(url, "tiny", image(0))
    assert str(error.value) == f"{url}: connection refused (is TF Serving running?)"


def test_a_server_that_does_not_answer():
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("localhost", 0))
        silent.listen()
        url = f"http://localhost:{silent.getsockname()[1]}"
        with pytest.raises(ServingError) as error:
            predict_rest(url, "tiny", image(0), timeout=0.5)
    assert str(error.value) == f"{url}: no answer within 0.5 s"


def test_a_url_without_http():
    with pytest.raises(ServingError) as error:
        predict_rest("localhost:8501", "tiny", image(0))
    assert str(error.value) == "localhost:8501: expected an http:// or https:// URL"


def test_a_bad_image_is_refused_before_sending():
    # A closed port: the image is refused before any connection is tried.
    with pytest.raises(InputError) as error:
        predict_rest(f"http://localhost:{closed_port()}", "tiny", np.zeros((2, 3, 4, 3)))
    assert str(error.value) == "image: shape (2, 3, 4, 3) is not (H, W), (H, W, 1) or (B, H, W, 1)"


def test_a_real_kinds_export(unet_serving_dir):
    """The U-Net kind's export in a serving layout: uint8 pixels as JSON numbers, which
    ``serving_default`` takes as float32; its single output ``probabilities`` by name."""
    from emdl.serving.testing import ServedModels

    pixels = image(5, shape=(1, 12, 10, 1), dtype=np.uint8)
    model_dir = unet_serving_dir / "unet_bubbles" / "1"
    with RestTestServer(ServedModels.from_serving_dir(unet_serving_dir)) as server:
        outputs = predict_rest(server.url, "unet_bubbles", pixels[0])
        assert_same(outputs, call_saved_model(model_dir, pixels.astype(np.float32)))
        assert outputs["probabilities"].shape == (1, 12, 10, 3)
        # TF Serving's REST API cannot fill uint16 tensors from JSON.
        with pytest.raises(ServingError) as error:
            predict_rest(server.url, "unet_bubbles", pixels, signature="serving_uint16")
    assert str(error.value) == (
        f"{server.url}/v1/models/unet_bubbles:predict: HTTP 400: "
        "input 'image': Conversion of JSON values to type: uint16"
    )
