"""``emdl.api.load_ensemble``: stand-in U-Nets predicting together, and the runs' agreement."""

from __future__ import annotations

import numpy as np
import pytest

from emdl.api import load_ensemble
from emdl.predict.ensemble import Ensemble
from tests.commands.test_predict_ensemble import Scaled, stand_in_runs, unet_config


def test_an_ensemble_predicts_and_tells_how_many_of_its_runs_agree(monkeypatch):
    stand_in_runs(
        monkeypatch, {"a": (unet_config(), Scaled(0.9)), "b": (unet_config(), Scaled(0.3))}
    )
    image = np.zeros((64, 64), np.float32)
    image[8:24, 8:24], image[40:56, 40:56] = 1.0, 0.7
    ensemble = load_ensemble(["a", "b"])
    assert isinstance(ensemble.model, Ensemble) and ensemble.classes == ["bubble"]
    # 0.6 x the image: only the bright square crosses the threshold 0.5.
    assert len(ensemble.predict(image)) == 1
    agreed = ensemble.uncertainty(image)
    assert agreed.agreement.tolist() == [0.5] and agreed.unexplained == 0.5
    # One run: its own model, and the views' agreement (the stand-in ignores orientation).
    alone = load_ensemble(["a"])
    assert isinstance(alone.model, Scaled)
    assert alone.uncertainty(image).agreement.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="an ensemble cannot be evaluated as one"):
        ensemble.evaluate([], ".")
