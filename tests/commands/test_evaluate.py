"""emdl.commands.evaluate: the job behind `emdl evaluate`."""

from __future__ import annotations

from emdl.cli import main
from emdl.train.config import DataConfig, RunConfig
from tests.conftest import box_xml, cvat_text


def test_no_run_and_no_images_are_one_line_each(tmp_path, capsys, monkeypatch):
    labels = tmp_path / "labels.xml"
    labels.write_text(cvat_text(box_xml("gone.png", 64)))
    images = tmp_path / "images"
    images.mkdir()
    args = ["evaluate", str(tmp_path), "--labels", str(labels), "--images", str(images)]
    assert main(args) == 1
    assert capsys.readouterr().err == (
        f"emdl: error: {tmp_path}: not a finished run directory: no config.json\n"
    )
    config = RunConfig(data=DataConfig(labels=(str(labels),), images=str(images)))
    monkeypatch.setattr("emdl.commands.evaluate.load_predictor", lambda run_dir: (config, None))
    assert main([*args, "--skip-missing"]) == 1
    warning, error = capsys.readouterr().err.splitlines()
    assert warning.startswith("emdl: warning: ") and "'gone.png' not found" in warning
    assert error == (
        f"emdl: error: {images}: none of the labeled images is in this folder: nothing to score"
    )
