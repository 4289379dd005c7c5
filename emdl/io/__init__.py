"""Files in and out: label files (CVAT XML, COCO JSON) and micrographs."""

from emdl.io.coco import read_coco, write_coco
from emdl.io.cvat import read_cvat, write_cvat
from emdl.io.image import Micrograph, image_size, read_image, read_micrograph
from emdl.io.labels import check_images, read_labels

__all__ = [
    "Micrograph",
    "check_images",
    "image_size",
    "read_coco",
    "read_cvat",
    "read_image",
    "read_labels",
    "read_micrograph",
    "write_coco",
    "write_cvat",
]
