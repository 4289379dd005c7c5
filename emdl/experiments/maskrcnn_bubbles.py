"""The lecture's Mask R-CNN experiment on its helium-bubble TEM images, trained from scratch.

    python -m emdl.experiments.maskrcnn_bubbles [--data-dir DIR | --synthetic] [--out RUN_DIR]
        [--epochs N]

Trains emdl's Mask R-CNN (one instance per labeled polygon) on the two training images, then
scores it on the lecture's test pair (``test_image.png``, ``test_label.png``) when the data
folder has it, else on a training image it held out, and says which. The score is the
lecture's: the foreground IoU of the union of the instance masks scoring above 0.7 (mask pixels
above 0.5) against the truth mask. The lecture's Mask R-CNN started from COCO weights and
reached 0.652; this one starts from nothing. ``--synthetic`` trains and scores on generated
bubbles instead, with no data folder and no download.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from emdl.experiments import bubbles

LECTURE_IOU = 0.652  # torchvision Mask R-CNN, COCO-pretrained, 50 epochs


def default_config(
    labels: Sequence[str], images: str, *, epochs: int, steps_per_epoch: int, hold_out: bool
):
    """The experiment's settings: the CPU-sized Mask R-CNN of :class:`MaskRCNNConfig`, 256 x 256
    crops of 4, every augmentation, AdamW with cosine decay."""
    from emdl.models.maskrcnn import MaskRCNNConfig
    from emdl.train.config import DataConfig, RunConfig, TrainingConfig

    data = DataConfig(
        labels=tuple(labels),
        images=images,
        # DL_for_Microscopy_Train_Lab_2.xml also labels four images the lecture does not ship.
        missing="skip",
        validation_fraction=0.5 if hold_out else 0.0,
        window=256,
        stride=128,
        batch_size=4,
    )
    training = TrainingConfig(
        epochs=epochs, steps_per_epoch=steps_per_epoch, learning_rate=1e-3, seed=0
    )
    return RunConfig(data=data, kind="maskrcnn", model=MaskRCNNConfig(), training=training)


def score_test_pair(model, config, image_path: Path, label_path: Path) -> dict:
    """The lecture's IoU (and Dice) of the union of the instance masks of the test image
    against its 0/255 label image, and the number of instances above the score threshold."""
    from emdl.io.image import read_image
    from emdl.metrics.evaluate import score_masks
    from emdl.metrics.instances import union_mask

    found = config.model_kind.predict(model, read_image(image_path), config)
    threshold = config.model.score_threshold
    predicted = union_mask(found, threshold)
    truth = (read_image(label_path) > 0.5).astype("uint8")
    metrics = score_masks([(image_path.name, predicted, truth)], list(config.classes))
    metrics["instances"] = int((found.scores > threshold).sum())
    return metrics | {"evaluated_on": "test_image"}


def main(argv: Sequence[str] | None = None) -> int:
    args = bubbles.arguments(
        "maskrcnn_bubbles", __doc__.splitlines()[0], argv, epochs=30, steps_per_epoch=40
    )
    data = bubbles.bubble_data("maskrcnn_bubbles", args)
    if data is None:
        return 1
    pair = data.pair
    config = default_config(
        data.labels,
        data.images,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        hold_out=pair is None,
    )
    result = bubbles.train(data.into(config), args.out, overwrite=args.overwrite)
    metrics = result.metrics
    if pair is not None:
        metrics = score_test_pair(result.model, result.config, *pair)
    else:
        metrics["instances"] = sum(image["detected"] for image in metrics["images"])
    if data.synthetic:
        metrics["synthetic"] = True
    (Path(args.out) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if "mask_ap50" in metrics:
        print(
            f"mask AP50 {metrics['mask_ap50']:.3f}, mask AP50:95 {metrics['mask_ap50_95']:.3f}, "
            f"box AP50 {metrics['ap50']:.3f}, F1@0.5 {metrics['f1_50']:.3f}"
        )
    print(f"{metrics['instances']} instances scoring above {config.model.score_threshold}")
    lecture = f"lecture's Mask R-CNN, COCO-pretrained: {LECTURE_IOU}"
    if data.synthetic:
        lecture = f"not comparable with the {lecture} on its real test image"
    print(f"IoU {metrics['iou']:.3f} on {data.scored_on} ({lecture})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
