"""emdl.train on several devices of one machine: a tiny U-Net trains through the real train_run
under MirroredStrategy with two replicas (two logical CPU devices, as two GPUs would be), each
replica seeing half of every global batch and ending with the same trained weights."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, box_image, box_xml, tiny_config

TIMEOUT = 120  # seconds for the whole subprocess

# argv = config JSON, run directory, record JSON. The CPU is split into two logical devices before
# TF initializes them (hence a fresh process), and train_run's strategy is a MirroredStrategy over
# both. It records the batch train_run asked of the kind's datasets and the leading dimension of
# the first training batch, the (replica, batch size) of every train_step a replica runs, and, at
# the end of training (written then, so it survives a failure in the rest of the run), every
# variable's per-replica copies compared with each other and with the weights training began from.
SCRIPT = """
import json, sys
from pathlib import Path

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import numpy as np

import emdl.train.run
from emdl.train.config import RunConfig
from emdl.train.kinds.unet import KIND

config_path, run_dir, record_path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
emdl.train.run.choose_strategy = lambda mixed_precision: strategy
record = {
    "devices": len(tf.config.list_logical_devices("CPU")),
    "replicas": strategy.num_replicas_in_sync,
    "steps": [],
}
datasets, build = KIND.datasets, KIND.build


def recording_datasets(training, validation, classes, config, batch):
    train, *rest = datasets(training, validation, classes, config, batch)
    record["batch"] = batch
    record["first_batch"] = [int(t.shape[0]) for t in tf.nest.flatten(next(iter(train)))]
    return (train, *rest)


def note_step(replica, size):
    record["steps"].append([int(replica), int(size)])
    return np.int64(0)


def recording_build(config, *, compiled=True):
    model = build(config, compiled=compiled)
    train_step = model.train_step

    def recording_train_step(data):  # runs once per replica and step, on that replica's part
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        size = tf.shape(tf.nest.flatten(data)[0])[0]
        tf.numpy_function(note_step, [replica, size], tf.int64)
        return train_step(data)

    model.train_step = recording_train_step
    return model


KIND.datasets, KIND.build = recording_datasets, recording_build


def copies(variable):
    # A Keras 3 variable holds a tf.distribute MirroredVariable in .value under the strategy.
    return [np.array(c) for c in strategy.experimental_local_results(variable.value)]


class Replicas(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.initial = [copies(v) for v in self.model.weights]

    def on_train_end(self, logs=None):
        final = [copies(v) for v in self.model.weights]
        record["weights"] = [
            {
                "name": v.path,
                "trainable": v.trainable,
                "kind": type(v.value).__name__,
                "copies": len(now),
                "equal_at_start": all(np.array_equal(before[0], c) for c in before),
                "equal_at_end": all(np.array_equal(now[0], c) for c in now),
                "changed": all(not np.array_equal(b, c) for b, c in zip(before, now)),
            }
            for v, before, now in zip(self.model.weights, self.initial, final)
        ]
        record_path.write_text(json.dumps(record))


config = RunConfig.from_dict(json.loads(Path(config_path).read_text()))
emdl.train.run.train_run(config, run_dir, verbose=0, callbacks=[Replicas()])
"""


@pytest.mark.slow
def test_two_replicas_train_the_same_weights_on_halves_of_the_batch(labeled_folder, tmp_path):
    labels, images = labeled_folder(
        {
            "a.png": (box_image(64), box_xml("a.png", 64)),
            "b.png": (box_image(64), box_xml("b.png", 64)),
        }
    )
    config = tiny_config(labels, images, epochs=1)
    config = dataclasses.replace(
        config, training=dataclasses.replace(config.training, steps_per_epoch=3)
    )
    config_path = tmp_path / "run.json"
    config_path.write_text(json.dumps(config.to_dict()))
    run_dir, record_path = tmp_path / "run", tmp_path / "record.json"
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    env.pop("TF_CONFIG", None)
    command = [sys.executable, "-c", SCRIPT, str(config_path), str(run_dir), str(record_path)]
    done = subprocess.run(
        command,
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    output = f"exit {done.returncode}, last lines:\n{done.stderr[-4000:]}"
    if not record_path.is_file():
        pytest.fail(f"training did not finish: {output}")
    record = json.loads(record_path.read_text())

    # Two replicas, and the global batch is the per-replica batch_size twice over: asked of the
    # datasets, built by them, and split in two halves that the replicas train on at every step.
    assert record["devices"] == record["replicas"] == 2
    assert record["batch"] == 2 * config.data.batch_size
    assert set(record["first_batch"]) == {record["batch"]}  # images and targets alike
    steps = record["steps"]
    assert sorted(steps) == sorted(
        [replica, config.data.batch_size]
        for replica in range(2)
        for _ in range(config.training.steps_per_epoch)
    ), steps

    # Every variable is mirrored on both devices; the copies start equal, the trainable ones end
    # equal (the gradients are all-reduced), and training moved every copy of every variable.
    weights = record["weights"]
    assert len(weights) > 0
    assert {w["kind"] for w in weights} == {"MirroredVariable"}
    assert {w["copies"] for w in weights} == {2}
    assert [w["name"] for w in weights if not w["equal_at_start"]] == []
    trainable = [w for w in weights if w["trainable"]]
    assert len(trainable) > len(weights) / 2
    assert [w["name"] for w in trainable if not w["equal_at_end"]] == []
    assert [w["name"] for w in weights if not w["changed"]] == []

    # The batch-norm statistics, which Keras updates on each replica apart, are averaged.
    assert [w["name"] for w in weights if not w["equal_at_end"]] == []

    # The rest of the run: scores, plots and the SavedModel of the trained model (evaluated on
    # a copy of its own: the distributed model would predict every batch once per replica).
    assert done.returncode == 0, output
    for name in ("config.json", "history.csv", "best.weights.h5", "metrics.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "saved_model" / "saved_model.pb").is_file()
    assert json.loads((run_dir / "metrics.json").read_text())["evaluated_on"] == "validation"
