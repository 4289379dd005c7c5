"""emdl.api: the README's "From Python" code, run as written on a trained stand-in run."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import box_image, box_xml, tiny_config


@pytest.mark.slow
def test_the_readme_python_example(labeled_folder, tmp_path, monkeypatch):
    from emdl.train.run import train_run

    labels, images = labeled_folder(
        {
            "a.png": (box_image(64), box_xml("a.png", 64)),
            "b.png": (box_image(64), box_xml("b.png", 64)),
        }
    )
    train_run(tiny_config(labels, images), tmp_path / "runs" / "unet_bubbles", verbose=0)
    monkeypatch.chdir(tmp_path)
    image = box_image(96)  # uint8, another size than the training images
    labels, images = str(labels), str(images)

    # --- the README's "From Python" section ---
    import emdl

    run = emdl.load_run("runs/unet_bubbles")
    found = run.predict(image)  # the defects of any image, any size and dtype
    rows = run.measure(image, pixel_size_nm=0.5)  # one defects.csv row per defect
    scores = run.evaluate([labels], images)  # emdl evaluate's scores
    # --- end ---

    assert run.classes == ["bubble", "loop"]
    assert found.labels.shape == (96, 96) and len(rows) == len(found)
    assert all(row["area_nm2"] == pytest.approx(row["area"] * 0.25) for row in rows)
    assert {"iou", "dice", "evaluated_images"} <= set(scores)
    threshold, min_area = run.thresholds()
    assert len(run.predict(image, threshold=threshold, min_area=min_area)) == len(found)
    assert np.array_equal(run.predict(image.astype(np.float32) * 7).labels, found.labels)


def test_a_folder_without_a_run_is_one_error(tmp_path):
    import emdl
    from emdl.errors import InputError

    with pytest.raises(InputError, match="not a finished run directory"):
        emdl.load_run(tmp_path)
