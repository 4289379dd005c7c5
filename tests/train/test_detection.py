"""Detector runs: a tiny run writes its directory and scores, `emdl evaluate` reads it, its
SavedModel serves final detections in a fresh process, and bad input is refused up front."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from skimage import io as skio

from emdl.cli import main
from emdl.errors import InputError
from emdl.models.yolo import Detector, DetectorConfig
from emdl.train.config import DataConfig, RunConfig, TrainingConfig
from emdl.train.run import load_run, train_run
from tests.conftest import box_image, box_xml, cvat_text

KEYS = ("ap50", "ap50_95", "precision50", "recall50", "f1_50", "score_threshold")


def detector_run_config(labels, images, **model) -> RunConfig:
    return RunConfig(
        kind="yolo",
        data=DataConfig(
            labels=(str(labels),),
            images=str(images),
            validation_fraction=0.5,
            window=64,
            stride=64,
            batch_size=2,
        ),
        model=DetectorConfig(size="xxs", tile=64, overlap=16, **model),
        training=TrainingConfig(epochs=1, steps_per_epoch=2),
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished tiny detector run on two 96 x 96 images with four boxes each."""
    folder = tmp_path_factory.mktemp("detector")
    images = folder / "images"
    images.mkdir()
    body = []
    for name in ("a.png", "b.png"):
        skio.imsave(images / name, box_image(96), check_contrast=False)
        body.append(box_xml(name, 96))
    labels = folder / "labels.xml"
    labels.write_text(cvat_text("\n".join(body), labels=("bubble",)))
    result = train_run(detector_run_config(labels, images), folder / "run", verbose=0)
    return result, labels, images


@pytest.mark.slow
def test_a_detector_run_writes_its_directory(finished_run):
    result, _, _ = finished_run
    for name in ("config.json", "history.csv", "best.weights.h5", "metrics.json", "curves.png"):
        assert (result.run_dir / name).is_file(), name
    assert (result.run_dir / "overlays.png").is_file()
    assert (result.run_dir / "saved_model" / "saved_model.pb").is_file()
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["kind"] == "yolo" and saved["model"]["classes"] == 1
    assert saved["training"]["monitor"] == "val_loss"
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "validation" and metrics["objects"] == 4
    for key in KEYS:
        assert 0 <= metrics[key] <= 1, key
    config, model = load_run(result.run_dir)
    assert config.kind == "yolo" and isinstance(model, Detector)
    header = (result.run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"top_score", "val_top_score"} <= set(header)


def test_an_epoch_whose_model_scores_nothing_cannot_be_the_best():
    config = RunConfig(
        kind="yolo", data=DataConfig(labels=("a.xml",), images="."),
        model=DetectorConfig(size="xxs", confidence_threshold=0.05),
    )  # fmt: skip
    unusable = config.model_kind.unusable_epoch
    assert unusable({"val_loss": 0.001, "val_top_score": 0.0004}, config, "val_") == (
        "val_top_score 0.0004 is below the confidence threshold 0.05: the model detects nothing"
    )
    assert unusable({"val_loss": 4.2, "val_top_score": 0.6}, config, "val_") == ""
    assert unusable({"loss": 0.1, "top_score": 0.01}, config, "").startswith("top_score 0.01")
    assert unusable({"val_loss": 4.2}, config, "val_") == ""  # a figure the run did not log


@pytest.mark.slow
def test_emdl_evaluate_scores_a_detector_run(finished_run, tmp_path, capsys):
    result, labels, images = finished_run
    out = tmp_path / "scores.json"
    arguments = ["--labels", str(labels), "--images", str(images), "--json", str(out)]
    code = main(["evaluate", str(result.run_dir), *arguments])
    assert code == 0
    scores = json.loads(out.read_text())
    assert set(KEYS) <= set(scores) and scores["objects"] == 8
    assert f"ap50 {scores['ap50']:.3f}" in capsys.readouterr().out


SERVE = """
import json, sys
import numpy as np, tensorflow as tf
signatures = tf.saved_model.load(sys.argv[1]).signatures
counts = np.random.default_rng(0).integers(0, 256, (2, 100, 80, 1)).astype(np.uint8)
out = signatures["serving_uint8"](image=tf.constant(counts))
floats = signatures["serving_default"](image=tf.constant(counts, tf.float32))
assert all(np.allclose(out[key], floats[key], atol=1e-4) for key in out)
print(json.dumps({key: list(value.shape) for key, value in out.items()}))
boxes, count = out["boxes"].numpy(), out["num_detections"].numpy()
kept, padding = boxes[0, : count[0]], boxes[0, count[0] :]
inside = (kept >= 0).all() and (kept[:, [0, 2]] <= 80).all() and (kept[:, [1, 3]] <= 100).all()
print(json.dumps(bool(inside and (padding == -1).all())))
"""


@pytest.mark.slow
def test_the_saved_model_serves_final_detections_in_a_fresh_process(finished_run):
    result, _, _ = finished_run
    run = subprocess.run(
        [sys.executable, "-c", SERVE, str(result.run_dir / "saved_model")],
        capture_output=True,
        text=True,
        check=True,
    )
    shapes_line, inside = run.stdout.strip().splitlines()[-2:]
    shapes = json.loads(shapes_line)
    assert set(shapes) == {"boxes", "classes", "confidence", "num_detections"}
    assert shapes["num_detections"] == [2]
    assert shapes["boxes"][0] == 2 and shapes["boxes"][2] == 4
    assert shapes["classes"] == shapes["confidence"] == shapes["boxes"][:2]
    assert json.loads(inside) is True


def test_labels_without_boxes_are_refused(labeled_folder, tmp_path):
    empty = '<image id="0" name="a.png" width="96" height="96"></image>'
    labels, images = labeled_folder({"a.png": (box_image(96, []), empty)}, labels=("bubble",))
    config = detector_run_config(labels, images)
    config = RunConfig(
        kind="yolo",
        data=DataConfig(labels=(str(labels),), images=str(images), window=64),
        model=config.model,
    )
    with pytest.raises(ValueError, match="hold no objects"):
        train_run(config, tmp_path / "run", verbose=0)


@pytest.fixture
def two_images(labeled_folder):
    """Two labeled 96 x 96 images of four boxes each, one class."""
    return labeled_folder(
        {name: (box_image(96), box_xml(name, 96)) for name in ("a.png", "b.png")},
        labels=("bubble",),
    )


def test_a_class_count_that_differs_from_the_labels_is_refused(two_images, tmp_path):
    labels, images = two_images
    with pytest.raises(ValueError, match="classes is 3 but the labels have 1"):
        train_run(detector_run_config(labels, images, classes=3), tmp_path / "run", verbose=0)


def test_images_smaller_than_the_crop_are_refused(two_images, tmp_path):
    labels, images = two_images
    with pytest.raises(InputError, match="smaller than the 64 x 64 crop window"):
        train_run(detector_run_config(labels, images, scale=0.5), tmp_path / "run", verbose=0)


def test_boxes_reach_the_detector_resized(labeled_folder):
    from emdl.data import detection_dataset, load_labeled_images
    from emdl.data.resize import Resize

    labels, images = labeled_folder({"a.png": (box_image(96), box_xml("a.png", 96))})
    records, classes = load_labeled_images(labels, images)
    data = detection_dataset(
        records, classes, window=48, training=False, stride=48, resize=Resize(0.5), batch_size=4
    )
    images_out, targets = next(iter(data))
    assert images_out.shape == (1, 48, 48, 1)  # the 96 x 96 image at half size: one window
    np.testing.assert_allclose(
        targets["boxes"][0], [[2, 3, 10, 7], [15, 15, 25, 29], [20, 1, 30, 6], [4, 20, 11, 31]]
    )


def test_jit_compile_must_be_true_false_or_auto():
    with pytest.raises(ValueError, match='jit_compile must be true, false or "auto"'):
        DetectorConfig(jit_compile="yes")


@pytest.mark.parametrize(
    ("jit", "max_boxes"), [(None, "batch"), (False, "batch"), (True, 4), ("auto", "batch")]
)
def test_xla_steps_take_boxes_padded_alike(two_images, jit, max_boxes):
    """None: the default, plain steps."""
    from emdl.data import load_labeled_images
    from emdl.train.kinds import model_kind

    labels, images = two_images
    records, classes = load_labeled_images(labels, images)
    model = {} if jit is None else {"jit_compile": jit}
    config = detector_run_config(labels, images, **model)
    options = model_kind("yolo").dataset_options(records, classes, config)
    assert options["max_boxes"] == max_boxes  # "auto": no XLA in tests (conftest)


@pytest.mark.slow
def test_a_detector_trains_compiled_by_xla_and_predicts_without(two_images):
    from emdl.data import load_labeled_images
    from emdl.train.kinds import model_kind

    labels, images = two_images
    records, classes = load_labeled_images(labels, images)
    kind = model_kind("yolo")
    config = detector_run_config(labels, images, jit_compile=True, classes=1)
    train, _, _ = kind.datasets(records, [], classes, config, 2)
    model = kind.build(config)
    history = model.fit(train, steps_per_epoch=1, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.jit_compile is True
    found = model.predict_on_batch(np.zeros((1, 64, 64, 1), np.float32))
    assert found["boxes"].shape[0] == 1
    assert model.jit_compile is True  # the predict function was built without it
