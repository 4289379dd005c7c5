"""read_cvat streams: each <image> is read as soon as it ends and its XML dropped, so memory
follows the shapes kept, not the size of the file."""

from __future__ import annotations

import tracemalloc

import pytest

from emdl.errors import InputError
from emdl.io import cvat
from emdl.io.cvat import read_cvat
from tests.conftest import cvat_text

FILLER = "x" * 4000  # text inside each <image>: in the XML, not in what is read


def big_file(tmp_path, images: int, tail: str = ""):
    body = "\n".join(
        f'<image id="{i}" name="{i}.png" width="64" height="64">{FILLER}'
        f'<box label="bubble" xtl="1" ytl="1" xbr="9" ybr="9" z_order="0"/></image>'
        for i in range(images)
    )
    path = tmp_path / "big.xml"
    path.write_text(cvat_text(body + tail))
    return path


def test_a_large_file_is_read_in_memory_far_below_its_size(tmp_path):
    path = big_file(tmp_path, 2000)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        annotations = read_cvat(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(annotations.images) == 2000 and size > 8_000_000
    assert sum(len(image.shapes) for image in annotations.images) == 2000
    # The whole XML tree would hold every image's text (8 MB) and the file's bytes (8 MB more).
    assert peak < size / 2, (peak, size)


def test_images_are_read_while_the_file_is_parsed(tmp_path, monkeypatch):
    read = []
    original = cvat._ImageReader.read

    def record(self, node):
        read.append(node["@name"])
        return original(self, node)

    monkeypatch.setattr(cvat._ImageReader, "read", record)
    path = big_file(tmp_path, 3, tail="\n<image")  # the file breaks after three images
    with pytest.raises(InputError, match="malformed XML"):
        read_cvat(path)
    assert read == ["0.png", "1.png", "2.png"]
