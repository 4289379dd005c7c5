"""Results out of emdl for other tools: SavedModels for TF Serving (:mod:`saved_model`) and
predictions as CVAT XML (:mod:`cvat_predictions`)."""

from emdl.export.cvat_predictions import instance_shapes, mask_polygon, write_predictions

__all__ = ["instance_shapes", "mask_polygon", "write_predictions"]
