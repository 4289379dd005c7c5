"""Label encoders: shapes to the targets the models learn from (semantic masks, detection
boxes, instance masks)."""

from emdl.labels.instances import boxes, convert_boxes, instances
from emdl.labels.semantic import semantic_mask

__all__ = ["boxes", "convert_boxes", "instances", "semantic_mask"]
