"""Clients of a running TF Serving: :func:`predict_rest` (REST, standard library) and
:func:`predict_grpc` (gRPC, the ``serving`` extra). Both send an image as the input ``image``
``(B, H, W, 1)`` of a signature (``serving_default`` unless named) and return its outputs as
NumPy arrays by name. :mod:`emdl.serving.testing` has local stand-ins for TF Serving that run
a SavedModel, for checks without the server binary."""

from __future__ import annotations

from emdl.serving.errors import ServingError
from emdl.serving.grpc import predict_grpc
from emdl.serving.rest import predict_rest

__all__ = ["ServingError", "predict_grpc", "predict_rest"]
