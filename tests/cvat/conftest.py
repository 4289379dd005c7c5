"""Runs for the CVAT tests: an untrained tiny U-Net saved as a finished run (loads as a real one,
in a second), and stand-in models whose output is known exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import tiny_config


class EchoModel:
    """A U-Net stand-in whose foreground probability is the tile itself: on an image that is its
    own mask (``box_image``) the defects are exactly the bright boxes."""

    def predict_on_batch(self, tiles: np.ndarray) -> np.ndarray:
        return np.asarray(tiles, np.float32)


def write_untrained_run(run_dir: Path, classes=("bubble",)) -> Path:
    """A finished U-Net run directory (``config.json``, weights, an empty ``metrics.json``) of an
    untrained tiny U-Net."""
    from emdl.train.callbacks import BEST_WEIGHTS

    config = tiny_config(run_dir / "labels.xml", run_dir)
    config = replace(config, classes=tuple(classes)).with_model(classes=len(classes))
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir / "config.json")
    config.model_kind.build(config, compiled=False).save_weights(run_dir / BEST_WEIGHTS)
    (run_dir / "metrics.json").write_text("{}\n")  # written last: the run is finished
    return run_dir


@pytest.fixture(scope="session")
def untrained_run(tmp_path_factory) -> Path:
    return write_untrained_run(tmp_path_factory.mktemp("cvat") / "run")


@pytest.fixture
def echo_run(untrained_run):
    """The untrained run with the :class:`EchoModel` in place of its network."""
    import emdl

    run = emdl.load_run(untrained_run)
    return replace(run, model=EchoModel())


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A tiny U-Net trained for two short epochs on two 64 x 64 images of four boxes each."""
    from skimage import io as skio

    from emdl.train.run import train_run
    from tests.conftest import box_image, box_xml, cvat_text

    root = tmp_path_factory.mktemp("cvat_trained")
    images = root / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        skio.imsave(images / name, box_image(64), check_contrast=False)
    labels = root / "labels.xml"
    body = "\n".join(box_xml(name, 64) for name in ("a.png", "b.png"))
    labels.write_text(cvat_text(body, labels=("bubble",)))
    train_run(tiny_config(labels, images, epochs=2), root / "run", verbose=0)
    return root / "run"
