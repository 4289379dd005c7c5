#!/usr/bin/env bash
# The "run is a product" scenario from outside the clone, with emdl installed from its wheel
# (emdl[serving]): a tiny run, the same run again from its stored config.json into a new
# directory, the refusal of the finished run, an export into TF Serving's layout, that SavedModel
# called in a fresh process on a uint8 image, both serving clients against emdl's test servers,
# and emdl.load_run(...).predict(array). Usage: wheel_scenario.sh BIN_DIR DATA_DIR (cwd: scratch).
set -euo pipefail
bin=$1
bubbles=$2/bubbles
cat > tiny.json <<JSON
{
  "kind": "unet",
  "data": {"labels": ["$bubbles/DL_for_Microscopy_Train_Lab_1.xml",
                      "$bubbles/DL_for_Microscopy_Train_Lab_2.xml"],
           "images": "$bubbles", "missing": "skip", "validation_fraction": 0.5,
           "window": 64, "batch_size": 2},
  "model": {"depth": 2, "filters": 4},
  "training": {"epochs": 1, "steps_per_epoch": 2}
}
JSON
"$bin/emdl" -q train tiny.json --out run1
"$bin/emdl" -q train run1/config.json --out run2
test -f run2/metrics.json
if "$bin/emdl" train tiny.json --out run1 2>refusal.txt; then
    echo "scenario: a finished run was trained again" >&2
    exit 1
fi
grep -q "run1: holds a finished run; give --overwrite" refusal.txt
"$bin/emdl" export run1 --serving-dir serving
test -f serving/run1/1/saved_model.pb && test -f serving/models.config
"$bin/python" - <<'PY'
import numpy as np
import tensorflow as tf

loaded = tf.saved_model.load("serving/run1/1")
image = np.random.default_rng(0).integers(0, 256, (1, 100, 90, 1)).astype(np.uint8)
probabilities = loaded.serve(tf.constant(image))["probabilities"].numpy()
assert probabilities.shape == (1, 100, 90, 1), probabilities.shape
PY
"$bin/python" - <<'PY'
import numpy as np

import emdl
from emdl.serving import predict_grpc, predict_rest
from emdl.serving.testing import GrpcTestServer, RestTestServer, ServedModels

image = np.random.default_rng(1).integers(0, 256, (80, 70)).astype(np.uint8)
models = ServedModels.from_serving_dir("serving")
with RestTestServer(models) as rest, GrpcTestServer(models) as grpc:
    by_rest = predict_rest(rest.url, "run1", image)["probabilities"]
    by_grpc = predict_grpc(grpc.target, "run1", image)["probabilities"]
assert by_rest.shape == by_grpc.shape == (1, 80, 70, 1)
assert np.abs(by_rest - by_grpc).max() < 1e-5
found = emdl.load_run("run1").predict(image)
assert found.labels.shape == (80, 70)
print(f"scenario: ok ({len(found)} defects found by the tiny run)")
PY
