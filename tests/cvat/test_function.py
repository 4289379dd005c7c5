"""emdl.cvat.function: the run as cvat_sdk's detection function, loaded the way cvat-cli loads it
and driven by the SDK's own annotate_task (its label, attribute and shape checks) against a
stand-in task, with a stand-in network whose defects are known exactly."""

from __future__ import annotations

import importlib
import logging
from dataclasses import replace
from types import SimpleNamespace

import cvat_sdk.auto_annotation as cvataa
import cvat_sdk.models as models
import numpy as np
import pytest
from cvat_sdk.masks import decode_mask
from PIL import Image

from emdl.errors import EmdlError, InputError
from tests.conftest import BOXES, box_image


def load_function(**parameters):
    """What ``cvat-cli ... --function-module emdl.cvat.function -p name=type:value`` does."""
    module = importlib.import_module("emdl.cvat.function")
    return module.create(**parameters)


def task_label(name: str, id: int, type: str = "any", attributes=("score", "diameter_nm")):
    """A CVAT task's label with text attributes of ``attributes`` (ids from 100)."""
    return models.Label._from_openapi_data(
        name=name,
        id=id,
        type=type,
        sublabels=[],
        attributes=[
            models.Attribute._from_openapi_data(
                name=a, id=100 + k, mutable=False, input_type="text", values=[""]
            )
            for k, a in enumerate(attributes)
        ],
    )


def annotate(monkeypatch, function, images, labels, **options):
    """Run ``cvat_sdk.auto_annotation.annotate_task`` on a stand-in task of ``images`` (PIL)
    with ``labels``; returns the shapes it would upload."""
    uploaded = {}

    def task_dataset(client, task_id, load_annotations):
        samples = [
            SimpleNamespace(
                frame_index=i,
                frame_name=f"{i}.png",
                media=SimpleNamespace(load_image=lambda i=i: images[i]),
            )
            for i in range(len(images))
        ]
        return SimpleNamespace(labels=labels, samples=samples)

    def partial_update_annotations(action, task_id, patched_labeled_data_request):
        uploaded["shapes"] = patched_labeled_data_request.shapes

    monkeypatch.setattr("cvat_sdk.auto_annotation.driver.TaskDataset", task_dataset)
    api = SimpleNamespace(partial_update_annotations=partial_update_annotations)
    client = SimpleNamespace(logger=logging.getLogger("test"), tasks=SimpleNamespace(api=api))
    cvataa.annotate_task(client, 7, function, **options)
    return uploaded["shapes"]


def shoelace(points) -> float:
    x, y = np.asarray(points[0::2]), np.asarray(points[1::2])
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def test_the_spec_is_the_runs_classes_and_passes_the_sdks_checks(untrained_run):
    function = load_function(run=str(untrained_run))
    (label,) = function.spec.labels
    assert (label.name, label.id, label.type) == ("bubble", 0, "mask")
    assert [(a.name, a.id, a.input_type.value) for a in label.attributes] == [("score", 0, "text")]
    with_size = load_function(run=str(untrained_run), pixel_size_nm=0.5)
    names = [a.name for a in with_size.spec.labels[0].attributes]
    assert names == ["score", "diameter_nm"]
    # The spec's own validation (ids, attribute values) runs again on a copy of its labels.
    assert cvataa.DetectionFunctionSpec(labels=with_size.spec.labels) == with_size.spec


def test_masks_and_polygons_lie_on_the_objects(monkeypatch, echo_run):
    from emdl.cvat.function import RunFunction

    function = RunFunction(echo_run, pixel_size_nm="0.5")
    image = Image.fromarray(box_image(64))
    labels = [task_label("bubble", 41)]
    masks = annotate(monkeypatch, function, [image, image], labels)
    assert len(masks) == 2 * len(BOXES)
    expected = sorted(tuple(b) for b in BOXES)
    found = []
    for shape in masks:
        assert (shape.type.value, shape.label_id, shape.source) == ("mask", 41, "auto")
        assert shape.score == 1.0
        bitmap = decode_mask(shape.points, image_width=64, image_height=64)
        rows, cols = np.nonzero(bitmap)
        box = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        assert bitmap.sum() == (box[2] - box[0]) * (box[3] - box[1])  # the whole box, filled
        found.append(tuple(int(v) for v in box))
        diameter = 2 * np.sqrt(bitmap.sum() / np.pi) * 0.5
        assert {a.spec_id: a.value for a in shape.attributes} == {
            100: "1.000",
            101: f"{diameter:.2f}",
        }
    assert sorted(found[: len(BOXES)]) == expected
    assert [s.frame for s in masks] == [0] * len(BOXES) + [1] * len(BOXES)

    polygons = annotate(monkeypatch, function, [image], labels, conv_mask_to_poly=True)
    for shape, (x0, y0, x1, y1) in zip(
        polygons, [tuple(b) for b in _raster_order(BOXES)], strict=True
    ):
        assert shape.type.value == "polygon"
        xs, ys = np.asarray(shape.points[0::2]), np.asarray(shape.points[1::2])
        assert xs.min() == x0 and xs.max() == x1 and ys.min() == y0 and ys.max() == y1
        # The outline runs along the box's edges with its four corners cut by half a pixel.
        assert shoelace(shape.points) == (x1 - x0) * (y1 - y0) - 4 * 0.125


def _raster_order(boxes):
    return sorted(boxes, key=lambda b: (b[1], b[0]))


@pytest.mark.parametrize(("kind", "passed"), [("unet", None), ("maskrcnn", 0.7)])
def test_the_confidence_threshold_drops_weaker_objects(monkeypatch, echo_run, kind, passed):
    # A U-Net keeps its pixel threshold and drops objects by score; a Mask R-CNN predicts with
    # the confidence as its score threshold (and the objects are checked again).
    import emdl
    from emdl.cvat.function import RunFunction
    from emdl.predict.instances import Instances
    from emdl.train.config import RunConfig

    labels = np.zeros((64, 64), np.int32)
    labels[4:20, 4:20], labels[30:50, 30:50] = 1, 2
    found = Instances(
        labels,
        np.float32([[4, 4, 20, 20], [30, 30, 50, 50]]),
        np.int32([0, 0]),
        np.float32([0.95, 0.6]),
        np.bool_([False, False]),
        64,
        64,
    )
    asked = []

    def predict(self, image, *, threshold=None, **kw):
        asked.append(threshold)
        return found

    monkeypatch.setattr(emdl.api.Run, "predict", predict)
    config = RunConfig(data=echo_run.config.data, kind=kind, classes=("bubble",))
    function = RunFunction(replace(echo_run, config=config))
    assert function.spec.labels[0].type == "mask"
    image = Image.fromarray(box_image(64))
    task = [task_label("bubble", 3, type="polygon", attributes=("score",))]
    both = annotate(monkeypatch, function, [image], task, conv_mask_to_poly=True)
    assert [a.value for s in both for a in s.attributes] == ["0.950", "0.600"]
    strong = annotate(
        monkeypatch, function, [image], task, conv_mask_to_poly=True, conf_threshold=0.7
    )
    assert [s.score for s in strong] == [pytest.approx(0.95)]
    assert asked == [None, passed]


def test_a_detector_run_gives_rectangles(monkeypatch, untrained_run):
    import emdl
    from emdl.cvat.function import RunFunction
    from emdl.train.config import RunConfig

    run = emdl.load_run(untrained_run)
    config = RunConfig(data=run.config.data, kind="yolo", classes=("loop", "void"))
    found = {
        "boxes": np.float32([[0, 10, 20, 30], [30, 30, 50, 40], [5, 5, 9, 9]]),
        "classes": np.int32([1, 0, 0]),
        "scores": np.float32([0.9, 0.7, 0.3]),
    }
    monkeypatch.setattr(
        "emdl.train.kinds.yolo.DetectorKind.predict", lambda self, model, image, cfg: found
    )
    function = RunFunction(replace(run, config=config, model=None))
    assert [(label.name, label.id, label.type) for label in function.spec.labels] == [
        ("loop", 0, "rectangle"),
        ("void", 1, "rectangle"),
    ]
    labels = [task_label("void", 5, attributes=("score",)), task_label("loop", 6, attributes=())]
    image = Image.fromarray(box_image(64)).convert("RGB")
    shapes = annotate(
        monkeypatch, function, [image], labels, conf_threshold=0.5, allow_unmatched_labels=True
    )
    assert [(s.type.value, s.label_id, s.points, s.score) for s in shapes] == [
        ("rectangle", 5, [0.0, 10.0, 20.0, 30.0], pytest.approx(0.9)),
        ("rectangle", 6, [30.0, 30.0, 50.0, 40.0], pytest.approx(0.7)),
    ]
    # The task's "loop" has no score attribute: allow_unmatched_labels drops the value.
    assert [[a.value for a in s.attributes] for s in shapes] == [["0.900"], []]


def test_bad_parameters_are_one_line(tmp_path, untrained_run):
    with pytest.raises(InputError, match="not a finished run directory"):
        load_function(run=str(tmp_path))
    for bad in ("abc", -1.0, 0):
        with pytest.raises(EmdlError, match="the pixel size must be a positive number of nm"):
            load_function(run=str(untrained_run), pixel_size_nm=bad)


@pytest.mark.slow
def test_a_trained_run_annotates_through_the_sdk(monkeypatch, trained_run):
    # The real network: whatever it finds, the SDK accepts every shape of both kinds.
    function = load_function(run=str(trained_run), pixel_size_nm=0.5)
    image = Image.fromarray(box_image(96)).convert("RGB")  # another size than the training's
    labels = [task_label("bubble", 9)]
    for convert in (False, True):
        shapes = annotate(monkeypatch, function, [image], labels, conv_mask_to_poly=convert)
        assert shapes and {s.type.value for s in shapes} == {"polygon" if convert else "mask"}
        assert all(s.label_id == 9 and len(s.attributes) == 2 for s in shapes)
        for shape in shapes:
            if convert:
                assert len(shape.points) >= 6 and len(shape.points) % 2 == 0
            else:
                assert decode_mask(shape.points, image_width=96, image_height=96).any()
