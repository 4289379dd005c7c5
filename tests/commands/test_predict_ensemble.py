"""``emdl predict RUN1 RUN2 ... IMAGES``: which arguments are runs, runs that cannot be one
ensemble refused in one line, and an ensemble of stand-in U-Nets end to end (its defects and
the members' agreement in defects.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from skimage import io as skio

from emdl.cli import main
from emdl.commands import predict as folder_module
from emdl.commands.predict import load_predictors, predict_images, split_runs
from emdl.errors import InputError
from emdl.models.unet import UNetConfig
from emdl.predict.ensemble import Ensemble
from emdl.train.config import DataConfig, RunConfig


def run_folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "config.json").write_text("{}")  # only its presence is looked at here
    return folder


def test_the_leading_run_directories_are_the_ensemble(tmp_path):
    one, two = run_folder(tmp_path, "one"), run_folder(tmp_path, "two")
    images = tmp_path / "images"
    images.mkdir()
    assert split_runs([one, two, images, "a.png"]) == (
        [str(one), str(two)],
        [str(images), "a.png"],
    )
    # The first argument is a run whatever it holds (a bad one is refused when loaded).
    assert split_runs([images, "a.png"]) == ([str(images)], ["a.png"])
    with pytest.raises(InputError, match=r"two: is a run directory; give the runs before"):
        split_runs([one, images, two])
    with pytest.raises(InputError, match=r"two: is a run directory, and no images follow it"):
        split_runs([one, two])


class Scaled:
    """A stand-in U-Net: the foreground probability of a pixel is ``factor`` x its value."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def predict_on_batch(self, tiles: np.ndarray) -> np.ndarray:
        return (self.factor * tiles).astype(np.float32)


def unet_config(classes=("bubble",), **model) -> RunConfig:
    config = RunConfig(
        data=DataConfig(labels=("x.xml",), images=".", window=64),
        model=UNetConfig(classes=len(classes), **model),
    )
    return RunConfig(**{**config.__dict__, "classes": tuple(classes)})


def stand_in_runs(monkeypatch, runs: dict) -> None:
    """``load_predictor(name)`` gives ``runs[name]``: ``(config, model)``."""
    monkeypatch.setattr(folder_module, "load_predictor", lambda run_dir: runs[Path(run_dir).name])


def test_runs_of_another_kind_classes_or_output_are_refused_in_one_line(
    monkeypatch, tmp_path, capsys
):
    detector = RunConfig(data=DataConfig(labels=("x.xml",), images="."), kind="yolo")
    detector = RunConfig(**{**detector.__dict__, "classes": ("bubble",)})
    stand_in_runs(
        monkeypatch,
        {
            "a": (unet_config(), Scaled(0.9)),
            "b": (detector, None),
            "c": (unet_config(("bubble", "void")), Scaled(0.9)),
            "d": (unet_config(border_width=2), Scaled(0.9)),
            "e": (unet_config(), Scaled(0.3)),
        },
    )
    one = run_folder(tmp_path, "a")
    image = tmp_path / "i.png"
    skio.imsave(image, np.zeros((64, 64), np.uint8), check_contrast=False)
    problems = {
        "b": f"is a yolo run but {one} is a unet run; an ensemble's runs must be of one kind",
        "c": f"predicts the classes ['bubble', 'void'] but {one} predicts ['bubble']; an "
        "ensemble's runs must predict the same classes",
        "d": f"has model labels 2 but {one} has 1; an ensemble's runs must agree on it",
    }
    for name, problem in problems.items():
        other = run_folder(tmp_path, name)
        status = main(["predict", str(one), str(other), str(image), "--out", str(tmp_path / "o")])
        out, err = capsys.readouterr()
        assert (status, out, err) == (1, "", f"emdl: error: {other}: {problem}\n")
    assert not (tmp_path / "o").exists()
    config, model = load_predictors([one, tmp_path / "e"])
    assert isinstance(model, Ensemble) and config.classes == ("bubble",)
    # An ensemble of one run is that run's own model.
    alone = load_predictors([one])[1]
    assert isinstance(alone, Scaled) and alone.factor == 0.9


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_an_ensemble_of_two_unets_finds_the_averaged_maps_defects(monkeypatch, tmp_path):
    # 0.9 x and 0.3 x the image average to 0.6 x: the bright square is found (at the U-Net's
    # threshold 0.5, by the ensemble and the 0.9 member), the dim one only by the 0.9 member.
    stand_in_runs(
        monkeypatch, {"a": (unet_config(), Scaled(0.9)), "b": (unet_config(), Scaled(0.3))}
    )
    image = np.zeros((64, 64), np.uint8)
    image[8:24, 8:24], image[40:56, 40:56] = 255, 178
    skio.imsave(tmp_path / "i.png", image, check_contrast=False)
    report = predict_images(
        "a", [tmp_path / "i.png"], tmp_path / "out", ensemble=["b"], uncertainty=True
    )
    assert (report.images, report.defects) == (1, 1)
    (defect,) = rows(tmp_path / "out/defects.csv")
    assert (defect["area"], defect["agreement"]) == ("256.0", "0.5")
    (summary,) = rows(tmp_path / "out/summary.csv")
    # The dim square of the 0.9 member matches none of the ensemble's: 1 of 2 members.
    assert summary["unexplained"] == "0.5"
    assert float(summary["uncertainty"]) == pytest.approx((0.5 + 0.5) / (1 + 0.5))
    assert (tmp_path / "out/uncertainty/i.png").is_file()
    # Without the ensemble, the first run alone finds both squares.
    alone = predict_images("a", [tmp_path / "i.png"], tmp_path / "alone")
    assert alone.defects == 2
