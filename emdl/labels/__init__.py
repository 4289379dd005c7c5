"""Label encoders: shapes to the targets the models learn from and are scored against
(``semantic_mask``, ``object_distance``, ``box_targets``, ``instance_targets``)."""

from emdl.labels.instances import box_targets, convert_boxes, instance_targets
from emdl.labels.semantic import object_distance, semantic_mask

__all__ = ["box_targets", "convert_boxes", "instance_targets", "object_distance", "semantic_mask"]
