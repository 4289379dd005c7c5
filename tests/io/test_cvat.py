"""emdl.io.cvat: every CVAT shape in, the same shapes out, and clear errors for bad files."""

from __future__ import annotations

import codecs
import time
import tracemalloc
import warnings
from pathlib import Path

import pytest

from emdl.annotations import Box, Ellipse, Label, Mask, Points, Polygon, Polyline, Tag
from emdl.errors import InputError, LabelWarning
from emdl.io.cvat import read_cvat, write_cvat
from emdl.io.labels import read_labels
from tests.conftest import cvat_text

EVERY_SHAPE = """
  <image id="0" name="train/sub/a.png" width="20" height="10" subset="Train">
    <tag label="loop" source="manual"><attribute name="quality">good</attribute></tag>
    <polygon label="bubble" source="manual" occluded="1" points="1.5,1.5;6,1.5;6,4" z_order="0"
             group_id="3">
      <attribute name="kind">void</attribute>
    </polygon>
    <ellipse label="bubble" source="auto" occluded="0" cx="10" cy="5" rx="3" ry="1.5"
             rotation="30.5" z_order="2"/>
    <box label="loop" source="manual" occluded="0" xtl="2" ytl="3" xbr="8" ybr="7" z_order="1"/>
    <box label="loop" source="manual" occluded="0" xtl="2" ytl="3" xbr="8" ybr="7"
         rotation="45" z_order="1"/>
    <polyline label="loop" source="manual" occluded="0" points="0,0;5,5;9,2" z_order="0"/>
    <points label="bubble" source="manual" occluded="0" points="3,3;4.25,7" z_order="0"/>
    <mask label="bubble" source="manual" occluded="0" rle="1, 2, 3" left="4" top="5" width="3"
          height="2" z_order="0"/>
  </image>
  <image id="1" name="b.png" width="8" height="6">
  </image>"""


def test_every_shape_type_is_read_exactly(write_cvat_text):
    annotations = read_cvat(write_cvat_text(EVERY_SHAPE))
    assert annotations.labels == [
        Label("bubble", "#00ff00", "any"),
        Label("loop", "#00ff00", "any"),
    ]
    first, second = annotations.images
    assert (first.name, first.width, first.height, first.id, first.subset) == (
        "train/sub/a.png",
        20,
        10,
        0,
        "Train",
    )
    assert first.tags == [Tag("loop", "manual", (("quality", "good"),))]
    # z_order 0 in file order, then z_order 1, then 2: the order CVAT draws them.
    assert first.shapes == [
        Polygon(
            label="bubble",
            occluded=True,
            group_id=3,
            attributes=(("kind", "void"),),
            points=((1.5, 1.5), (6.0, 1.5), (6.0, 4.0)),
        ),
        Polyline(label="loop", points=((0.0, 0.0), (5.0, 5.0), (9.0, 2.0))),
        Points(label="bubble", points=((3.0, 3.0), (4.25, 7.0))),
        Mask(label="bubble", left=4, top=5, width=3, height=2, rle=(1, 2, 3)),
        Box(label="loop", z_order=1, xtl=2.0, ytl=3.0, xbr=8.0, ybr=7.0),
        Box(label="loop", z_order=1, xtl=2.0, ytl=3.0, xbr=8.0, ybr=7.0, rotation=45.0),
        Ellipse(
            label="bubble", source="auto", z_order=2, cx=10.0, cy=5.0, rx=3.0, ry=1.5, rotation=30.5
        ),
    ]
    assert (second.name, second.width, second.height, second.shapes) == ("b.png", 8, 6, [])
    assert annotations.report.skipped.total() == 0
    assert annotations.report.clipped == 0


@pytest.mark.parametrize("kind", ["job", "task", "project"])
def test_labels_come_from_job_task_and_project_exports(write_cvat_text, kind):
    annotations = read_cvat(write_cvat_text("", labels=("void", "precipitate", "loop"), kind=kind))
    assert annotations.label_names == ["void", "precipitate", "loop"]
    assert annotations.images == []


def test_cvat_round_trip_gives_the_same_shapes(write_cvat_text, tmp_path):
    annotations = read_cvat(write_cvat_text(EVERY_SHAPE))
    out = tmp_path / "out.xml"
    write_cvat(annotations, out)
    again = read_cvat(out)
    assert again.labels == annotations.labels
    assert again.images == annotations.images


def test_round_trip_keeps_exact_floats(tmp_path, write_cvat_text):
    body = """<image id="0" name="a.png" width="9" height="9">
    <polygon label="bubble" points="1.123456789,2.5;7.1,2.000001;4,8.3333333333" z_order="0"/>
    </image>"""
    annotations = read_cvat(write_cvat_text(body))
    write_cvat(annotations, tmp_path / "out.xml")
    text = (tmp_path / "out.xml").read_text()
    assert 'points="1.123456789,2.50;7.10,2.000001;4.00,8.3333333333"' in text
    assert read_cvat(tmp_path / "out.xml").images == annotations.images


@pytest.mark.parametrize(
    ("folder", "counts", "label"),
    [
        ("bubbles/DL_for_Microscopy_Train_Lab_1.xml", {"polygon": 37}, "bubble"),
        ("bubbles/DL_for_Microscopy_Train_Lab_2.xml", {"polygon": 70}, "bubble"),
        ("loops111/annotations.xml", {"box": 7383}, "loop"),
    ],
)
def test_real_label_files(data_dir, tmp_path, folder, counts, label):
    annotations = read_cvat(data_dir / folder)
    assert annotations.label_names == [label]
    assert dict(annotations.shape_counts()) == counts
    assert annotations.report.skipped.total() == 0
    write_cvat(annotations, tmp_path / "out.xml")
    assert read_cvat(tmp_path / "out.xml").images == annotations.images


def test_loops111_images_and_sizes(data_dir):
    annotations = read_cvat(data_dir / "loops111/annotations.xml")
    assert len(annotations.images) == 266
    sizes = sorted({(image.width, image.height) for image in annotations.images})
    assert sizes == [(1024, 1024), (2048, 2048)]
    first = annotations.images[0]
    assert first.name == "0501_300kx_1nm_clhaadf3_0006.jpg"
    assert first.shapes[0] == Box(label="loop", xtl=468.0, ytl=440.0, xbr=549.0, ybr=560.0)


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


@pytest.mark.parametrize(
    ("body", "marker", "problem"),
    [
        (
            '<image id="0" name="a.png" width="9" height="9">\n'
            '<polygon label="bubble" z_order="0"/>\n</image>',
            "<polygon",
            "polygon #0 in image 'a.png' has no 'points'",
        ),
        (
            '<image id="0" name="a.png" width="9" height="9">\n'
            '<box label="loop" xtl="one" ytl="0" xbr="3" ybr="3"/>\n</image>',
            "<box",
            "box #0 in image 'a.png' has a non-numeric xtl='one'",
        ),
        (
            '<image id="0" name="a.png" width="9" height="9">\n'
            '<ellipse label="bubble" cx="3" cy="3" rx="2"/>\n</image>',
            "<ellipse",
            "ellipse #0 in image 'a.png' has no 'ry'",
        ),
        (
            '<image id="0" name="a.png" width="9" height="9">\n'
            '<polyline label="loop" points="1,1;2;3,3"/>\n</image>',
            "<polyline",
            "polyline #0 in image 'a.png' has a malformed point '2'",
        ),
        (
            '<image id="0" name="a.png" width="9" height="9">\n'
            '<mask label="bubble" rle="1, 2" left="0" top="0" width="2" height="2"/>\n</image>',
            "<mask",
            "mask #0 in image 'a.png' rle covers 3 pixels, its 2 x 2 rectangle has 4",
        ),
        (
            '<image id="0" name="a.png" width="nine" height="9">\n</image>',
            "<image",
            "image 'a.png' has a non-numeric width='nine'",
        ),
        (
            '<image id="0" name="a.png" width="9" height="9">\n'
            '<polygon points="1,1;2,2;3,1"/>\n</image>',
            "<polygon",
            "polygon #0 in image 'a.png' has no 'label'",
        ),
    ],
)
def test_bad_shapes_are_errors_with_file_and_line(write_cvat_text, body, marker, problem):
    path = write_cvat_text(body)
    with pytest.raises(InputError) as error:
        read_cvat(path)
    assert str(error.value) == f"{path}:{line_of(path, marker)}: {problem}"


def test_truncated_xml_names_file_and_line(tmp_path, write_cvat_text):
    full = write_cvat_text(EVERY_SHAPE).read_text()
    path = tmp_path / "cut.xml"
    path.write_text(full[: full.index("<ellipse")])
    with pytest.raises(InputError, match=r"cut\.xml:\d+: malformed XML"):
        read_cvat(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty file"),
        ("   \n", "empty file"),
        ('{"images": []}', "bad.xml:1: malformed XML: not well-formed (invalid token)"),
        ("<root><a/></root>", "not a CVAT for images export: root element is <root>"),
        ("<annotations><version>1.1</version></annotations>", "no <meta>"),
        (
            "<annotations><meta><task><name>t</name></task></meta></annotations>",
            "<meta> declares no labels",
        ),
        (
            "<annotations><meta><task><labels><label><name>a</name></label></labels></task></meta>"
            '<track id="0" label="a"/></annotations>',
            "a CVAT for video export",
        ),
    ],
)
def test_files_that_are_not_cvat_exports(tmp_path, text, problem):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        read_cvat(path)
    assert str(error.value).startswith(str(path))
    assert problem in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nothing.xml: No such file"):
        read_cvat(tmp_path / "nothing.xml")


def test_entity_expansion_is_refused(tmp_path):
    path = tmp_path / "laughs.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
        "<annotations>&lol2;</annotations>\n"
    )
    with pytest.raises(InputError) as error:
        read_cvat(path)
    assert str(error.value) == f"{path}:3: XML entity declarations are refused (entity expansion)"


def test_duplicate_image_names_are_an_error(write_cvat_text):
    body = '<image name="a.png" width="4" height="4"/>\n<image name="a.png" width="4" height="4"/>'
    with pytest.raises(InputError, match="image 'a.png' appears twice"):
        read_cvat(write_cvat_text(body))


def test_unusable_shapes_are_skipped_with_a_warning_and_counted(write_cvat_text):
    body = """<image id="0" name="a.png" width="10" height="10">
    <polygon label="bubble" points="1,1;5,5" z_order="0"/>
    <box label="loop" xtl="3" ytl="3" xbr="3" ybr="8" z_order="0"/>
    <cuboid label="loop" xtl1="1" z_order="0"/>
    <polygon label="dislocation" points="1,1;5,5;1,5" z_order="0"/>
    <ellipse label="bubble" cx="4" cy="4" rx="0" ry="2"/>
    <polyline label="loop" points="1,1"/>
    <tag label="cavity"/>
    <box label="loop" xtl="1" ytl="1" xbr="4" ybr="4"/>
    </image>"""
    with pytest.warns(LabelWarning) as caught:
        annotations = read_cvat(write_cvat_text(body))
    messages = [str(w.message).split(": ", 1)[1] for w in caught]
    assert messages == [
        "image 'a.png', polygon #0: polygon with fewer than 3 points; skipped",
        "image 'a.png', box #1: zero-area box; skipped",
        "image 'a.png', cuboid #2: unknown shape type; skipped",
        "image 'a.png', polygon #3: label not declared in <meta>; skipped",
        "image 'a.png', ellipse #4: zero-area ellipse; skipped",
        "image 'a.png', polyline #5: polyline with fewer than 2 points; skipped",
        "image 'a.png', tag #6: label not declared in <meta>; skipped",
    ]
    assert annotations.report.skipped == {
        "polygon with fewer than 3 points": 1,
        "zero-area box": 1,
        "unknown shape type": 1,
        "label not declared in <meta>": 2,
        "zero-area ellipse": 1,
        "polyline with fewer than 2 points": 1,
    }
    assert annotations.images[0].shapes == [Box(label="loop", xtl=1.0, ytl=1.0, xbr=4.0, ybr=4.0)]


def test_coordinates_outside_the_image_are_clipped_and_counted(write_cvat_text):
    body = """<image id="0" name="a.png" width="10" height="8">
    <polygon label="bubble" points="-2,1;5,-1;12,9" z_order="0"/>
    <box label="loop" xtl="5" ytl="5" xbr="11" ybr="9" z_order="0"/>
    <box label="loop" xtl="-1" ytl="2" xbr="3" ybr="4" rotation="10" z_order="0"/>
    <mask label="bubble" rle="0, 4" left="9" top="7" width="2" height="2" z_order="0"/>
    <polygon label="bubble" points="-0.00,1;5,1;5,5" z_order="0"/>
    </image>"""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        annotations = read_cvat(write_cvat_text(body))
    assert annotations.report.clipped == 4
    polygon, box, rotated, mask, inside = annotations.images[0].shapes
    assert polygon.points == ((0.0, 1.0), (5.0, 0.0), (10.0, 8.0))
    assert (box.xtl, box.ytl, box.xbr, box.ybr) == (5.0, 5.0, 10.0, 8.0)
    assert (rotated.xtl, rotated.rotation) == (-1.0, 10.0)  # rotated shapes keep their geometry
    assert (mask.left, mask.top, mask.width, mask.height, mask.rle) == (9, 7, 1, 1, (0, 1))
    assert inside.points[0] == (-0.0, 1.0)


# --- bounded resources, structures and encodings ---

LIMIT = "more than the limit of 1073741824 (2^30) (emdl --max-pixels N raises it)"

# A whole CVAT file of under 500 bytes whose mask declares 10^10 pixels (9.3 GiB as bools).
MASK_BOMB = (
    '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><task>'
    "<labels><label><name>bubble</name></label></labels></task></meta>\n"
    '<image id="0" name="a.png" width="100" height="100">\n'
    '<mask label="bubble" source="manual" occluded="0" rle="0, 10000000000" left="0" top="0" '
    'width="100000" height="100000" z_order="0"/>\n</image></annotations>\n'
)


def raises_fast_and_small(read, path):
    """The InputError of ``read(path)``, asserted to come within 2 s and under 20 MB allocated."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(InputError) as error:
            read(path)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 2
    assert peak < 20 * 2**20  # numpy reports its buffers to tracemalloc
    return error.value


def test_mask_bomb_fails_fast_without_allocating(tmp_path):
    path = tmp_path / "bomb.xml"
    path.write_text(MASK_BOMB)
    assert path.stat().st_size < 500
    error = raises_fast_and_small(read_cvat, path)
    assert str(error) == (
        f"{path}:4: mask #0 in image 'a.png' declares 100000 x 100000 pixels, {LIMIT}"
    )


def test_mask_runs_covering_more_than_the_mask_fail_fast(write_cvat_text):
    body = (
        '<image id="0" name="a.png" width="9" height="9">\n'
        '<mask label="bubble" rle="0, 10000000000" left="0" top="0" width="2" height="2"/>\n'
        "</image>"
    )
    path = write_cvat_text(body)
    error = raises_fast_and_small(read_cvat, path)
    assert str(error) == (
        f"{path}:{line_of(path, '<mask')}: mask #0 in image 'a.png' rle covers 10000000000 "
        "pixels, its 2 x 2 rectangle has 4"
    )


def test_mask_to_array_refuses_runs_that_do_not_fit_before_allocating():
    mask = Mask(label="bubble", left=0, top=0, width=2, height=2, rle=(0, 10**10))
    with pytest.raises(ValueError, match="mask runs do not cover its 2 x 2 rectangle"):
        mask.to_array()


@pytest.mark.parametrize(
    ("body", "marker", "problem"),
    [
        (
            '<image id="0" name="a.png" width="100000" height="100000">\n</image>',
            "<image",
            f"image 'a.png' declares 100000 x 100000 pixels, {LIMIT}",
        ),
        (
            '<image id="0" name="a.png" width="1e9" height="10">\n</image>',
            "<image",
            f"image 'a.png' declares 1000000000 x 10 pixels, {LIMIT}",
        ),
        (
            '<image id="0" name="a.png" width="9" height="9">\n'
            '<mask label="bubble" rle="0, 4" left="0" top="0" width="-2" height="-2"/>\n</image>',
            "<mask",
            "mask #0 in image 'a.png' has size -2 x -2",
        ),
    ],
)
def test_sizes_beyond_the_pixel_limit_are_errors(write_cvat_text, body, marker, problem):
    path = write_cvat_text(body)
    error = raises_fast_and_small(read_cvat, path)
    assert str(error) == f"{path}:{line_of(path, marker)}: {problem}"


def test_the_pixel_limit_is_a_keyword(write_cvat_text):
    path = write_cvat_text('<image id="0" name="a.png" width="100000" height="100000"/>')
    (image,) = read_cvat(path, max_pixels=10**10).images
    assert (image.width, image.height) == (100000, 100000)
    assert read_labels(path, max_pixels=10**10).images == [image]
    small = write_cvat_text('<image id="0" name="b.png" width="9" height="9"/>', name="b.xml")
    with pytest.raises(InputError) as error:
        read_labels(small, max_pixels=80)
    assert str(error.value) == (
        f"{small}:{line_of(small, '<image')}: image 'b.png' declares 9 x 9 pixels, "
        "more than the limit of 80 (emdl --max-pixels N raises it)"
    )


NESTED = """<image id="0" name="a.png" width="8" height="8"/>
<job id="3">
  <image id="1" name="b.png" width="8" height="8">
    <box label="loop" xtl="1" ytl="1" xbr="4" ybr="4"/>
  </image>
  <image id="2" name="c.png" width="8" height="8"/>
</job>
<project><tasks><task id="5"><image id="3" name="d.png" width="8" height="8"/></task></tasks>
</project>
<image id="4" name="e.png" width="8" height="8"/>"""


def test_images_nested_in_jobs_tasks_and_projects_are_read_in_file_order(write_cvat_text):
    annotations = read_cvat(write_cvat_text(NESTED))
    assert [image.name for image in annotations.images] == [
        "a.png",
        "b.png",
        "c.png",
        "d.png",
        "e.png",
    ]
    assert annotations.images[1].shapes == [Box(label="loop", xtl=1.0, ytl=1.0, xbr=4.0, ybr=4.0)]


def test_nested_tracks_are_refused_with_their_line(write_cvat_text):
    path = write_cvat_text('<job id="3">\n<track id="0" label="loop"/>\n</job>')
    with pytest.raises(InputError) as error:
        read_cvat(path)
    assert str(error.value) == (
        f"{path}:{line_of(path, '<track')}: a CVAT for video export (it has <track>); "
        "export as CVAT for images 1.1"
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("bub\nble", r"label 'bub\nble' has a control character (U+000A) in its name"),
        ("bub&#9;ble", r"label 'bub\tble' has a control character (U+0009) in its name"),
        ("bub&#x85;ble", r"label 'bub\x85ble' has a control character (U+0085) in its name"),
    ],
)
def test_label_names_with_control_characters_are_refused(write_cvat_text, name, problem):
    path = write_cvat_text("", labels=("loop", name))
    with pytest.raises(InputError) as error:
        read_cvat(path)
    assert str(error.value) == f"{path}:{line_of(path, '<name>bub')}: {problem}"


TWIN = """<image id="0" name="Präzipitate/µ-1.png" width="20" height="10">
    <polygon label="bubble" points="1.5,1.5;6,1.5;6,4" z_order="0"/>
    <mask label="bubble" rle="1, 2, 3" left="4" top="5" width="3" height="2"/>
  </image>"""


@pytest.mark.parametrize(
    ("codec", "bom", "declared"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE, "utf-8"),  # what an editor's "save as UTF-16" gives
        ("utf-16-be", codecs.BOM_UTF16_BE, "utf-8"),
        ("utf-16-le", codecs.BOM_UTF16_LE, "UTF-16"),
        ("utf-16-le", b"", "UTF-16"),
        ("utf-32-le", codecs.BOM_UTF32_LE, "utf-8"),
        ("utf-8", codecs.BOM_UTF8, "utf-8"),
    ],
)
def test_utf16_and_bom_files_read_equal_to_their_utf8_twin(tmp_path, codec, bom, declared):
    text = cvat_text(TWIN, labels=("bubble", "Löcher")).replace('"utf-8"', f'"{declared}"')
    twin = tmp_path / "utf8.xml"
    twin.write_bytes(cvat_text(TWIN, labels=("bubble", "Löcher")).encode("utf-8"))
    path = tmp_path / "other.xml"
    path.write_bytes(bom + text.encode(codec))
    expected = read_cvat(twin)
    for result in (read_cvat(path), read_labels(path)):
        assert result.labels == expected.labels
        assert result.images == expected.images
    assert expected.label_names == ["bubble", "Löcher"]
    assert expected.images[0].name == "Präzipitate/µ-1.png"


def test_errors_in_utf16_files_name_the_same_line(tmp_path, write_cvat_text):
    body = '<image id="0" name="a.png" width="9" height="9">\n<polygon label="bubble"/>\n</image>'
    twin = write_cvat_text(body)
    path = tmp_path / "utf16.xml"
    path.write_bytes(twin.read_text().encode("utf-16"))
    line = line_of(twin, "<polygon")
    with pytest.raises(InputError) as error:
        read_cvat(path)
    assert str(error.value) == f"{path}:{line}: polygon #0 in image 'a.png' has no 'points'"


def test_broken_utf16_says_to_save_as_utf8(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_bytes(codecs.BOM_UTF16_LE + "<annotations/>".encode("utf-16-le") + b"x")
    with pytest.raises(InputError) as error:
        read_cvat(path)
    assert str(error.value) == (
        f"{path}: not valid UTF-16 text (truncated data at byte 30); save it as UTF-8"
    )
