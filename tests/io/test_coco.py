"""COCO instances JSON: exact round trips, foreign files, standard consumers and bad input."""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from emdl.annotations import (
    Annotations,
    Box,
    Ellipse,
    ImageAnnotation,
    Label,
    Mask,
    Points,
    Polygon,
    Polyline,
    Tag,
)
from emdl.errors import InputError, LabelWarning
from emdl.io.coco import read_coco, write_coco
from emdl.io.labels import read_labels

LABELS = [
    Label("bubble", "#ff0000", "polygon"),
    Label("loop", "#00ff00", "any"),
    Label("good", "", "tag"),
]


def _mask_bitmap() -> np.ndarray:
    bitmap = np.zeros((7, 9), dtype=bool)
    bitmap[1:6, 2:8] = True
    bitmap[3, 4] = False
    return bitmap


def sample() -> Annotations:
    """Two images of different sizes with one shape of each type, in ascending z_order."""
    shapes = [
        Polygon(
            label="bubble",
            points=((10.1, 10.0), (30.0, 10.0), (30.0, 20.0), (10.0, 1 / 3 + 20)),
            occluded=True,
            group_id=4,
            attributes=(("size", "big"), ("sharp", "true")),
        ),
        Box(label="loop", xtl=40.5, ytl=5.25, xbr=50.0, ybr=15.0, rotation=30.0, source="auto"),
        Mask.from_array(_mask_bitmap(), left=5, top=30, label="bubble", group_id=4),
        Polyline(label="loop", points=((1.0, 2.0), (3.5, 4.25), (7.0, 1.0))),
        Points(label="loop", points=((2.0, 3.0),)),
        Ellipse(label="bubble", cx=20.0, cy=35.0, rx=6.0, ry=3.5, rotation=20.0, z_order=1),
    ]
    images = [
        ImageAnnotation(
            "train/a.png",
            64,
            48,
            shapes,
            tags=[Tag("good", attributes=(("score", "0.9"),))],
            id=7,
            subset="train",
        ),
        ImageAnnotation(
            "val/b.png",
            32,
            20,
            [Polygon(label="loop", points=((1.0, 1.0), (9.0, 1.0), (5.0, 8.0)))],
        ),
    ]
    return Annotations(list(LABELS), images)


def write_json(tmp_path: Path, data: object, name: str = "coco.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.fixture
def written(tmp_path: Path) -> Path:
    path = tmp_path / "out.json"
    write_coco(sample(), path)
    return path


def test_round_trip_is_exact(written: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = read_coco(written)
    original = sample()
    assert back.labels == original.labels
    assert back.images == original.images
    assert [type(s) for s in back.images[0].shapes] == [type(s) for s in original.images[0].shapes]
    assert back.source == str(written)
    assert not back.report.skipped and back.report.clipped == 0


# pycocotools' decode (in annToMask) warns under numpy 2.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_written_file_is_standard_coco(written: Path) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(written))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["bubble", "loop", "good"]
    first = coco.loadImgs(1)[0]
    assert (first["file_name"], first["width"], first["height"]) == ("train/a.png", 64, 48)
    polygon, box, mask, polyline, points, ellipse = coco.loadAnns(coco.getAnnIds(imgIds=1))

    # The polygon covers x 10..30, y 10..20 (give or take its slanted sides).
    expected = np.zeros((48, 64), dtype=bool)
    expected[10:20, 10:30] = True
    drawn = coco.annToMask(polygon).astype(bool)
    assert (drawn & expected).sum() / (drawn | expected).sum() > 0.9
    assert polygon["attributes"] == {
        "size": "big",
        "sharp": "true",
        "occluded": True,
        "z_order": 0,
        "source": "manual",
        "group_id": 4,
    }

    full = np.zeros((48, 64), dtype=bool)
    full[30:37, 5:14] = _mask_bitmap()
    assert (coco.annToMask(mask).astype(bool) == full).all()
    assert mask["area"] == full.sum() and mask["bbox"] == [7.0, 31.0, 6.0, 5.0]

    assert len(box["segmentation"][0]) == 8 and box["area"] == pytest.approx(9.5 * 9.75)
    assert len(ellipse["segmentation"][0]) == 2 * 64
    assert coco.annToMask(ellipse).sum() == pytest.approx(np.pi * 6 * 3.5, rel=0.1)
    assert polyline["segmentation"] == [] and polyline["bbox"] == [1.0, 1.0, 6.0, 3.25]
    assert points["area"] == 0 and points["bbox"] == [2.0, 3.0, 0.0, 0.0]
    assert all(a["iscrowd"] == 0 for a in (polygon, box, mask, polyline, points, ellipse))


def test_foreign_file(tmp_path: Path) -> None:
    disk = np.zeros((10, 20), dtype=np.uint8)
    yy, xx = np.mgrid[:10, :20]
    disk[(yy - 5) ** 2 + (xx - 14) ** 2 <= 9] = 1
    compressed = mask_utils.encode(np.asfortranarray(disk))
    compressed["counts"] = compressed["counts"].decode("ascii")
    image = {"id": 10, "file_name": "x.png", "width": 20, "height": 10}
    annotation = {"image_id": 10, "category_id": 3, "iscrowd": 0}
    coco = {
        "images": [image],
        "categories": [{"id": 3, "name": "bubble", "supercategory": "defect"}],
        "annotations": [
            {
                **annotation,
                "id": 1,
                "segmentation": [[1, 1, 5, 1, 5, 4], [10, 2, 14, 2, 14, 6, 10, 6]],
            },
            # Pixels (row 2..3, column 4..5), column-major: 42 zeros, 2 ones, 8 zeros, ...
            {
                **annotation,
                "id": 2,
                "iscrowd": 1,
                "segmentation": {"size": [10, 20], "counts": [42, 2, 8, 2, 146]},
            },
            {**annotation, "id": 3, "segmentation": compressed},
            # CVAT's COCO export keeps occluded, rotation and label attributes in "attributes".
            {
                **annotation,
                "id": 4,
                "segmentation": [],
                "bbox": [2.5, 3, 4, 5],
                "attributes": {"occluded": True, "rotation": 15.0, "track_id": 2, "sharp": False},
            },
            {**annotation, "id": 5, "bbox": [0, 0, 2, 2], "attributes": {"z_order": -1}},
        ],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = read_coco(write_json(tmp_path, coco))
    assert result.labels == [Label("bubble")]
    (read_image,) = result.images
    assert (read_image.name, read_image.width, read_image.height, read_image.id) == (
        "x.png",
        20,
        10,
        10,
    )
    first, *polygons, small, round_, box = read_image.shapes
    assert first == Box(label="bubble", xtl=0.0, ytl=0.0, xbr=2.0, ybr=2.0, z_order=-1)
    assert polygons == [
        Polygon(label="bubble", points=((1.0, 1.0), (5.0, 1.0), (5.0, 4.0)), group_id=1),
        Polygon(
            label="bubble", points=((10.0, 2.0), (14.0, 2.0), (14.0, 6.0), (10.0, 6.0)), group_id=1
        ),
    ]
    assert small == Mask(label="bubble", left=4, top=2, width=2, height=2, rle=(0, 4))
    assert (round_.left, round_.top, round_.width, round_.height) == (11, 2, 7, 7)
    assert round_.area == disk.sum()
    assert (round_.to_array() == disk[2:9, 11:18].astype(bool)).all()
    assert box == Box(
        label="bubble",
        xtl=2.5,
        ytl=3.0,
        xbr=6.5,
        ybr=8.0,
        rotation=15.0,
        occluded=True,
        attributes=(("sharp", "false"),),
    )


def _coco(**annotation: object) -> dict:
    """A foreign file with one 10 x 10 image, category 1 'bubble' and one annotation."""
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
        "categories": [{"id": 1, "name": "bubble"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, **annotation}],
    }


@pytest.mark.parametrize(
    ("segmentation", "category_id", "reason"),
    [
        ([[1, 1, 5, 5, 9, 9]], 1, "zero-area polygon"),
        ([[1, 1, 5, 5]], 1, "polygon with fewer than 3 points"),
        ([[]], 1, "polygon with fewer than 3 points"),
        ([[1, 1, 5, 1, 5, 5]], 2, "label not declared in categories"),
    ],
)
def test_unusable_shapes_are_skipped(
    tmp_path: Path, segmentation: list, category_id: int, reason: str
) -> None:
    path = write_json(tmp_path, _coco(segmentation=segmentation, category_id=category_id))
    with pytest.warns(LabelWarning, match=reason) as caught:
        result = read_coco(path)
    assert "coco.json" in str(caught[0].message)
    assert result.report.skipped == {reason: 1} and result.report.clipped == 0
    assert result.images[0].shapes == []


def test_shapes_outside_the_image_are_clipped(tmp_path: Path) -> None:
    coco = _coco(segmentation=[[-2, 1, 5, 1, 5, 14]])
    coco["annotations"].append(
        {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[20, 1, 25, 1, 25, 5]]}
    )
    with pytest.warns(LabelWarning) as caught:
        result = read_coco(write_json(tmp_path, coco))
    # Clipping is counted, not warned; the second polygon has no area left and is skipped.
    assert [str(w.message).split(": ", 1)[1] for w in caught] == [
        "image 'a.png', polygon #2: zero-area polygon; skipped"
    ]
    assert result.report.clipped == 2
    assert result.report.skipped == {"zero-area polygon": 1}
    assert result.images[0].shapes == [
        Polygon(label="bubble", points=((0.0, 1.0), (5.0, 1.0), (5.0, 10.0)))
    ]


GOOD = _coco(segmentation=[[1, 1, 5, 1, 5, 5]])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "empty file"),
        ("  \n", "empty file"),
        ('{\n  "images": [\n  oops', "not JSON"),
        ("[]", "not a COCO instances file"),
        ('{"images": [], "annotations": []}', "not a COCO instances file"),
        ('{"images": {}, "annotations": [], "categories": []}', "not a COCO instances file"),
        ({**GOOD, "annotations": [{**GOOD["annotations"][0], "image_id": 2}]}, "names no image"),
        ({**GOOD, "images": [{"id": 1, "file_name": "a.png", "width": 10}]}, "width and height"),
        (_coco(segmentation=[[1, 1, 5, "a", 5, 5]]), "non-numeric coordinate 'a'"),
        (_coco(segmentation=[[1, 1, 5, 1, 5]]), "odd number of coordinates"),
        (_coco(bbox=[1, 1, None, 3]), "non-numeric coordinate None"),
        (_coco(segmentation={"size": [10, 10], "counts": [5, 2]}), "RLE runs"),
        (_coco(segmentation={"size": [10, 10], "counts": "52"}), "RLE runs"),
        (_coco(segmentation={"size": [10, 10], "counts": "5\x7f"}), "bad character"),
        (_coco(segmentation={"size": [10, 10], "counts": "a"}), "middle of a run"),
        (_coco(segmentation={"size": [5, 10], "counts": [50]}), "RLE size"),
        (_coco(emdl_shape={"type": "box", "xtl": "a"}), "non-numeric coordinate"),
    ],
)
def test_bad_files_raise_input_error(tmp_path: Path, content: object, problem: str) -> None:
    path = write_json(tmp_path, content, name="bad.json")
    with pytest.raises(InputError, match=problem) as caught:
        read_coco(path)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_json_errors_name_the_line(tmp_path: Path) -> None:
    path = write_json(tmp_path, '{\n  "images": [\n  oops', name="bad.json")
    with pytest.raises(InputError) as caught:
        read_coco(path)
    assert caught.value.line == 3 and f"{path}:3: not JSON" in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file") as caught:
        read_coco(tmp_path / "gone.json")
    assert "gone.json" in str(caught.value)


# --- bounded resources, label names and encodings ---

LIMIT = "more than the limit of 1073741824 (2^30) (emdl --max-pixels N raises it)"


def raises_fast_and_small(read, path: Path) -> InputError:
    """The InputError of ``read(path)``, asserted to come within 2 s and under 20 MB allocated."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(InputError) as caught:
            read(path)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 2
    assert peak < 20 * 2**20  # numpy reports its buffers to tracemalloc
    return caught.value


BIG_IMAGE = {"id": 1, "file_name": "a.png", "width": 100000, "height": 100000}
BOMB_RLE = {"size": [100000, 100000], "counts": [0, 10**10]}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        # An RLE declaring 10^10 pixels (9.3 GiB as bools) on a 10 x 10 image.
        (
            _coco(segmentation=BOMB_RLE),
            f"annotation 1: RLE declares 100000 x 100000 pixels, {LIMIT}",
        ),
        # The same RLE on an image that declares its size.
        (
            {**_coco(segmentation=BOMB_RLE), "images": [BIG_IMAGE]},
            f"images[0]: image 'a.png' declares 100000 x 100000 pixels, {LIMIT}",
        ),
        (
            _coco(
                emdl_shape={
                    "type": "mask",
                    "left": 0,
                    "top": 0,
                    "width": 100000,
                    "height": 100000,
                    "rle": [0, 10**10],
                }
            ),
            f"annotation 1: emdl_shape mask declares 100000 x 100000 pixels, {LIMIT}",
        ),
        (
            _coco(
                emdl_shape={
                    "type": "mask",
                    "left": 0,
                    "top": 0,
                    "width": 2,
                    "height": 2,
                    "rle": [0, 10**10],
                }
            ),
            "annotation 1: emdl_shape: mask runs do not cover its 2 x 2",
        ),
        (
            _coco(segmentation={"size": [10, 10], "counts": [0, 10**10]}),
            "annotation 1: RLE runs do not cover the 10 x 10 image",
        ),
    ],
)
def test_rle_bombs_fail_fast_without_allocating(
    tmp_path: Path, content: dict, problem: str
) -> None:
    path = write_json(tmp_path, content, name="bomb.json")
    assert path.stat().st_size < 400
    assert str(raises_fast_and_small(read_coco, path)) == f"{path}: {problem}"


def test_the_pixel_limit_is_a_keyword(tmp_path: Path) -> None:
    path = write_json(tmp_path, {**_coco(segmentation=[[1, 1, 5, 1, 5, 5]]), "images": [BIG_IMAGE]})
    (image,) = read_coco(path, max_pixels=10**10).images
    assert (image.width, image.height, len(image.shapes)) == (100000, 100000, 1)
    assert read_labels(path, max_pixels=10**10).images == [image]
    small = write_json(tmp_path, GOOD, name="small.json")
    with pytest.raises(InputError) as caught:
        read_labels(small, max_pixels=99)
    assert str(caught.value) == (
        f"{small}: images[0]: image 'a.png' declares 10 x 10 pixels, more than the limit of 99 "
        "(emdl --max-pixels N raises it)"
    )


def test_category_names_with_control_characters_are_refused(tmp_path: Path) -> None:
    path = write_json(tmp_path, {**GOOD, "categories": [{"id": 1, "name": "bub\nble"}]})
    with pytest.raises(InputError) as caught:
        read_coco(path)
    assert str(caught.value) == (
        rf"{path}: categories[0]: label 'bub\nble' has a control character (U+000A) in its name"
    )


@pytest.mark.parametrize(
    ("codec", "bom"),
    [
        ("utf-8", codecs.BOM_UTF8),  # what Windows tools often write
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-16-le", b""),
        ("utf-32-be", codecs.BOM_UTF32_BE),
    ],
)
def test_bom_and_utf16_files_read_equal_to_their_utf8_twin(
    written: Path, tmp_path: Path, codec: str, bom: bytes
) -> None:
    text = written.read_text(encoding="utf-8").replace("train/a.png", "Präzipitate/a.png")
    twin = write_json(tmp_path, text, name="twin.json")
    path = tmp_path / "other.json"
    path.write_bytes(bom + text.encode(codec))
    expected = read_coco(twin)
    assert expected.images[0].name == "Präzipitate/a.png"
    for result in (read_coco(path), read_labels(path)):
        assert result.labels == expected.labels
        assert result.images == expected.images


def test_json_errors_in_a_bom_file_name_the_same_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(codecs.BOM_UTF8 + b'{\n  "images": [\n  oops')
    with pytest.raises(InputError) as caught:
        read_coco(path)
    assert caught.value.line == 3 and f"{path}:3: not JSON" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"images": "\xff"}', "not valid UTF-8 text (invalid start byte at byte 12)"),
        (codecs.BOM_UTF16_LE + b"{\x00}", "not valid UTF-16 text (truncated data at byte 4)"),
    ],
)
def test_undecodable_files_say_to_save_as_utf8(tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        read_coco(path)
    assert str(caught.value) == f"{path}: {problem}; save it as UTF-8"


def test_the_format_is_told_after_much_leading_white_space(tmp_path: Path) -> None:
    text = " " * 5000 + json.dumps(GOOD)
    path = tmp_path / "spaced.json"
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert read_labels(path).images == read_coco(write_json(tmp_path, GOOD)).images
