"""emdl.train.kinds: the registry and the protocol every model kind implements."""

from __future__ import annotations

import ast

import pytest

from emdl.train.config import DataConfig, RunConfig
from emdl.train.kinds import KINDS, model_kind
from emdl.train.kinds.base import ModelKind
from tests.conftest import REPO

HOOKS = (
    "build",
    "truth",
    "predict",
    "score",
    "instances",
    "default_threshold",
    "export",
    "plot",
    "headline",
)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_implements_the_protocol(name):
    kind = model_kind(name)
    assert isinstance(kind, ModelKind) and kind.name == name
    for hook in HOOKS:
        assert getattr(type(kind), hook) is not getattr(ModelKind, hook), f"{name}: {hook}"
    assert kind.target in ("semantic", "detection", "instances")
    assert set(kind.default_loss) <= set(kind.loss_terms)
    model = kind.config_class()
    assert kind.config_class.from_dict(model.to_dict()) == model


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_run_config_takes_its_kinds_defaults(name):
    kind = model_kind(name)
    config = RunConfig(data=DataConfig(labels=("x.xml",), images="."), kind=name)
    assert config.model_kind is kind
    assert config.model == kind.config_class()
    assert config.loss == dict(kind.default_loss)
    assert config.training.monitor == kind.monitor
    assert RunConfig.from_dict(config.to_dict()) == config


SMALL = {"unet": {"depth": 2, "filters": 4}, "maskrcnn": "TINY"}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kinds_model_saves_whole_and_loads_through_emdl(name, tmp_path):
    import numpy as np

    import emdl
    import tests.conftest

    kind = model_kind(name)
    small = SMALL.get(name, {})
    model_config = (
        getattr(tests.conftest, small) if isinstance(small, str) else kind.config_class(**small)
    )
    config = RunConfig(
        data=DataConfig(labels=("x.xml",), images="."),
        kind=name,
        model=kind.model_config(model_config, ["bubble"]),
        classes=("bubble",),
    )
    model = kind.build(config)
    model.save(tmp_path / "model.keras")
    loaded = emdl.load_model(tmp_path / "model.keras")
    assert type(loaded) is type(model)
    pairs = zip(model.weights, loaded.weights, strict=True)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in pairs)


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(ValueError, match=r"kind must be one of \['maskrcnn', 'unet', 'yolo'\]"):
        model_kind("resnet")


def test_default_thresholds():
    config = RunConfig(data=DataConfig(labels=("x.xml",), images="."), kind="yolo")
    detector = config.model_kind
    assert detector.default_threshold(config, {"score_threshold": 0.31}) == 0.31
    assert detector.default_threshold(config, None) == 0.25
    unet = RunConfig(data=config.data)
    assert unet.model_kind.default_threshold(unet, None) == 0.5
    maskrcnn = RunConfig(data=config.data, kind="maskrcnn")
    assert maskrcnn.model_kind.default_threshold(maskrcnn, None) == 0.7


def kind_comparisons(tree: ast.AST) -> list[int]:
    """Lines comparing something called ``kind`` (``x.kind == ...``, ``kind in ...``)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                name = getattr(side, "attr", None) or getattr(side, "id", None)
                if name == "kind":
                    lines.append(node.lineno)
    return lines


def test_only_the_registry_compares_kind_names():
    found = {}
    for path in sorted((REPO / "emdl").rglob("*.py")):
        if path.parent.name == "kinds":
            continue
        lines = kind_comparisons(ast.parse(path.read_text()))
        if lines:
            found[str(path.relative_to(REPO))] = lines
    assert found == {}


def test_the_check_sees_a_comparison():
    assert kind_comparisons(ast.parse("if config.kind == 'yolo':\n    pass\n")) == [1]


def test_tta_of_a_model_equivariant_by_construction_changes_nothing():
    import keras
    import numpy as np

    # A pointwise model: flipping or turning its input turns its output alike.
    inputs = keras.Input((None, None, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    config = RunConfig(data=DataConfig(labels=("x.xml",), images=".", window=32))
    config = config.with_model(depth=2)
    image = np.random.default_rng(0).random((40, 56), np.float32)
    kind = config.model_kind
    plain = kind.probabilities(model, image, config)
    augmented = kind.probabilities(model, image, config.with_model(tta=True))
    assert plain.shape == augmented.shape == (40, 56, 1)
    np.testing.assert_allclose(augmented, plain, atol=1e-6)
    # A model that is not equivariant is changed by it.
    shifted = keras.Model(inputs, keras.layers.Conv2D(1, (1, 3), padding="same")(inputs))
    assert not np.allclose(
        kind.probabilities(shifted, image, config),
        kind.probabilities(shifted, image, config.with_model(tta=True)),
    )
