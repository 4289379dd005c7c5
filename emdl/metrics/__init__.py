"""Scores of predictions against labels."""

from emdl.metrics.segmentation import (
    ForegroundDice,
    ForegroundIoU,
    PixelAccuracy,
    dice_score,
    iou_score,
)

__all__ = ["ForegroundDice", "ForegroundIoU", "PixelAccuracy", "dice_score", "iou_score"]
