"""Input pipelines: labeled micrographs to batches of augmented crops for all three models."""

from emdl.data.augment import EFFECTS, Augmentation, Effect
from emdl.data.datasets import (
    TARGETS,
    build_dataset,
    detection_dataset,
    instance_dataset,
    semantic_dataset,
    window_starts,
)
from emdl.data.sources import LabeledImage, load_labeled_images, split_by_image

__all__ = [
    "EFFECTS",
    "TARGETS",
    "Augmentation",
    "Effect",
    "LabeledImage",
    "build_dataset",
    "detection_dataset",
    "instance_dataset",
    "load_labeled_images",
    "semantic_dataset",
    "split_by_image",
    "window_starts",
]
