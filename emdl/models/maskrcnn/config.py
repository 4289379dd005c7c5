"""The settings that shape a Mask R-CNN, stored in the run's ``config.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from emdl.models.inference import TiledInference
from emdl.settings import from_known_fields

LEVELS = (2, 3, 4, 5)  # pyramid levels P2..P5, strides 4..32
MASK_SIZE = 28  # the mask head's output grid, as in the paper
LOSSES = ("rpn_class", "rpn_box", "class", "box", "mask")
DEFAULT_LOSS_WEIGHTS = dict.fromkeys(LOSSES, 1.0)


@dataclass(frozen=True)
class MaskRCNNConfig(TiledInference):
    """A Mask R-CNN sized for CPUs by default.

    Backbone: keras-cv's ``ResNetBackbone`` with ``filters`` and ``blocks`` per stack (one stack
    per level P2..P5) of ``block_type`` ("basic_block", whose first stack must have the stem's 64
    filters, or "block", the bottleneck); a feature
    pyramid of ``fpn_width`` channels. Anchors: one square size per level, ``anchor_sizes``
    pixels (P2..P5), times ``aspect_ratios`` (width / height).

    Region proposals: ``rpn_batch`` anchors per image sampled for the proposal losses, at most
    ``rpn_positive_fraction`` of them positive (IoU >= 0.7 with an object, or an object's best
    anchor), negatives below IoU 0.3; ``proposals_train`` / ``proposals_test`` proposals kept
    after non-max suppression (IoU ``rpn_iou_threshold``) of the ``pre_nms_proposals`` best per
    level. Second stage: ``roi_batch`` proposals per image (the objects' own boxes appended),
    at most ``roi_positive_fraction`` positive (IoU >= 0.5); a box head of two dense layers of
    ``box_head_width``, a mask head of four 3x3 convolutions of ``mask_head_width`` and a 2x
    up-convolution to 28 x 28 masks per class.

    Inference: class-wise non-max suppression at ``iou_threshold`` over detections scoring at
    least ``confidence_threshold``, at most ``max_detections`` per tile; whole micrographs are
    resized by ``scale`` (or to ``longest_side`` pixels) and predicted in ``tile`` x ``tile``
    tiles overlapping by ``overlap``. ``score_threshold`` and ``mask_threshold`` (the lecture's
    0.7 and 0.5) turn detections into a foreground mask. ``classes`` object classes (0: as many
    as the labels have).
    """

    filters: tuple[int, ...] = (64, 64, 128, 256)
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    block_type: str = "basic_block"
    fpn_width: int = 64
    anchor_sizes: tuple[float, ...] = (16.0, 32.0, 64.0, 128.0)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_batch: int = 256
    rpn_positive_fraction: float = 0.5
    pre_nms_proposals: int = 1000
    proposals_train: int = 512
    proposals_test: int = 300
    rpn_iou_threshold: float = 0.7
    roi_batch: int = 128
    roi_positive_fraction: float = 0.25
    box_head_width: int = 256
    mask_head_width: int = 64
    classes: int = 0
    tile: int = 256
    overlap: int = 96
    iou_threshold: float = 0.5
    max_detections: int = 100
    score_threshold: float = 0.7
    mask_threshold: float = 0.5

    def __post_init__(self) -> None:
        for name in ("filters", "blocks", "anchor_sizes", "aspect_ratios"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        super().__post_init__()

    def checks(self) -> list[tuple[bool, str]]:
        n = len(LEVELS)
        return [
            (len(self.filters) == n and len(self.blocks) == n, f"filters and blocks need {n}"),
            (min(self.filters) > 0 and min(self.blocks) > 0, "filters and blocks must be > 0"),
            (self.block_type in ("basic_block", "block"), "block_type: basic_block or block"),
            # keras-cv's basic-block stack 1 adds its input (the 64-channel stem) unchanged.
            (
                self.block_type == "block" or self.filters[0] == 64,
                "basic_block needs filters[0] 64",
            ),
            (len(self.anchor_sizes) == n, f"anchor_sizes needs one size per level ({n})"),
            (min(self.anchor_sizes) > 0 and min(self.aspect_ratios) > 0, "anchors must be > 0"),
            (self.fpn_width > 0, "fpn_width must be positive"),
            (self.rpn_batch > 0 and self.roi_batch > 0, "rpn_batch and roi_batch must be > 0"),
            (0 < self.rpn_positive_fraction <= 1, "rpn_positive_fraction must be in (0, 1]"),
            (0 < self.roi_positive_fraction <= 1, "roi_positive_fraction must be in (0, 1]"),
            (self.proposals_train > 0 and self.proposals_test > 0, "proposals must be > 0"),
            (self.pre_nms_proposals > 0, "pre_nms_proposals must be positive"),
            (0 < self.rpn_iou_threshold <= 1, "rpn_iou_threshold must be in (0, 1]"),
            (self.classes >= 0, f"classes must be 0 (from the labels) or more, got {self.classes}"),
            *super().checks(),
            (0 <= self.score_threshold < 1, "score_threshold must be in [0, 1)"),
            (0 < self.mask_threshold < 1, "mask_threshold must be in (0, 1)"),
        ]

    @property
    def anchors_per_location(self) -> int:
        return len(self.aspect_ratios)

    def to_dict(self) -> dict:
        values = asdict(self)
        for name in ("filters", "blocks", "anchor_sizes", "aspect_ratios"):
            values[name] = list(values[name])
        return values

    @classmethod
    def from_dict(cls, values: dict) -> MaskRCNNConfig:
        return from_known_fields(cls, values, "model")
