"""Scores of predictions against labels."""

from emdl.metrics.detection import (
    box_iou,
    detection_errors,
    match_detections,
    score_detections,
)
from emdl.metrics.segmentation import (
    ForegroundDice,
    ForegroundIoU,
    PixelAccuracy,
    dice_score,
    iou_score,
)

__all__ = [
    "ForegroundDice",
    "ForegroundIoU",
    "PixelAccuracy",
    "box_iou",
    "detection_errors",
    "dice_score",
    "iou_score",
    "match_detections",
    "score_detections",
]
