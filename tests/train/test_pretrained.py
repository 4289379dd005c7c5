"""``training.pretrained``: a run starts from the weights of the layers that match by name and
shape, is refused a path that is no run or Keras file, and a resumed run keeps its own weights."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import keras
import numpy as np
import pytest

from emdl.errors import InputError
from emdl.models.unet import UNetConfig
from emdl.train.config import DataConfig, RunConfig, TrainingConfig, load_config
from emdl.train.pretrained import load_pretrained, start_from_pretrained
from emdl.train.run import train_run
from tests.conftest import box_image, box_xml, tiny_config

LOGGER = "emdl.train.pretrained"


def unet_config(classes: int, pretrained: str | None = None) -> RunConfig:
    """A run config of a tiny U-Net with ``classes`` classes (its data are never read)."""
    return RunConfig(
        data=DataConfig(labels=("labels.xml",), images="images"),
        model=UNetConfig(depth=2, filters=4, classes=classes),
        training=TrainingConfig(pretrained=pretrained),
        classes=tuple(f"class{i}" for i in range(classes)),
    )


def built(config: RunConfig, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return config.model_kind.build(config, compiled=False)


@pytest.fixture
def source(tmp_path):
    """A one-class U-Net saved as a run directory (config.json, best.weights.h5) and as
    ``source.keras``; returns (run directory, model)."""
    config = unet_config(1)
    model = built(config, seed=1)
    run_dir = tmp_path / "pretrain"
    run_dir.mkdir()
    config.save(run_dir / "config.json")
    model.save_weights(run_dir / "best.weights.h5")
    model.save(tmp_path / "source.keras")
    return run_dir, model


def weights_by_layer(model: keras.Model) -> dict[str, list[np.ndarray]]:
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def assert_all_but_the_output_layer_took(model, source_model, initial) -> None:
    took, mine = weights_by_layer(source_model), weights_by_layer(model)
    assert set(mine) == set(took) and "probabilities" in mine
    for name, arrays in mine.items():
        expected = initial[name] if name == "probabilities" else took[name]
        assert len(arrays) == len(expected)
        for array, wanted in zip(arrays, expected, strict=True):
            assert np.array_equal(array, wanted), name
    # The two classes' softmax layer has 3 outputs, the one class's sigmoid 1: nothing to take.
    assert mine["probabilities"][0].shape[-1] == 3 and took["probabilities"][0].shape[-1] == 1


@pytest.mark.parametrize("form", ["run directory", "best.weights.h5", "keras file", "bare h5"])
def test_every_layer_but_the_output_takes_the_weights(source, tmp_path, form):
    run_dir, source_model = source
    if form == "bare h5":  # no config.json beside it: Keras' matching by position
        path = tmp_path / "bare.weights.h5"
        source_model.save_weights(path)
    else:
        path = {
            "run directory": run_dir,
            "best.weights.h5": run_dir / "best.weights.h5",
            "keras file": tmp_path / "source.keras",
        }[form]
    model = built(unet_config(2), seed=2)
    initial = weights_by_layer(model)
    transfer = load_pretrained(model, path)
    assert transfer.kept == ("probabilities",)
    assert len(transfer.loaded) == len(initial) - 1
    assert_all_but_the_output_layer_took(model, source_model, initial)


def test_a_run_directory_without_weights_falls_back_to_its_model_keras(source, tmp_path):
    _, source_model = source
    run_dir = tmp_path / "finished"
    run_dir.mkdir()
    (tmp_path / "source.keras").rename(run_dir / "model.keras")
    model = built(unet_config(2), seed=2)
    initial = weights_by_layer(model)
    assert load_pretrained(model, run_dir).kept == ("probabilities",)
    assert_all_but_the_output_layer_took(model, source_model, initial)


def test_layers_of_another_model_keep_their_initialisation(source):
    """A deeper U-Net: the levels it shares by name take their weights, the new ones do not."""
    run_dir, _ = source
    config = RunConfig(
        data=DataConfig(labels=("labels.xml",), images="images"),
        model=UNetConfig(depth=3, filters=4, classes=1),
    )
    model = built(config, seed=2)
    transfer = load_pretrained(model, run_dir)
    assert "down0_conv0" in transfer.loaded and "down1_conv0" in transfer.loaded
    # Level 2 is new and the bottom is twice as wide at depth 3; up1 sees the same widths.
    block = ("conv0", "bn0", "conv1", "bn1")
    assert transfer.kept == (
        *(f"down2_{name}" for name in block),
        *(f"bottom_{name}" for name in block),
        "up2_conv",
        *(f"up2_{name}" for name in block),
    )
    assert {"up1_conv", "up1_conv0", "up0_conv1", "probabilities"} <= set(transfer.loaded)


def test_the_log_line_counts_the_layers(source, caplog, tmp_path):
    run_dir, _ = source
    model = built(unet_config(2), seed=2)
    layers = len(weights_by_layer(model))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        start_from_pretrained(model, unet_config(2, str(run_dir)), tmp_path / "run", trained=False)
    assert [record.getMessage() for record in caplog.records] == [
        f"pretrained weights from {run_dir}: {layers - 1} layers took them, 1 kept its "
        "initialisation (probabilities)"
    ]


def test_without_pretrained_nothing_happens(tmp_path):
    model = built(unet_config(2), seed=2)
    before = weights_by_layer(model)
    assert start_from_pretrained(model, unet_config(2), tmp_path, trained=False) is None
    assert all(
        np.array_equal(a, b)
        for name, arrays in weights_by_layer(model).items()
        for a, b in zip(arrays, before[name], strict=True)
    )


@pytest.mark.parametrize("resumed", ["backup", "trained"])
def test_a_resumed_run_does_not_load_them_again(source, tmp_path, caplog, resumed):
    run_dir, _ = source
    state = tmp_path / "run"
    (state / "backup").mkdir(parents=True)
    model = built(unet_config(2), seed=2)
    before = weights_by_layer(model)
    if resumed == "backup":
        model.save_weights(state / "backup" / "latest.weights.h5")
    config = unet_config(2, str(run_dir))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = start_from_pretrained(model, config, state, trained=resumed == "trained")
    assert result is None
    assert [record.getMessage() for record in caplog.records] == [
        "resuming: the run's own weights stay (training.pretrained is not loaded again)"
    ]
    for name, arrays in weights_by_layer(model).items():
        assert all(np.array_equal(a, b) for a, b in zip(arrays, before[name], strict=True))


def test_refusals_name_the_path(tmp_path, source):
    model = built(unet_config(2), seed=2)
    missing = tmp_path / "nothing"
    with pytest.raises(InputError) as error:
        load_pretrained(model, missing)
    assert str(error.value) == f"{missing}: training.pretrained: no such run directory or file"
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(InputError) as error:
        load_pretrained(model, folder)
    assert str(error.value) == (
        f"{folder}: training.pretrained: not a run directory (no best.weights.h5 with "
        "config.json, no model.keras)"
    )
    other = folder / "config.json"
    with pytest.raises(InputError) as error:
        load_pretrained(model, other)
    assert str(error.value) == (
        f"{other}: training.pretrained: not a run directory, .keras or .weights.h5 file"
    )
    broken = tmp_path / "broken.keras"
    broken.write_text("not a zip")
    with pytest.raises(InputError, match=r"broken.keras: training.pretrained: cannot be read \("):
        load_pretrained(model, broken)


def test_the_config_resolves_the_path_against_its_file_and_stores_it_absolute(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "run.json"
    values = {
        "data": {"labels": ["labels.xml"], "images": "images"},
        "training": {"pretrained": "../runs/pretrain"},
    }
    path.write_text(json.dumps(values))
    config = load_config(path)
    assert config.training.pretrained == str(folder / "../runs/pretrain")
    config.save(tmp_path / "config.json")
    stored = json.loads((tmp_path / "config.json").read_text())
    assert stored["training"]["pretrained"] == str(tmp_path / "runs" / "pretrain")


@pytest.mark.parametrize("value", ["", 3, ["a"]])
def test_a_bad_value_is_refused(tmp_path, value):
    path = tmp_path / "run.json"
    values = {"data": {"labels": ["l.xml"], "images": "i"}, "training": {"pretrained": value}}
    path.write_text(json.dumps(values))
    with pytest.raises(InputError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: training.pretrained: expected ")


@pytest.mark.slow
def test_a_run_starts_from_them_and_its_resume_keeps_the_backup(labeled_folder, tmp_path, caplog):
    """A two-class run from a one-class run: the first epoch starts from the pretrained layers;
    interrupted and resumed, it starts from its backup, not from them."""
    labels, images = labeled_folder(
        {
            "a.png": (box_image(64), box_xml("a.png", 64)),
            "b.png": (box_image(64), box_xml("b.png", 64)),
        }
    )
    pretrain = tmp_path / "pretrain"
    pretrain.mkdir()
    unet_config(1).save(pretrain / "config.json")
    source_model = built(unet_config(1), seed=1)
    source_model.save_weights(pretrain / "best.weights.h5")
    config = tiny_config(labels, images, epochs=2)
    config = replace(config, training=replace(config.training, pretrained=str(pretrain)))

    class Seen(keras.callbacks.Callback):
        """Keeps the weights training starts from (after the run's own callbacks restored)."""

        def on_train_begin(self, logs=None):
            self.start = weights_by_layer(self.model)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt("simulated interruption")

    first, run_dir = Seen(), tmp_path / "run"
    with caplog.at_level(logging.INFO, logger=LOGGER), pytest.raises(KeyboardInterrupt):
        train_run(config, run_dir, verbose=0, callbacks=[first, Interrupt()])
    took = weights_by_layer(source_model)
    for name, arrays in first.start.items():
        if name != "probabilities":
            assert all(np.array_equal(a, b) for a, b in zip(arrays, took[name], strict=True))
    backup = built(RunConfig.from_dict(json.loads((run_dir / "config.json").read_text())), 3)
    backup.load_weights(run_dir / "backup" / "latest.weights.h5")
    caplog.clear()
    second = Seen()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        train_run(config, run_dir, verbose=0, callbacks=[second])
    assert "resuming: the run's own weights stay" in caplog.text
    assert "pretrained weights from" not in caplog.text
    restored = weights_by_layer(backup)
    for name, arrays in second.start.items():
        assert all(np.array_equal(a, b) for a, b in zip(arrays, restored[name], strict=True))
    assert json.loads((run_dir / "config.json").read_text())["training"]["pretrained"] == str(
        pretrain
    )
