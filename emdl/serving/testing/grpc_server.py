"""An in-process gRPC server with TF Serving's ``PredictionService`` (from
tensorflow-serving-api's own service definition) that runs SavedModels: for checking gRPC
clients without the ``tensorflow_model_server`` binary."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent import futures

import tensorflow as tf

from emdl.serving.grpc import CHANNEL_OPTIONS
from emdl.serving.testing.models import ServedModels, StatusError, run


class GrpcTestServer:
    """``PredictionService/Predict`` on ``localhost`` at a free port (``target``), serving
    ``models`` (:class:`ServedModels`, or a mapping of names to SavedModel folders).

    Like TF Serving, an unknown model name or version answers ``NOT_FOUND``, an unknown
    signature ``FAILED_PRECONDITION`` and inputs the signature cannot take
    ``INVALID_ARGUMENT``; the other methods answer ``UNIMPLEMENTED``. Use it as a context
    manager, or call :meth:`stop`."""

    def __init__(
        self, models: ServedModels | Mapping[str, str | os.PathLike], host: str = "localhost"
    ) -> None:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.models = models if isinstance(models, ServedModels) else ServedModels(models)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4), options=CHANNEL_OPTIONS
        )
        servicer = _servicer_class(prediction_service_pb2_grpc.PredictionServiceServicer)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            servicer(self.models), self._server
        )
        self.port = self._server.add_insecure_port(f"{host}:0")
        self.target = f"{host}:{self.port}"
        self._server.start()

    def stop(self) -> None:
        """Stops serving at once; requests in flight are cancelled."""
        self._server.stop(grace=None).wait()

    def __enter__(self) -> GrpcTestServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _servicer_class(base: type) -> type:
    """A ``PredictionServiceServicer`` subclass whose ``Predict`` runs :class:`ServedModels`
    (built here because tensorflow-serving-api is imported only when a server is made)."""
    import grpc
    from tensorflow_serving.apis import predict_pb2

    class Servicer(base):
        def __init__(self, models: ServedModels) -> None:
            self.models = models

        def Predict(self, request, context):  # noqa: N802 (the gRPC method's name)
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            try:
                function, version = self.models.signature(spec.name, version, spec.signature_name)
                inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
                outputs = run(function, inputs)
            except StatusError as failure:
                context.abort(grpc.StatusCode[failure.code], failure.message)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = version
            response.model_spec.signature_name = spec.signature_name or "serving_default"
            for name, array in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(array))
            return response

    return Servicer
