"""How real are the synthetic bubbles? A U-Net trained on synthetic bubbles alone, scored on the
lecture's two real images, for a few settings of the image model.

    python benchmarks/synthetic_realism.py [--data-dir DIR] [--settings byeye,coherent,...]
        [--images 16] [--size 512] [--epochs 16] [--steps-per-epoch 30] [--out runs/realism]

Per setting: ``--images`` synthetic ``--size`` x ``--size`` bubble images (``emdl synth --kind
bubbles`` with the setting's changes, seed 0) train the ``unet_bubbles`` experiment's U-Net
(``emdl.experiments.unet_bubbles.default_config``: 256 x 256 crops, every augmentation, 16
epochs of 30 steps; nothing held out, so no calibration), which is then scored on both real
images (never seen, never used to choose anything in the run): foreground IoU pooled over both,
and with ``emdl predict``'s default post-processing (threshold 0.5, ``--min-area`` 10) the count
error (predicted minus true, % of true) and the mean equivalent diameter error of the bubbles
not cut by the edge (%). Runs already trained in ``--out`` are reused. The README's table was
measured with ``--images 12 --epochs 8 --steps-per-epoch 30`` (``highdose`` not run).

Settings (changes to ``byeye``, the bubble preset as it was matched by eye to the real images;
``large`` scored best and is now ``emdl.synth.presets.preset("bubbles")``):

- ``byeye``: df 2000 nm, alpha 1 mrad, MTF 2.5 px, 5 e-/A^2, 0.2 nm/px, median diameter 16 nm,
  3e22 m^-3, apart in projection;
- ``coherent``: a field-emission gun's coherence and a sharp camera (alpha 0.1 mrad, MTF 1 px);
- ``defocus500``: 500 nm under-focus instead of 2000 (thinner Fresnel fringes);
- ``highdose``: 50 e-/A^2 instead of 5 (little noise);
- ``large``: bubbles of median diameter 19 nm (the preset now);
- ``nofringe``: in focus (df 0): the cavities show by their absorption only;
- ``touching``: 1.5 times the number density (4.5e22 m^-3) and spheres that only must not
  intersect (``overlap="volume"``), so projections touch and overlap as in the real images.

Data: ``--data-dir``, else ``$EMDL_DATA_DIR/bubbles``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMAGES = ("DL_for_Microscopy_Train_Img_1.png", "DL_for_Microscopy_Train_Img_2.png")
LABELS = ("DL_for_Microscopy_Train_Lab_1.xml", "DL_for_Microscopy_Train_Lab_2.xml")
SETTINGS = ("byeye", "coherent", "defocus500", "highdose", "large", "nofringe", "touching")


def scene_settings(name: str):
    """The by-eye bubbles settings with the changes of setting ``name``."""
    from emdl.synth.presets import BY_EYE_BUBBLE_DIAMETER_NM, overlapping_bubbles, preset

    replace = dataclasses.replace
    base = preset("bubbles")
    (bubbles,) = base.populations
    base = replace(
        base, populations=(replace(bubbles, median_diameter_nm=BY_EYE_BUBBLE_DIAMETER_NM),)
    )
    optics, detector = base.optics, base.detector
    if name == "byeye":
        return base
    if name == "coherent":
        return replace(
            base,
            optics=replace(optics, convergence_mrad=0.1),
            detector=replace(detector, mtf_sigma_px=1.0),
        )
    if name == "defocus500":
        return replace(base, optics=replace(optics, defocus_nm=500.0))
    if name == "highdose":
        return replace(base, detector=replace(detector, dose=50.0))
    if name == "large":
        (bubbles,) = base.populations
        return replace(base, populations=(replace(bubbles, median_diameter_nm=19.0),))
    if name == "nofringe":
        return replace(base, optics=replace(optics, defocus_nm=0.0))
    if name == "touching":
        # The real images hold more bubbles (51 in two, edge-cut ones included) and more of them
        # touch than byeye's (about 20 an image, never overlapping in projection).
        return overlapping_bubbles()
    raise SystemExit(f"synthetic_realism: unknown setting {name!r}; known: {', '.join(SETTINGS)}")


def train_on_synthetic(name: str, args, out: Path):
    """(config, model) of a U-Net trained on the synthetic images of setting ``name``."""
    from emdl.experiments.unet_bubbles import default_config
    from emdl.synth import write_dataset
    from emdl.train.run import load_run, train_run

    run_dir = out / name / "run"
    if (run_dir / "metrics.json").is_file():  # trained by an earlier benchmark run
        return load_run(run_dir)
    data = out / name / "data"
    if not (data / "annotations.xml").is_file():
        start = time.perf_counter()
        report = write_dataset(
            data, "bubbles", args.images, args.size, seed=0, settings=scene_settings(name)
        )
        print(f"{name}: {report.summary()} in {time.perf_counter() - start:.0f} s", flush=True)
    config = default_config(
        data, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, hold_out=False
    )
    config = dataclasses.replace(
        config,
        data=dataclasses.replace(
            config.data, labels=(str(data / "annotations.xml"),), images=str(data / "images")
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train_run(config, run_dir, verbose=2)
    return result.config, result.model


def score_on_real(config, model, folder: Path) -> dict:
    """IoU pooled over the two real images; count and mean-diameter errors pooled too."""
    from emdl.analysis.statistics import compare_sets, instance_defects
    from emdl.analysis.truth import truth_defects
    from emdl.io.image import read_image
    from emdl.io.labels import read_labels
    from emdl.labels import semantic_mask
    from emdl.metrics.evaluate import score_masks
    from emdl.train.calibration import MIN_AREA

    classes = list(config.classes)
    kind = config.model_kind
    pairs, predicted, truth = [], [], []
    for image_name, labels_name in zip(IMAGES, LABELS, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            annotations = read_labels(folder / labels_name)
        (annotation,) = [a for a in annotations.images if a.name == image_name]
        image = read_image(folder / image_name)
        pairs.append(
            (image_name, kind.predict(model, image, config), semantic_mask(annotation, classes))
        )
        found = kind.instances(
            model, image, config, threshold=kind.default_threshold(config, None), min_area=MIN_AREA
        )
        predicted += instance_defects(found, classes)
        truth += truth_defects(annotation)
    row = compare_sets(predicted, truth)
    diameter = row["mean_diameter_error"]
    return {
        "iou": score_masks(pairs, classes)["iou"],
        "count": f"{row['count_predicted']}/{row['count_truth']}",
        "count_error": 100 * row["count_error"] / max(row["count_truth"], 1),
        "diameter_error": None if diameter == "" else 100 * diameter / row["mean_diameter_truth"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the bubbles folder (default $EMDL_DATA_DIR/bubbles)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated")
    parser.add_argument("--images", type=int, default=16, help="synthetic images per setting")
    parser.add_argument("--size", type=int, default=512, help="their width and height, pixels")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--steps-per-epoch", type=int, default=30)
    parser.add_argument("--out", default="runs/realism", help="folder for data and runs")
    args = parser.parse_args(argv)
    folder = Path(args.data_dir or Path(os.environ.get("EMDL_DATA_DIR", "data")) / "bubbles")
    if not all((folder / name).is_file() for name in (*IMAGES, *LABELS)):
        print(f"synthetic_realism: {folder}: no bubbles images (give --data-dir)", file=sys.stderr)
        return 1
    names = args.settings.split(",")
    for name in names:
        scene_settings(name)  # unknown names fail before anything trains
    rows = []
    for name in names:
        start = time.perf_counter()
        config, model = train_on_synthetic(name, args, Path(args.out))
        rows.append((name, score_on_real(config, model, folder)))
        print(f"{name}: trained and scored in {time.perf_counter() - start:.0f} s", flush=True)
    print()
    print(f"{'setting':12}{'IoU':>7}{'count':>10}{'count err':>11}{'diam err':>10}")
    for name, row in rows:
        diameter = "-" if row["diameter_error"] is None else f"{row['diameter_error']:+.1f}%"
        print(
            f"{name:12}{row['iou']:>7.3f}{row['count']:>10}{row['count_error']:>+10.1f}%"
            f"{diameter:>10}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
