"""A client of TF Serving's REST API (``POST /v1/models/NAME[/versions/N]:predict``), in the
standard library and NumPy."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from emdl.serving.errors import ServingError, one_line
from emdl.serving.inputs import checked_model, checked_version, image_batch

# TF Serving's dtype names (GetModelMetadata's JSON) of the integer and boolean outputs the
# JSON answer cannot tell apart.
_DTYPES = {
    "DT_INT8": np.int8,
    "DT_INT16": np.int16,
    "DT_INT32": np.int32,
    "DT_INT64": np.int64,
    "DT_UINT8": np.uint8,
    "DT_UINT16": np.uint16,
    "DT_UINT32": np.uint32,
    "DT_UINT64": np.uint64,
    "DT_BOOL": np.bool_,
}


def predict_rest(
    url: str,
    model: str,
    image: np.ndarray,
    *,
    version: int | None = None,
    signature: str = "serving_default",
    timeout: float = 60,
) -> dict[str, np.ndarray]:
    """The outputs of ``signature`` of ``model`` served by TF Serving at ``url``
    (e.g. ``http://localhost:8501``) for ``image``, by name.

    ``image`` is a ``(H, W)``, ``(H, W, 1)`` or ``(B, H, W, 1)`` array of uint8, uint16 or
    float32 (float64 is sent as float32); it is sent as the input ``image``, ``(B, H, W, 1)``,
    in the columnar ``{"inputs": ...}`` format, and TF Serving converts its numbers to the
    signature's dtype (so any image can go to an emdl export's float32 ``serving_default``;
    TF Serving cannot fill uint16 tensors from JSON). ``version`` asks for that model version
    (default: the newest).

    JSON carries no dtypes: floating-point outputs come back as float32; integer and boolean
    outputs take the signature's dtype, and a signature with a single output its name, both
    read from the model's metadata (``GET .../metadata``) only when needed. Outputs keep the
    batch axis. Raises :class:`~emdl.serving.errors.ServingError` in one line when the server
    refuses the connection, does not answer within ``timeout`` seconds or answers with an
    error (TF Serving's ``{"error": ...}`` text), and
    :class:`~emdl.errors.InputError` for an image, model or version it cannot send."""
    batch = image_batch(image)
    base = _model_url(url, checked_model(model), checked_version(version))
    body = {"signature_name": signature, "inputs": {"image": batch.tolist()}}
    answer = _request(url, f"{base}:predict", body, timeout)
    if not isinstance(answer, dict) or "outputs" not in answer:
        raise ServingError(f"{base}:predict: answer has no 'outputs'")
    outputs = answer["outputs"]
    named = isinstance(outputs, dict)
    arrays = {name: np.asarray(value) for name, value in outputs.items()} if named else None
    if arrays is not None and all(
        np.issubdtype(a.dtype, np.floating) and a.size for a in arrays.values()
    ):
        return {name: array.astype(np.float32) for name, array in arrays.items()}
    declared = _output_dtypes(url, base, signature, timeout)
    if not named:
        if len(declared) != 1:
            raise ServingError(f"{base}: one unnamed output, but signature has {len(declared)}")
        arrays = {next(iter(declared)): np.asarray(outputs)}
    return {name: _typed(array, declared.get(name)) for name, array in arrays.items()}


def _model_url(url: str, model: str, version: int | None) -> str:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ServingError(f"{url}: expected an http:// or https:// URL")
    base = f"{url.rstrip('/')}/v1/models/{urllib.parse.quote(model, safe='')}"
    return base if version is None else f"{base}/versions/{version}"


def _typed(array: np.ndarray, dtype: str | None) -> np.ndarray:
    """``array`` as float32 unless the signature declares an integer or boolean ``dtype``."""
    return array.astype(_DTYPES.get(dtype, np.float32))


def _output_dtypes(url: str, base: str, signature: str, timeout: float) -> dict[str, str]:
    """The output names of ``signature`` and their TF Serving dtype names (``DT_FLOAT``)."""
    metadata = _request(url, f"{base}/metadata", None, timeout)
    try:
        signatures = metadata["metadata"]["signature_def"]["signature_def"]
    except (KeyError, TypeError):
        raise ServingError(f"{base}/metadata: answer has no signature_def") from None
    if signature not in signatures:
        raise ServingError(f"{base}/metadata: no signature {signature!r}")
    outputs = signatures[signature].get("outputs", {})
    return {name: info.get("dtype", "") for name, info in outputs.items()}


def _request(url: str, address: str, body: dict | None, timeout: float):
    """The JSON answer to a GET (``body`` None) or a POST of ``body`` as JSON to ``address``."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(address, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
    except urllib.error.HTTPError as error:
        raise ServingError(f"{address}: HTTP {error.code}: {_error_text(error)}") from None
    except urllib.error.URLError as error:
        raise ServingError(f"{url}: {_reason(error.reason, timeout)}") from None
    except TimeoutError:
        raise ServingError(f"{url}: {_reason(TimeoutError(), timeout)}") from None
    except ConnectionError as error:
        raise ServingError(f"{url}: {_reason(error, timeout)}") from None
    try:
        return json.loads(text)
    except ValueError:
        raise ServingError(f"{address}: answer is not JSON") from None


def _reason(reason, timeout: float) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is TF Serving running?)"
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    return one_line(str(getattr(reason, "strerror", None) or reason))


def _error_text(error: urllib.error.HTTPError) -> str:
    """TF Serving's ``{"error": ...}`` text, else the body (or the reason) as it is."""
    body = error.read().decode(errors="replace")
    try:
        message = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        message = body or error.reason
    return one_line(str(message))[:2000]
