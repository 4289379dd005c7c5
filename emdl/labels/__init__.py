"""Label encoders: shapes to semantic masks, detection boxes and instance masks."""

from emdl.labels.instances import boxes, convert_boxes, instances, shape_box
from emdl.labels.rasterize import shape_mask
from emdl.labels.semantic import semantic_mask

__all__ = ["boxes", "convert_boxes", "instances", "semantic_mask", "shape_box", "shape_mask"]
