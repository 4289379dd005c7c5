"""emdl.train on several machines: two worker processes on this one train a tiny U-Net under
MultiWorkerMirroredStrategy through the real train_run, sharing a run directory, and end with the
same weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from emdl.models.unet import UNetConfig
from emdl.train.config import DataConfig, RunConfig, TrainingConfig
from tests.conftest import REPO, box_image, box_xml

TIMEOUT = 240  # seconds for both workers together

# One worker: argv = index, config JSON, run directory, output folder. It saves the weights it
# starts training from (after the strategy has broadcast worker 0's) and the trained ones.
WORKER = """
import json, sys
from pathlib import Path

import keras
import numpy as np

from emdl.train.config import RunConfig
from emdl.train.run import train_run

index, config_path, run_dir, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])


class SaveInitial(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        np.savez(out / f"initial{index}.npz", *self.model.get_weights())


config = RunConfig.from_dict(json.loads(Path(config_path).read_text()))
result = train_run(config, run_dir, verbose=0, callbacks=[SaveInitial()])
np.savez(out / f"weights{index}.npz", *result.model.get_weights())
"""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def load_arrays(path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[f"arr_{k}"] for k in range(len(data.files))]


def run_workers(tmp_path, config_path, run_dir, count: int = 2) -> None:
    """Start ``count`` workers on 127.0.0.1 and wait for all; fails with their stderr tails if
    any fails or they take longer than TIMEOUT (the rest are killed)."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}
    processes, logs = [], []
    for index in range(count):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        )
        log = tmp_path / f"worker{index}.log"
        logs.append(log)
        with open(log, "w") as stderr:
            command = [sys.executable, str(script), str(index), str(config_path), str(run_dir)]
            processes.append(
                subprocess.Popen(
                    [*command, str(tmp_path)],
                    env=env,
                    cwd=REPO,
                    stdin=subprocess.DEVNULL,
                    stdout=stderr,
                    stderr=subprocess.STDOUT,
                )
            )
    deadline = time.monotonic() + TIMEOUT
    try:
        # A worker that fails leaves the others waiting on it, so stop at the first failure.
        while any(p.poll() is None for p in processes):
            if time.monotonic() > deadline or any(p.poll() for p in processes):
                break
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
    codes = [process.returncode for process in processes]
    if any(codes):
        tails = "\n".join(
            f"--- worker {index} (exit {code}), last lines:\n{log.read_text()[-4000:]}"
            for index, (code, log) in enumerate(zip(codes, logs, strict=True))
        )
        timed_out = " (timed out)" if time.monotonic() > deadline else ""
        pytest.fail(f"workers exited with {codes}{timed_out}\n{tails}")


@pytest.mark.slow
def test_two_workers_train_the_same_model(labeled_folder, tmp_path):
    labels, images = labeled_folder(
        {
            "a.png": (box_image(64), box_xml("a.png", 64)),
            "b.png": (box_image(64), box_xml("b.png", 64)),
        }
    )
    config = RunConfig(
        data=DataConfig(
            labels=(str(labels),), images=str(images), window=32, stride=32, batch_size=2
        ),
        model=UNetConfig(depth=2, filters=4),
        training=TrainingConfig(epochs=1, steps_per_epoch=3, ema_momentum=0),
    )
    config_path = tmp_path / "run.json"
    config.save(config_path)
    run_dir = tmp_path / "run"  # shared, as on a cluster file system

    run_workers(tmp_path, config_path, run_dir)

    initial = [load_arrays(tmp_path / f"initial{i}.npz") for i in range(2)]
    trained = [load_arrays(tmp_path / f"weights{i}.npz") for i in range(2)]
    assert len(trained[0]) == len(trained[1]) == len(initial[0]) > 0
    # Both start from worker 0's initial weights and end equal, moving statistics included.
    for first, second in zip(*initial, strict=True):
        assert np.array_equal(first, second)
    for k, (first, second) in enumerate(zip(*trained, strict=True)):
        assert np.array_equal(first, second), f"weight {k} differs between the workers"
    # Training moved every weight (kernels, biases, batch-norm scales and moving statistics).
    for k, (before, after) in enumerate(zip(initial[0], trained[0], strict=True)):
        assert not np.array_equal(before, after), f"weight {k} did not change"

    # The chief (worker 0) wrote the run directory; worker 1 only its checkpoints, beside it.
    for name in ("config.json", "metrics.json", "history.csv", "best.weights.h5"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "saved_model" / "saved_model.pb").is_file()
    assert json.loads((run_dir / "metrics.json").read_text())["evaluated_on"] == "training"
    written_by_worker1 = {path.name for path in (run_dir / "worker_tmp").iterdir()}
    assert written_by_worker1 == {"best.weights.h5", "history.csv"}
    assert not (run_dir / "backup").exists()  # the finished run removed its backup
