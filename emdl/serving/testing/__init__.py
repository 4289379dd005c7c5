"""Local stand-ins for TF Serving that run SavedModels, for checking clients (and a model's
export) without the ``tensorflow_model_server`` binary: :class:`GrpcTestServer` (the ``serving``
extra) and :class:`RestTestServer`, both on a free port of ``localhost``.

```python
from emdl.serving import predict_rest
from emdl.serving.testing import RestTestServer, ServedModels

with RestTestServer(ServedModels.from_serving_dir("serving")) as server:
    outputs = predict_rest(server.url, "unet_bubbles", image)
```
"""

from __future__ import annotations

from emdl.serving.testing.grpc_server import GrpcTestServer
from emdl.serving.testing.models import ServedModels, StatusError
from emdl.serving.testing.rest_server import RestTestServer

__all__ = ["GrpcTestServer", "RestTestServer", "ServedModels", "StatusError"]
