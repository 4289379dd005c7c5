"""Label encoders: shapes to the targets the models learn from and are scored against
(``semantic_mask``, ``box_targets``, ``instance_targets``)."""

from emdl.labels.instances import box_targets, convert_boxes, instance_targets
from emdl.labels.semantic import semantic_mask

__all__ = ["box_targets", "convert_boxes", "instance_targets", "semantic_mask"]
