"""The detector on the lecture's helium-bubble TEM images, boxes from the labeled polygons.

    python -m emdl.experiments.yolo_bubbles [--data-dir DIR | --synthetic] [--out RUN_DIR]
        [--epochs N]

Trains emdl's YOLO-style detector on the bubble images. With the lecture's test pair in the data
folder it trains on both training images and scores the test image, its truth boxes being the
connected components of ``test_label.png`` (bubbles that touch there count as one); without it,
it trains on one image and scores the other, and says which. ``--synthetic`` trains and scores
on generated bubbles instead, with no data folder and no download.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from emdl.experiments import bubbles


def score_test_pair(model, config, image_path: Path, label_path: Path) -> dict:
    """Detection scores on the test image against the boxes of its label's components."""
    from skimage.measure import label, regionprops

    from emdl.io.image import read_image
    from emdl.metrics.detection import score_detections

    image = read_image(image_path)
    regions = regionprops(label(read_image(label_path) > 0.5))
    boxes = [[r.bbox[1], r.bbox[0], r.bbox[3], r.bbox[2]] for r in regions]
    truth = {"boxes": boxes, "classes": [0] * len(boxes)}
    found = config.model_kind.predict(model, image, config)
    metrics = score_detections([(image_path.name, found, truth)], list(config.classes))
    return metrics | {"evaluated_on": "test_image"}


def main(argv: Sequence[str] | None = None) -> int:
    args = bubbles.arguments(
        "yolo_bubbles", __doc__.splitlines()[0], argv, epochs=12, steps_per_epoch=25
    )
    data = bubbles.bubble_data("yolo_bubbles", args)
    if data is None:
        return 1
    pair = data.pair

    from emdl.experiments.yolo_loops import detector_config, report

    config = detector_config(
        data.labels,
        data.images,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        longest_side=None,
        window=256,
        validation_fraction=0.0 if pair else 0.5,
        # DL_for_Microscopy_Train_Lab_2.xml also labels four images the lecture does not ship.
        missing="skip",
    )
    result = bubbles.train(data.into(config), args.out, overwrite=args.overwrite)
    metrics = result.metrics
    if pair is not None:
        metrics = score_test_pair(result.model, result.config, *pair)
        (Path(args.out) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(report(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
