"""The detector on the lecture's helium-bubble TEM images, boxes from the labeled polygons.

    python -m emdl.experiments.yolo_bubbles [--data-dir DIR] [--out RUN_DIR] [--epochs N]

Trains emdl's YOLO-style detector on the bubble images. With the lecture's test pair in the data
folder it trains on both training images and scores the test image, its truth boxes being the
connected components of ``test_label.png`` (bubbles that touch there count as one); without it,
it trains on one image and scores the other, and says which.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path


def score_test_pair(model, config, image_path: Path, label_path: Path) -> dict:
    """Detection scores on the test image against the boxes of its label's components."""
    from skimage.measure import label, regionprops

    from emdl.io.image import read_image
    from emdl.metrics.detection import score_detections
    from emdl.predict.detect import detect_objects

    image = read_image(image_path)
    regions = regionprops(label(read_image(label_path) > 0.5))
    boxes = [[r.bbox[1], r.bbox[0], r.bbox[3], r.bbox[2]] for r in regions]
    truth = {"boxes": boxes, "classes": [0] * len(boxes)}
    found = detect_objects(model, image, config.model)
    metrics = score_detections([(image_path.name, found, truth)], list(config.classes))
    return metrics | {"evaluated_on": "test_image"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the bubbles files (default: found)")
    parser.add_argument("--out", default="runs/yolo_bubbles", help="run directory")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--steps-per-epoch", type=int, default=25)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from emdl.datasets import BUBBLES, locate, test_pair
    from emdl.errors import EmdlError
    from emdl.experiments.yolo_loops import detector_config, report
    from emdl.train.run import train_run

    try:
        folder = locate(BUBBLES, args.data_dir)
    except EmdlError as exc:
        print(f"yolo_bubbles: {exc}", file=sys.stderr)
        return 1
    pair = test_pair(folder)
    config = detector_config(
        [str(folder / name) for name in BUBBLES.train_labels],
        str(folder),
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        longest_side=None,
        window=256,
        validation_fraction=0.0 if pair else 0.5,
        # DL_for_Microscopy_Train_Lab_2.xml also labels four images the lecture does not ship.
        missing="skip",
    )
    print(f"data: {folder}; evaluating on " + ("test_image.png" if pair else "a held-out image"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the four images Lab_2 names but the lecture lacks
        result = train_run(config, args.out, verbose=2)
    metrics = result.metrics
    if pair is not None:
        metrics = score_test_pair(result.model, result.config, *pair)
        (Path(args.out) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(report(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
