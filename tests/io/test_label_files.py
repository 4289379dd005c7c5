"""emdl.io.label_files: YOLO text labels and class-index mask PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import io as skio

from emdl.annotations import Annotations, Box, ImageAnnotation, Label, Polygon
from emdl.errors import InputError
from emdl.io.label_files import write_masks, write_yolo
from emdl.labels import semantic_mask

ANNOTATIONS = Annotations(
    labels=[Label("bubble"), Label("loop")],
    images=[
        ImageAnnotation(
            "train/a.png",
            width=20,
            height=10,
            shapes=[
                Box(label="loop", xtl=2, ytl=1, xbr=6, ybr=5),
                Polygon(label="bubble", points=((10, 0), (20, 0), (20, 10))),
            ],
        ),
        ImageAnnotation("b.jpg", width=8, height=8),
    ],
    source="labels.xml",
)


def test_yolo_lines_are_normalized_centre_boxes(tmp_path):
    paths = write_yolo(ANNOTATIONS, tmp_path)
    assert paths == [tmp_path / "labels/train/a.txt", tmp_path / "labels/b.txt"]
    assert paths[0].read_text() == (
        "1 0.200000 0.300000 0.200000 0.400000\n0 0.750000 0.500000 0.500000 1.000000\n"
    )
    assert paths[1].read_text() == ""
    assert (tmp_path / "classes.txt").read_text() == "bubble\nloop\n"


def test_masks_are_class_index_pngs(tmp_path):
    paths = write_masks(ANNOTATIONS, tmp_path)
    assert paths == [tmp_path / "train/a.png", tmp_path / "b.png"]
    for path, image in zip(paths, ANNOTATIONS.images, strict=True):
        written = skio.imread(path)
        assert written.dtype == np.uint8
        assert np.array_equal(written, semantic_mask(image, ["bubble", "loop"]))
    assert set(np.unique(skio.imread(paths[0]))) == {0, 1, 2}


def test_two_images_that_would_share_a_file_are_an_error(tmp_path):
    clash = Annotations(
        [Label("loop")], [ImageAnnotation("a.png", 4, 4), ImageAnnotation("a.jpg", 4, 4)], "x.xml"
    )
    with pytest.raises(InputError, match="images 'a.png' and 'a.jpg' would both be written to"):
        write_masks(clash, tmp_path)


def test_image_names_may_not_leave_the_output_folder(tmp_path):
    escape = Annotations([Label("loop")], [ImageAnnotation("../../a.png", 4, 4)], "x.xml")
    with pytest.raises(InputError, match="image name leaves the output folder"):
        write_yolo(escape, tmp_path)
