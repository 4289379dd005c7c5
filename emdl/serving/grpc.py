"""A client of TF Serving's gRPC ``PredictionService`` (the ``serving`` extra:
``tensorflow-serving-api``)."""

from __future__ import annotations

import numpy as np

from emdl.serving.errors import ServingError, one_line
from emdl.serving.inputs import checked_model, checked_version, image_batch
from emdl.signatures import signature_for

# TF Serving itself takes messages of any size; gRPC's default 4 MB would refuse a large
# micrograph's probabilities.
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def predict_grpc(
    target: str,
    model: str,
    image: np.ndarray,
    *,
    version: int | None = None,
    signature: str | None = None,
    timeout: float = 60,
) -> dict[str, np.ndarray]:
    """The outputs of ``signature`` of ``model`` served by TF Serving at ``target``
    (``host:port``, e.g. ``localhost:8500``) for ``image``, by name, as NumPy arrays of the
    signature's dtypes.

    ``image`` is a ``(H, W)``, ``(H, W, 1)`` or ``(B, H, W, 1)`` array of uint8, uint16 or
    float32 (float64 is sent as float32); it is sent as the input ``image``, ``(B, H, W, 1)``
    with its dtype, which the signature must take. ``signature`` defaults to the one of emdl's
    exports that takes that dtype (:func:`emdl.signatures.signature_for`: ``serving_uint8``
    for uint8, ``serving_uint16`` for uint16, ``serving_default`` for float32).
    ``version`` asks for that model version (default: the newest).

    Raises :class:`~emdl.serving.errors.ServingError` in one line with the gRPC status and
    details (``localhost:8500: NOT_FOUND: Servable not found ...``), or ``connection refused
    (is TF Serving running?)``, and :class:`~emdl.errors.InputError` for an image, model or
    version it cannot send."""
    batch = image_batch(image)
    model = checked_model(model)
    version = checked_version(version)
    grpc, tf, predict_pb2, prediction_service_pb2_grpc = _imports()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature or signature_for(batch.dtype.name)
    if version is not None:
        request.model_spec.version.value = version
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(batch))
    with grpc.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise ServingError(rpc_error_text(target, error)) from None
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def rpc_error_text(target: str, error) -> str:
    """A gRPC error (``grpc.RpcError``) as one line naming ``target``."""
    code, details = error.code(), one_line(error.details() or "")
    if code.name == "UNAVAILABLE" and "connection refused" in details.lower():
        return f"{target}: connection refused (is TF Serving running?)"
    if code.name == "DEADLINE_EXCEEDED":
        return f"{target}: DEADLINE_EXCEEDED: no answer in time ({details})"
    return f"{target}: {code.name}: {details}"


def _imports():
    """grpc, TensorFlow and tensorflow-serving-api's modules, imported when first used."""
    try:
        import grpc
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as error:
        raise ServingError(
            f'predict_grpc needs tensorflow-serving-api ({error}): pip install "emdl[serving]"'
        ) from None
    import tensorflow as tf

    return grpc, tf, predict_pb2, prediction_service_pb2_grpc
