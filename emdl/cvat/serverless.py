"""A run as a nuclio serverless function for CVAT's "AI tools" (a self-hosted CVAT with nuclio):
the folder that ``emdl export RUN_DIR --cvat-serverless DIR`` writes and ``nuctl deploy`` builds.

The folder holds:

- ``function.yaml``: nuclio's function config with CVAT's annotations (``type: detector``,
  ``spec``: the run's labels as JSON, ``[{"id": 0, "name": "bubble", "type": "mask",
  "attributes": [{"name": "score", "input_type": "text", "values": [""]}]}]``; "rectangle"
  for a detector), runtime ``python:3.11``, handler ``main:handler`` and a build on
  ``python:3.11-slim`` that pip-installs ``requirements.txt``;
- ``main.py``: ``init_context`` loads the run once, ``handler`` answers CVAT's request (JSON
  ``{"image": base64 image file, "threshold": optional}``) with CVAT's JSON list of shapes
  (:func:`detector_results`);
- ``run/``: the run's files that prediction needs (config, best weights, calibration,
  metrics);
- ``emdl/``: a copy of this emdl package, and ``requirements.txt``: its dependencies.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
from pathlib import Path

from PIL import Image

from emdl.api import Run, load_run
from emdl.cvat.shapes import (
    DIAMETER,
    SCORE,
    attribute_values,
    check_pixel_size,
    detect,
    image_array,
    shape_type,
)
from emdl.errors import EmdlError, InputError
from emdl.train.callbacks import BEST_WEIGHTS

# The run's files that loading and post-processing read (those present are copied).
RUN_FILES = ("config.json", BEST_WEIGHTS, "calibration.json", "metrics.json")

FUNCTION_YAML = """\
metadata:
  name: {name}
  namespace: cvat
  annotations:
    name: {title}
    type: detector
    framework: tensorflow
    spec: |
{spec}

spec:
  description: {description}
  runtime: 'python:3.11'
  handler: main:handler
  eventTimeout: 300s

  build:
    image: {image}
    baseImage: python:3.11-slim

    directives:
      preCopy:
        - kind: WORKDIR
          value: /opt/nuclio
      postCopy:
        - kind: RUN
          value: pip install --no-cache-dir -r /opt/nuclio/requirements.txt

  triggers:
    myHttpTrigger:
      maxWorkers: 1
      kind: 'http'
      workerAvailabilityTimeoutMilliseconds: 10000
      attributes:
        maxRequestBodySize: 33554432 # 32MB

  platform:
    attributes:
      restartPolicy:
        name: always
        maximumRetryCount: 3
      mountMode: volume
"""

MAIN_PY = '''\
"""CVAT serverless function (nuclio) of the emdl run in ./run, written by
``emdl export RUN_DIR --cvat-serverless DIR``. CVAT posts {{"image": base64 image file,
"threshold": optional confidence}}; the answer is CVAT's JSON list of shapes."""

import base64
import binascii
import io
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the copy of emdl beside this file

PIXEL_SIZE_NM = {pixel_size!r}  # nm per pixel: adds the diameter_nm attribute when set


def init_context(context):
    import emdl

    context.user_data.run = emdl.load_run(HERE / "run")


def handler(context, event):
    from PIL import Image, UnidentifiedImageError

    from emdl.cvat.serverless import detector_results
    from emdl.errors import EmdlError

    try:
        data = event.body if isinstance(event.body, dict) else json.loads(event.body)
        image = Image.open(io.BytesIO(base64.b64decode(data["image"])))
        threshold = data.get("threshold")
        threshold = None if threshold is None else float(threshold)
        results = detector_results(context.user_data.run, image, threshold, PIXEL_SIZE_NM)
    except (
        KeyError, TypeError, ValueError, binascii.Error, UnidentifiedImageError, EmdlError
    ) as exc:
        # One line for CVAT to show: what was wrong with the request.
        body, status = f"bad request: {{type(exc).__name__}}: {{exc}}", 400
    else:
        body, status = results, 200
    return context.Response(
        body=json.dumps(body), headers={{}}, content_type="application/json", status_code=status
    )
'''


def label_spec(run: Run, pixel_size_nm: float | None = None) -> list[dict]:
    """The run's classes as CVAT's serverless label spec: ``{"id", "name", "type",
    "attributes"}`` per class (ids 0, 1, ... in the run's order), attributes ``score`` and, with
    a pixel size, ``diameter_nm``, both text."""
    names = [SCORE] + ([DIAMETER] if pixel_size_nm is not None else [])
    attributes = [{"name": name, "input_type": "text", "values": [""]} for name in names]
    return [
        {"id": index, "name": name, "type": shape_type(run), "attributes": attributes}
        for index, name in enumerate(run.classes)
    ]


def detector_results(
    run: Run,
    image: Image.Image,
    threshold: float | None = None,
    pixel_size_nm: float | None = None,
) -> list[dict]:
    """CVAT's answer of a detector function for one image: per defect scoring at least
    ``threshold`` (None: the run's own post-processing, see :func:`emdl.cvat.shapes.detect`)
    ``{"confidence": str, "label": name, "points", "type", "attributes": [{"name", "value"}]}``.

    A box is ``"type": "rectangle"`` with points ``[x0, y0, x1, y1]``. A mask defect is
    ``"type": "mask"`` with ``"points"`` its outline polygon ``[x0, y0, x1, y1, ...]`` (which
    CVAT keeps when asked to convert masks to polygons) and ``"mask"`` the 0/1 pixels of its
    bounding box row by row followed by the box's first and last column and row (inclusive):
    ``[..., xtl, ytl, xbr, ybr]``.
    """
    results = []
    for item in detect(run, image_array(image), threshold, pixel_size_nm):
        shape = {"confidence": str(item.score), "label": item.label}
        if item.mask is None:
            shape.update(points=list(item.box), type="rectangle")
        else:
            left, top = item.origin
            height, width = item.mask.shape
            cells = item.mask.astype(int).ravel().tolist()
            shape.update(
                points=item.polygon,
                mask=[*cells, left, top, left + width - 1, top + height - 1],
                type="mask",
            )
        shape["attributes"] = [
            {"name": name, "value": value} for name, value in attribute_values(item).items()
        ]
        results.append(shape)
    return results


def _requirements() -> list[str]:
    """emdl's own dependencies (no extras), as the installed package declares them."""
    try:
        required = importlib.metadata.requires("emdl") or []
    except importlib.metadata.PackageNotFoundError:
        raise EmdlError("emdl is not installed as a package (pip install -e .)") from None
    return [line for line in required if "extra ==" not in line]


def write_serverless_function(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    pixel_size_nm: float | None = None,
) -> Path:
    """Write the nuclio function folder of the finished run in ``run_dir`` to ``out_dir`` (see
    the module) and return ``out_dir``. ``pixel_size_nm``: nm per pixel of the images CVAT will
    send, which adds the ``diameter_nm`` attribute.

    An InputError when ``out_dir`` already holds files (nothing is overwritten) or ``run_dir``
    is not a finished run; nothing is written then.
    """
    import emdl

    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(out, "already holds files; give a new or empty folder")
    pixel_size_nm = check_pixel_size(pixel_size_nm)
    run = load_run(run_dir)
    run_name = Path(os.path.abspath(run_dir)).name
    slug = re.sub(r"[^a-z0-9]+", "-", run_name.lower()).strip("-") or "run"
    spec = json.dumps(label_spec(run, pixel_size_nm), indent=2)
    text = FUNCTION_YAML.format(
        name=f"emdl-{slug}",
        title=json.dumps(f"emdl {run_name}"),
        spec="\n".join("      " + line for line in spec.splitlines()),
        description=json.dumps(
            f"emdl {run.config.kind} run {run_name}: {', '.join(run.classes)} ({shape_type(run)})"
        ),
        image=f"cvat.emdl.{slug}",
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "function.yaml").write_text(text)
    (out / "main.py").write_text(MAIN_PY.format(pixel_size=pixel_size_nm))
    (out / "requirements.txt").write_text("\n".join(_requirements()) + "\n")
    (out / "run").mkdir()
    for name in RUN_FILES:
        if (Path(run_dir) / name).is_file():
            shutil.copy2(Path(run_dir) / name, out / "run" / name)
    shutil.copytree(
        Path(emdl.__file__).parent,
        out / "emdl",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return out
