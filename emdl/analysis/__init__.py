"""Numbers from defect instances: per-defect properties, per-image summaries, truth comparison."""

from emdl.analysis.statistics import (
    Defect,
    box_defect,
    compare_image,
    compare_sets,
    instance_defects,
    mask_defects,
    summarize,
)

__all__ = [
    "Defect",
    "box_defect",
    "compare_image",
    "compare_sets",
    "instance_defects",
    "mask_defects",
    "summarize",
]
