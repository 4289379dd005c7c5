"""Results out of emdl: predictions as CVAT XML."""

from emdl.export.cvat_predictions import instance_shapes, mask_polygon, write_predictions

__all__ = ["instance_shapes", "mask_polygon", "write_predictions"]
