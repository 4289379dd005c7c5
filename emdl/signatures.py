"""The signatures of every SavedModel emdl exports, by the dtype of their ``image`` input.

A SavedModel signature has one dtype per input, so each export has three with the same outputs:
``serving_default`` (float32: what TF Serving's REST API feeds JSON numbers to) and
``serving_uint8`` / ``serving_uint16`` (the integers a detector writes, sent as they are over
gRPC). Kept free of TensorFlow, so that the serving clients can pick one without loading it.
"""

from __future__ import annotations

# Signature key -> NumPy / TensorFlow dtype name of its ``image``.
SIGNATURES = {"serving_default": "float32", "serving_uint8": "uint8", "serving_uint16": "uint16"}


def signature_for(dtype_name: str) -> str:
    """The signature that takes ``image`` of ``dtype_name`` (``"uint8"`` -> ``"serving_uint8"``);
    anything else goes to ``serving_default`` as float32."""
    for key, name in SIGNATURES.items():
        if name == dtype_name:
            return key
    return "serving_default"
