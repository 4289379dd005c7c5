"""The training-free parts of benchmarks/detector_ablation.py: the variants' configs (each one
change to the yolo_loops baseline, at the same steps), the variant list, the table and the
one-line refusals before anything trains."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest
from skimage import io as skio

from tests.conftest import box_image, box_xml, cvat_text, load_benchmark


@pytest.fixture(scope="module")
def ablation():
    return load_benchmark("detector_ablation")


ARGS = SimpleNamespace(
    epochs=30, steps_per_epoch=40, ema_momentum=0.9, warmup_steps=None, seed=3
)  # fmt: skip


def test_each_variant_changes_one_thing_at_the_same_steps(ablation):
    configs = {
        name: ablation.variant_config(name, "t.xml", "v.xml", "images", ARGS)
        for name in ablation.VARIANTS
    }
    baseline = configs["baseline"]
    assert baseline.training.budget_minutes is None and baseline.training.seed == 3
    assert (baseline.training.epochs, baseline.training.steps_per_epoch) == (30, 40)
    assert (baseline.training.ema_momentum, baseline.training.warmup_steps) == (0.0, 0)
    assert baseline.data.validation_labels == ("v.xml",) and baseline.data.window == 320

    def changes(config):
        """The settings in which ``config`` differs from the baseline's."""
        found = {}
        for section in ("data", "model", "training"):
            mine, theirs = getattr(config, section), getattr(baseline, section)
            for field in dataclasses.fields(mine):
                if getattr(mine, field.name) != getattr(theirs, field.name):
                    found[f"{section}.{field.name}"] = getattr(mine, field.name)
        return found

    assert changes(configs["ema"]) == {"training.ema_momentum": 0.9}
    assert changes(configs["warmup"]) == {"training.warmup_steps": 120}  # 3 epochs of 40
    assert changes(configs["whole"]) == {
        "data.window": 640, "data.stride": 640, "model.tile": 1280, "model.overlap": 160,
    }  # fmt: skip
    assert changes(configs["whole_pixels"]) == changes(configs["whole"]) | {
        "training.steps_per_epoch": 10
    }
    assert changes(configs["sgd"]) == {"training.optimizer": "sgd", "training.learning_rate": 0.01}
    assert baseline.model.longest_side == 640
    assert baseline.training.learning_rate == 0.004
    assert changes(configs["slow_lr"]) == {"training.learning_rate": 0.002}
    assert changes(configs["fine"]) == {"model.longest_side": 1024}
    for name in set(configs) - {"narrow_zoom", "mosaic"}:
        assert configs[name].augmentation == baseline.augmentation
    assert changes(configs["mosaic"]) == {}
    assert configs["mosaic"].augmentation == baseline.augmentation | {
        "mosaic": {"probability": 0.5, "range": [0.25, 0.75]}
    }
    narrow = dict(configs["narrow_zoom"].augmentation)
    assert narrow.pop("zoom") == {"probability": 0.5, "range": [0.75, 1.33]}
    assert baseline.augmentation["zoom"] == {"probability": 1.0, "range": [0.5, 1.5]}
    assert changes(configs["narrow_zoom"]) == {}
    assert narrow == {k: v for k, v in baseline.augmentation.items() if k != "zoom"}
    short = SimpleNamespace(**{**vars(ARGS), "epochs": 2, "steps_per_epoch": 2})
    assert ablation.warmup_steps(short) == 3  # fewer than the run's 4 steps


def test_variants_and_table(ablation):
    assert ablation.parse_variants(" ema,baseline ") == ["ema", "baseline"]
    for bad in ("ema,ema", "adam", ","):
        with pytest.raises(ValueError, match="expected distinct names among baseline, ema"):
            ablation.parse_variants(bad)
    row = {"variant": "ema", "ap50": 0.5, "ap50_95": 0.25, "precision50": 0.75,
           "recall50": 0.5, "f1_50": 0.6, "count_error": 1.5, "steps": 1200,
           "train_seconds": 61.4}  # fmt: skip
    lines = ablation.table([row]).splitlines()
    assert lines[0].split() == ["variant", "AP50", "AP50:95", "P", "R", "F1", "count", "err",
                                "steps", "train", "s"]  # fmt: skip
    assert lines[1].split() == ["ema", "0.500", "0.250", "0.750", "0.500", "0.600", "1.50",
                                "1200", "61"]  # fmt: skip


def test_bad_inputs_end_in_one_line_before_anything_trains(ablation, tmp_path, capsys):
    data = tmp_path / "data"
    out = tmp_path / "out"
    common = ["--data-dir", str(data), "--out", str(out)]
    assert ablation.main([*common, "--variants", "adam"]) == 1
    assert "--variants 'adam': expected distinct names" in capsys.readouterr().err
    assert ablation.main(common) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "loops111/annotations.xml: not found" in err
    (data / "loops111" / "images").mkdir(parents=True)
    xml = cvat_text(box_xml("a.png", 64, [(4, 4, 20, 20)], label="loop"), labels=("loop",))
    (data / "loops111" / "annotations.xml").write_text(xml)
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert ablation.main(common) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not this benchmark's folder with the same settings" in err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    (out / "settings.json").write_text(json.dumps({"seed": 1}))
    assert ablation.main(common) == 1
    assert "same settings" in capsys.readouterr().err


def test_a_kept_row_of_another_config_is_refused_not_reused(ablation, tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    (data / "loops111" / "images").mkdir(parents=True)
    body = []
    for name in ("a.png", "b.png"):
        skio.imsave(data / "loops111" / "images" / name, box_image(64), check_contrast=False)
        body.append(box_xml(name, 64, [(4, 4, 20, 20)], label="loop"))
    (data / "loops111" / "annotations.xml").write_text(cvat_text("\n".join(body), labels=("loop",)))
    common = ["--data-dir", str(data), "--out", str(out), "--variants", "baseline"]
    settings = {"data_dir": str(data.resolve()), "epochs": 30, "steps_per_epoch": 40,
                "ema_momentum": 0.99, "warmup_steps": None, "seed": 0,
                "validation_fraction": 0.5, "limit_images": None}  # fmt: skip
    (out / "baseline").mkdir(parents=True)
    (out / "settings.json").write_text(json.dumps(settings))
    (out / "baseline" / "row.json").write_text(json.dumps({"variant": "baseline", "config": {}}))
    assert ablation.main([*common, "--validation-fraction", "0.5"]) == 1
    assert capsys.readouterr().err == (
        f"detector_ablation: {out / 'baseline' / 'row.json'}: trained with another config than "
        "variant baseline has now (changed defaults?); give a new --out\n"
    )
