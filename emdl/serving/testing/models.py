"""SavedModels by name and version, looked up and run the way TF Serving does it, for the
local test servers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from emdl.errors import InputError


class StatusError(Exception):
    """A request TF Serving would refuse: ``code`` is the gRPC status name (``NOT_FOUND``,
    ``INVALID_ARGUMENT``, ``FAILED_PRECONDITION``), ``message`` TF Serving's text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ServedModels:
    """The SavedModels a test server serves, loaded with ``tf.saved_model.load``.

    ``models`` maps a model name to a SavedModel directory (served as version 1) or to a TF
    Serving base path, a folder of numbered versions ``BASE/N/saved_model.pb``."""

    def __init__(self, models: Mapping[str, str | os.PathLike]) -> None:
        self._loaded = {
            name: {
                version: tf.saved_model.load(os.fspath(path))
                for version, path in _versions(Path(base)).items()
            }
            for name, base in models.items()
        }

    @classmethod
    def from_serving_dir(cls, path: str | os.PathLike) -> ServedModels:
        """Every model of a serving layout ``DIR/NAME/N/`` (what ``emdl export --serving-dir``
        writes)."""
        path = Path(path)
        if not path.is_dir():
            raise InputError(path, "is not a folder")
        models = {child.name: child for child in sorted(path.iterdir()) if _numbered(child)}
        if not models:
            raise InputError(path, "has no NAME/N/saved_model.pb")
        return cls(models)

    def signature(self, model: str, version: int | None, name: str):
        """The concrete function of signature ``name`` (``""``: ``serving_default``) of
        ``model`` at ``version`` (None: the newest), and the version it is."""
        versions = self._loaded.get(model, {})
        if version is None and versions:
            version = max(versions)
        if version not in versions:
            wanted = f"Latest({model})" if version is None else f"Specific({model}, {version})"
            raise StatusError("NOT_FOUND", f"Servable not found for request: {wanted}")
        signatures = versions[version].signatures
        name = name or "serving_default"
        if name not in signatures:
            raise StatusError("FAILED_PRECONDITION", f'Serving signature key "{name}" not found.')
        return signatures[name], version

    def metadata(self, model: str, version: int | None) -> dict:
        """GetModelMetadata's answer as TF Serving's REST API writes it: every signature's
        inputs and outputs with their dtypes (``DT_FLOAT``) and shapes."""
        _, version = self.signature(model, version, "")
        signatures = self._loaded[model][version].signatures
        return {
            "model_spec": {"name": model, "signature_name": "", "version": str(version)},
            "metadata": {
                "signature_def": {
                    "signature_def": {
                        key: _signature_def(function) for key, function in signatures.items()
                    }
                }
            },
        }


def input_specs(function) -> dict[str, tf.TensorSpec]:
    """A signature's inputs by name."""
    return dict(function.structured_input_signature[1])


def run(function, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``function`` (a signature) on ``inputs`` by name, checked as TF Serving checks them."""
    specs = input_specs(function)
    sent, wanted = set(inputs), set(specs)
    if sent != wanted:
        raise StatusError(
            "INVALID_ARGUMENT",
            f"input size does not match signature: {len(sent)}!={len(wanted)} "
            f"len({_names(sent)}) != len({_names(wanted)}). Sent extra: {_names(sent - wanted)}. "
            f"Missing but required: {_names(wanted - sent)}.",
        )
    tensors = {}
    for index, (name, spec) in enumerate(sorted(specs.items())):
        array = np.asarray(inputs[name])
        if array.dtype != spec.dtype.as_numpy_dtype:
            raise StatusError(
                "INVALID_ARGUMENT",
                f"Expects arg[{index}] to be {spec.dtype.name} but {array.dtype} is provided",
            )
        if not spec.shape.is_compatible_with(array.shape):
            raise StatusError(
                "INVALID_ARGUMENT",
                f"input {name!r} has shape {list(array.shape)}, the signature takes "
                f"{_shape(spec.shape)}",
            )
        tensors[name] = tf.constant(array)
    try:
        outputs = function(**tensors)
    except (tf.errors.OpError, ValueError, TypeError) as error:
        message = getattr(error, "message", None) or str(error)
        raise StatusError("INVALID_ARGUMENT", message.strip().splitlines()[0]) from None
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def _versions(base: Path) -> dict[int, Path]:
    if (base / "saved_model.pb").is_file():
        return {1: base}
    versions = (
        {
            int(child.name): child
            for child in base.iterdir()
            if child.name.isdigit() and (child / "saved_model.pb").is_file()
        }
        if base.is_dir()
        else {}
    )
    if not versions:
        raise InputError(base, "is neither a SavedModel nor a folder of numbered SavedModels")
    return versions


def _numbered(path: Path) -> bool:
    return path.is_dir() and any(
        child.name.isdigit() and (child / "saved_model.pb").is_file() for child in path.iterdir()
    )


def _signature_def(function) -> dict:
    def info(spec) -> dict:
        return {
            "dtype": types_pb2.DataType.Name(spec.dtype.as_datatype_enum),
            "tensor_shape": _shape_proto(spec.shape),
            "name": spec.name or "",
        }

    return {
        "inputs": {name: info(spec) for name, spec in input_specs(function).items()},
        "outputs": {name: info(spec) for name, spec in function.structured_outputs.items()},
        "method_name": "tensorflow/serving/predict",
    }


def _shape_proto(shape: tf.TensorShape) -> dict:
    if shape.rank is None:
        return {"dim": [], "unknown_rank": True}
    dims = [{"size": str(-1 if size is None else size), "name": ""} for size in shape.as_list()]
    return {"dim": dims, "unknown_rank": False}


def _shape(shape: tf.TensorShape) -> str:
    return "[?]" if shape.rank is None else str([-1 if s is None else s for s in shape.as_list()])


def _names(names: set[str]) -> str:
    return "{" + ",".join(sorted(names)) + "}"
