"""A local HTTP server speaking TF Serving's documented REST JSON
(``POST /v1/models/NAME[/versions/N]:predict``, ``GET .../metadata``) that runs SavedModels:
for checking REST clients without the ``tensorflow_model_server`` binary."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from emdl.serving.testing.models import ServedModels, StatusError, input_specs, run

_MODEL = r"/v1/models/(?P<model>[^/:]+)(?:/versions/(?P<version>\d+))?"
_PREDICT = re.compile(_MODEL + r":predict")
_METADATA = re.compile(_MODEL + r"/metadata")
# TF Serving's HTTP statuses for its error codes (the rest answer 400).
_HTTP_STATUS = {"NOT_FOUND": 404}
# The dtypes TF Serving's REST API fills from JSON numbers (util/json_tensor.cc): not uint16,
# not float16.
_JSON_DTYPES = {"float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint32"}
_JSON_DTYPES |= {"uint64", "bool"}


class RestTestServer:
    """TF Serving's REST predict and metadata API on ``localhost`` at a free port (``url``,
    ``http://localhost:PORT``), serving ``models`` (:class:`ServedModels`, or a mapping of
    names to SavedModel folders).

    ``{"inputs": ...}`` (columnar) is answered with ``{"outputs": ...}`` and
    ``{"instances": [...]}`` (rows) with ``{"predictions": [...]}``; a single input or output
    goes without its name, as TF Serving does. Errors are ``{"error": "..."}`` with HTTP 404
    for an unknown model or version and 400 for the rest. Use it as a context manager, or call
    :meth:`stop`."""

    def __init__(
        self, models: ServedModels | Mapping[str, str | os.PathLike], host: str = "localhost"
    ) -> None:
        self.models = models if isinstance(models, ServedModels) else ServedModels(models)
        handler = type("Handler", (_Handler,), {"models": self.models})
        self._server = ThreadingHTTPServer((host, 0), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops serving and closes the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RestTestServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    models: ServedModels
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        match = _METADATA.fullmatch(self.path)
        if not match:
            return self._answer(404, {"error": f"Malformed request: GET {self.path}"})
        self._respond(lambda: self.models.metadata(match["model"], _version(match)))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        match = _PREDICT.fullmatch(self.path)
        if not match:
            return self._answer(404, {"error": f"Malformed request: POST {self.path}"})
        self._respond(lambda: self._predict(match["model"], _version(match), body))

    def _predict(self, model: str, version: int | None, body: bytes) -> dict:
        try:
            request = json.loads(body)
        except ValueError as error:
            raise StatusError("INVALID_ARGUMENT", f"JSON Parse error: {error}") from None
        if not isinstance(request, dict):
            raise StatusError("INVALID_ARGUMENT", "JSON Value: request is not an object")
        signature = request.get("signature_name", "")
        if not isinstance(signature, str):
            raise StatusError("INVALID_ARGUMENT", "'signature_name' key must be a string value.")
        function, _ = self.models.signature(model, version, signature)
        specs = input_specs(function)
        if ("inputs" in request) == ("instances" in request):
            raise StatusError(
                "INVALID_ARGUMENT", "expecting exactly one of 'inputs' or 'instances' keys"
            )
        if "inputs" in request:
            outputs = run(function, _columns(request["inputs"], specs))
            return {"outputs": _named(outputs)}
        outputs = run(function, _rows(request["instances"], specs))
        return {"predictions": _predictions(outputs)}

    def _respond(self, answer) -> None:
        try:
            self._answer(200, answer())
        except StatusError as failure:
            self._answer(_HTTP_STATUS.get(failure.code, 400), {"error": failure.message})

    def _answer(self, status: int, content: dict) -> None:
        data = json.dumps(content).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args) -> None:
        pass  # quiet, like a test fixture should be


def _version(match: re.Match) -> int | None:
    return None if match["version"] is None else int(match["version"])


def _columns(inputs, specs: dict) -> dict[str, np.ndarray]:
    """The columnar ``"inputs"``: one value (a single input) or an object of named values."""
    if not isinstance(inputs, dict):
        if len(specs) != 1:
            raise StatusError(
                "INVALID_ARGUMENT", "inputs is a plain value/list, but expecting an object"
            )
        inputs = {next(iter(specs)): inputs}
    for name in specs:
        if name not in inputs:
            raise StatusError(
                "INVALID_ARGUMENT", f"Missing named input: {name} in 'inputs' object."
            )
    return {name: _tensor(inputs[name], specs[name], name) for name in specs}


def _rows(instances, specs: dict) -> dict[str, np.ndarray]:
    """The row ``"instances"``: a list of values (a single input) or of objects, batched."""
    if not isinstance(instances, list) or not instances:
        raise StatusError("INVALID_ARGUMENT", "expecting 'instances' to be a non-empty list")
    if not all(isinstance(item, dict) for item in instances):
        if len(specs) != 1 or any(isinstance(item, dict) for item in instances):
            raise StatusError(
                "INVALID_ARGUMENT", "instances must all be objects, or all values of one input"
            )
        instances = [{next(iter(specs)): item} for item in instances]
    for index, item in enumerate(instances):
        if set(item) != set(specs):
            raise StatusError(
                "INVALID_ARGUMENT",
                f"Failed to process element: {index} of 'instances' list. "
                f"keys must be equal to: {','.join(sorted(specs))}",
            )
    return {
        name: _tensor([item[name] for item in instances], spec, name)
        for name, spec in specs.items()
    }


def _tensor(value, spec, name: str) -> np.ndarray:
    """A JSON value as an array of the signature's dtype, refused where TF Serving refuses it
    (a float for an integer, a ragged list, a dtype it cannot fill from JSON)."""
    try:
        array = np.asarray(value)
    except ValueError:
        raise StatusError("INVALID_ARGUMENT", f"input {name!r}: ragged lists") from None
    dtype = np.dtype(spec.dtype.as_numpy_dtype)
    if dtype.name not in _JSON_DTYPES:
        raise StatusError(
            "UNIMPLEMENTED", f"input {name!r}: Conversion of JSON values to type: {dtype.name}"
        )
    if array.size and not _fills(dtype, array.dtype):
        raise StatusError(
            "INVALID_ARGUMENT",
            f"input {name!r}: JSON values of type {array.dtype} are not of expected type: "
            f"{spec.dtype.name}",
        )
    if np.issubdtype(dtype, np.integer) and array.size:
        limits = np.iinfo(dtype)
        if array.min() < limits.min or array.max() > limits.max:
            raise StatusError("INVALID_ARGUMENT", f"input {name!r}: values out of {dtype}")
    return array.astype(dtype)


def _fills(dtype: np.dtype, values: np.dtype) -> bool:
    """Whether TF Serving fills a tensor of ``dtype`` from JSON numbers read as ``values``:
    floats from any number, integers from integers only, booleans from booleans."""
    if np.issubdtype(dtype, np.floating):
        return np.issubdtype(values, np.number)
    if np.issubdtype(dtype, np.integer):
        return np.issubdtype(values, np.integer)
    return np.issubdtype(values, np.bool_)


def _named(outputs: dict[str, np.ndarray]):
    """Columnar outputs: a single output without its name."""
    if len(outputs) == 1:
        return next(iter(outputs.values())).tolist()
    return {name: array.tolist() for name, array in outputs.items()}


def _predictions(outputs: dict[str, np.ndarray]) -> list:
    """Row outputs: one entry per batch item, an object of named values unless single."""
    sizes = {array.shape[0] if array.ndim else None for array in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise StatusError("INVALID_ARGUMENT", "outputs have no common batch size")
    columns = [array.tolist() for array in outputs.values()]
    rows = [dict(zip(outputs, items, strict=True)) for items in zip(*columns, strict=True)]
    return [next(iter(row.values())) for row in rows] if len(outputs) == 1 else rows
