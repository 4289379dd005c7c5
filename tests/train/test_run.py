"""emdl.train: a tiny run writes a complete run directory, resumes after an interruption, and
its SavedModel serves any image size."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from emdl.cli import main
from emdl.commands.evaluate import evaluate_run
from emdl.data.normalize import min_max
from emdl.errors import InputError
from emdl.models.unet import UNetConfig
from emdl.train.config import RunConfig, load_config
from emdl.train.run import load_run, train_run
from tests.conftest import box_image, box_xml, tiny_config


@pytest.fixture
def folder(labeled_folder):
    """Two labeled 64 x 64 images: a.png for training, b.png for validation."""
    labels, images = labeled_folder(
        {
            "a.png": (box_image(64), box_xml("a.png", 64)),
            "b.png": (box_image(64), box_xml("b.png", 64)),
        }
    )
    return labels, images


@pytest.mark.slow
def test_a_run_writes_its_directory(folder, tmp_path):
    run_dir = tmp_path / "run"
    result = train_run(tiny_config(*folder), run_dir, verbose=0)
    for name in (
        "config.json",
        "history.csv",
        "best.weights.h5",
        "metrics.json",
        "curves.png",
        "overlays.png",
        "saved_model/saved_model.pb",
        "model.keras",
        "tensorboard",
    ):
        assert (run_dir / name).exists(), name
    assert not (run_dir / "backup").exists()  # removed once the run finished
    config = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    assert config.classes == ("bubble", "loop")
    assert config.model == UNetConfig(depth=2, filters=4, classes=2)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "validation"
    assert {"iou", "dice", "pixel_accuracy", "iou_bubble", "images"} <= set(metrics)
    assert metrics == json.loads(json.dumps(result.metrics))
    with open(run_dir / "history.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert {"loss", "iou", "val_iou", "dice", "pixel_accuracy"} <= set(rows[0])

    # The run directory rebuilds the model, and evaluating it gives the run's own scores.
    _, model = load_run(run_dir)
    image = np.random.default_rng(0).random((1, 32, 32, 1)).astype(np.float32)
    assert np.array_equal(model.predict_on_batch(image), result.model.predict_on_batch(image))
    # model.keras loads whole in a fresh process, through emdl.load_model.
    np.save(tmp_path / "image.npy", image)
    script = (
        "import sys, numpy as np, emdl; m = emdl.load_model(sys.argv[1]); "
        "np.save(sys.argv[2], m.predict_on_batch(np.load(sys.argv[3])))"
    )
    out = tmp_path / "out.npy"
    subprocess.run(
        [sys.executable, "-c", script, run_dir / "model.keras", out, tmp_path / "image.npy"],
        check=True,
        capture_output=True,
    )
    np.testing.assert_allclose(np.load(out), model.predict_on_batch(image), atol=1e-6)
    labels, images = folder
    validation = metrics["images"][0]["name"]
    _, scores = evaluate_run(run_dir, labels, images)
    by_name = {entry["name"]: entry for entry in scores["images"]}
    assert by_name[validation] == metrics["images"][0]

    # The SavedModel serves any height, width and intensity range, as uint8, uint16 or float32,
    # min-max scaling each image inside as training does.
    loaded = tf.saved_model.load(str(run_dir / "saved_model"))
    served = loaded.signatures["serving_default"]
    counts = np.random.default_rng(1).integers(0, 256, (2, 30, 45, 1)).astype(np.uint8)
    probabilities = served(image=tf.constant(counts, tf.float32))["probabilities"].numpy()
    assert probabilities.shape == (2, 30, 45, 3)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1, rtol=1e-5)
    padded = np.pad(counts, [(0, 0), (0, 2), (0, 3), (0, 0)], mode="symmetric")
    direct = model.predict_on_batch(np.asarray(min_max(padded.astype(np.float32))))[:, :30, :45]
    np.testing.assert_allclose(probabilities, direct, atol=1e-5)
    for key, dtype in (("serving_uint8", np.uint8), ("serving_uint16", np.uint16)):
        typed = loaded.signatures[key](image=tf.constant(counts.astype(dtype)))
        np.testing.assert_allclose(typed["probabilities"], probabilities, atol=1e-6)
    np.testing.assert_allclose(
        loaded.serve(tf.constant(counts))["probabilities"], probabilities, atol=1e-6
    )


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated interruption")


@pytest.mark.slow
def test_an_interrupted_run_resumes_where_it_stopped(folder, tmp_path):
    run_dir = tmp_path / "run"
    config = tiny_config(*folder, epochs=4)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, run_dir, verbose=0, callbacks=[Interrupt()])
    assert (run_dir / "backup").is_dir()
    started = EpochsStarted()
    train_run(config, run_dir, verbose=0, callbacks=[started])
    assert started.epochs == [2, 3]  # the two finished epochs are not trained again
    with open(run_dir / "history.csv") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["0", "1", "2", "3"]


class EpochsStarted(keras.callbacks.Callback):
    """Records the epochs a run starts."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


@pytest.mark.slow
def test_train_and_evaluate_commands(folder, tmp_path, capsys):
    labels, images = folder
    config_path = tmp_path / "run.json"
    config_path.write_text(
        json.dumps(
            {
                "data": {
                    "labels": [labels.name],
                    "images": images.name,
                    "window": 32,
                    "stride": 32,
                    "batch_size": 2,
                    "validation_fraction": 0.5,
                },
                "model": {"depth": 2, "filters": 4},
                "loss": {"focal": 1.0, "dice": 1.0},
                "training": {"epochs": 1, "steps_per_epoch": 2},
            }
        )
    )
    assert load_config(config_path).data.labels == (str(labels),)
    run_dir = tmp_path / "cli_run"
    assert main(["train", str(config_path), "--out", str(run_dir)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed.startswith(f"{run_dir}: iou ") and printed.endswith("on the validation images")
    scores = tmp_path / "scores.json"
    status = main(
        [
            "evaluate",
            str(run_dir),
            "--labels",
            str(labels),
            "--images",
            str(images),
            "--json",
            str(scores),
        ]
    )
    assert status == 0
    assert json.loads(scores.read_text())["evaluated_images"] == 2
    first, second = capsys.readouterr().out.splitlines()[-2:]
    assert first.endswith("on 2 images")
    assert second.startswith(("calibrated: ", "not calibrated: "))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not JSON"),
        ('{"data": {"labels": ["a.xml"], "images": "."}, "modle": {}}', "unknown section(s)"),
        ('{"data": {"labels": ["a.xml"], "images": ".", "windows": 3}}', "data: unknown setting"),
        ('{"data": {"labels": ["a.xml"], "images": "."}, "loss": {"l2": 1}}', "loss: terms"),
        (
            '{"data": {"labels": ["a.xml"], "images": "."}, "augmentation": {"spin": {}}}',
            "unknown augmentation 'spin'",
        ),
        (
            '{"data": {"labels": ["a.xml"], "images": []}}',
            "data: images: expected a folder or a list of folders",
        ),
        (
            '{"data": {"labels": ["a.xml"], "images": ["real", 3]}}',
            'data.images: expected a string or a list of strings, got ["real", 3]',
        ),
        (
            '{"data": {"labels": ["a.xml"], "images": ".", "line_width": -1}}',
            "data.line_width: expected a positive number of pixels, got -1",
        ),
        (
            '{"data": {"labels": ["a.xml"], "images": "."}, '
            '"training": {"early_stopping_patience": -2}}',
            "training.early_stopping_patience: expected an integer >= 0 (0: never stop early), "
            "got -2",
        ),
        (
            '{"data": {"labels": ["a.xml"], "images": "."}, "classes": ["bubble", "bubble"]}',
            "classes: a name repeats in ['bubble', 'bubble']",
        ),
        (
            '{"data": {"labels": ["a.xml"], "images": "."}, "classes": [3]}',
            "classes[0]: expected a string, got 3",
        ),
        (
            '{"data": {"labels": ["a.xml"], "images": "."}, "classes": ["a\\nb"]}',
            "classes[0]: label 'a\\nb' has a control character (U+000A) in its name",
        ),
        (
            '{"data": {"labels": ["a.xml"], "images": "."}, "model": {"classes": 1}, '
            '"classes": ["bubble", "loop"]}',
            "classes: 2 names ['bubble', 'loop'], but the model section predicts 1 classes",
        ),
    ],
)
def test_bad_run_configs(tmp_path, text, problem):
    path = tmp_path / "run.json"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        load_config(path)
    assert str(error.value).startswith(str(path)) and problem in str(error.value)


def test_several_image_folders_are_read_beside_the_config_and_saved_absolute(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"data": {"labels": ["a.xml"], "images": ["real", "synthetic"]}}')
    config = load_config(path)
    assert config.data.images == (str(tmp_path / "real"), str(tmp_path / "synthetic"))
    config.save(tmp_path / "saved.json")
    assert load_config(tmp_path / "saved.json") == config


def test_evaluate_needs_a_finished_run(tmp_path):
    with pytest.raises(InputError, match="not a finished run directory: no config.json"):
        load_run(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("changes", "outputs"),
    [
        # Background, the classes and the border class.
        ({"border_width": 2, "border_weight": 3.0}, {"probabilities": 4}),
        # The softmax of background and the classes, then the distance map.
        ({"distance_weight": 1.0}, {"probabilities": 3, "distance": 1}),
    ],
)
def test_an_instance_aware_unet_runs_end_to_end(folder, tmp_path, changes, outputs):
    import tensorflow as tf

    result = train_run(tiny_config(*folder).with_model(**changes), tmp_path / "run", verbose=0)
    assert result.model.output_shape[-1] == len(result.config.classes) + 2 == 4
    # Scored as a plain U-Net against the labels.
    assert {"iou", "dice", "pixel_accuracy"} <= set(result.metrics)
    loaded, model = load_run(tmp_path / "run")
    assert {key: getattr(loaded.model, key) for key in changes} == changes
    kind = loaded.model_kind
    image = box_image(64).astype(np.float32) / 255
    predicted = kind.predict(model, image, loaded)
    assert predicted.shape == (64, 64) and set(np.unique(predicted)) <= {0, 1, 2}
    found = kind.instances(model, image, loaded, threshold=0.5)
    assert found.labels.shape == (64, 64)
    served = tf.saved_model.load(str(tmp_path / "run" / "saved_model"))
    answer = served.signatures["serving_default"](image=tf.constant(image[None, ..., None]))
    assert {key: value.shape[-1] for key, value in answer.items()} == outputs


@pytest.mark.slow
def test_a_finished_run_is_refused_rerun_elsewhere_or_overwritten(folder, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    train_run(tiny_config(*folder, epochs=1), run_dir, verbose=0)
    with pytest.raises(InputError, match="holds a finished run; give --overwrite"):
        train_run(tiny_config(*folder, epochs=1), run_dir, verbose=0)
    # The stored config has absolute paths: it trains again from any directory.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    stored = json.loads((run_dir / "config.json").read_text())
    assert Path(stored["data"]["images"]).is_absolute()
    assert main(["train", str(run_dir / "config.json"), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "metrics.json").is_file()
    # --overwrite removes the run's own files (not others) and trains afresh.
    (run_dir / "notes.txt").write_text("mine")
    result = train_run(tiny_config(*folder, epochs=1), run_dir, verbose=0, overwrite=True)
    with open(run_dir / "history.csv") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["0"]
    assert (run_dir / "notes.txt").read_text() == "mine"
    assert result.metrics["evaluated_on"] == "validation"


@pytest.mark.slow
def test_a_run_interrupted_after_training_finishes_without_training_again(folder, tmp_path):
    run_dir = tmp_path / "run"

    class ExportError(RuntimeError):
        pass

    config = tiny_config(*folder, epochs=1)
    kind = config.model_kind
    original = type(kind).export

    def fail(*args, **kwargs):
        raise ExportError

    type(kind).export = fail
    try:
        with pytest.raises(ExportError):
            train_run(config, run_dir, verbose=0)
    finally:
        type(kind).export = original
    assert (run_dir / "trained").is_file() and not (run_dir / "metrics.json").exists()
    started = EpochsStarted()
    train_run(config, run_dir, verbose=0, callbacks=[started])
    assert started.epochs == []  # not trained again
    assert (run_dir / "saved_model" / "saved_model.pb").is_file()
    assert (run_dir / "metrics.json").is_file()


def test_the_recorded_experiment_configs_point_at_the_shared_data():
    from tests.conftest import REPO

    for name in ("unet_bubbles", "maskrcnn_bubbles", "yolo_loops"):
        config = load_config(REPO / "experiments" / name / "config.json")
        shared = (REPO.parent / "shared" / "data").resolve()
        for path in (config.data.images, *config.data.labels):
            assert Path(path).resolve().is_relative_to(shared), (name, path)
