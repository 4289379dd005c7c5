"""Files written whole or not at all: the final name appears only when the writing ended."""

from __future__ import annotations

import os

import pytest

from emdl.io.atomic import TEMPORARY_PREFIX, atomic_path, open_atomic, write_bytes, write_text


def test_a_file_appears_whole_and_replaces_the_old_one(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with open_atomic(path, "w", encoding="utf-8") as file:
        file.write("new ")
        assert path.read_text() == "old"  # not yet: the new text is under a temporary name
        (temporary,) = [p for p in tmp_path.iterdir() if p.name.startswith(TEMPORARY_PREFIX)]
        assert temporary.name.endswith("-a.txt")
        file.write("text")
    assert path.read_text() == "new text"
    assert os.listdir(tmp_path) == ["a.txt"]
    write_bytes(tmp_path / "b.bin", b"\x00\x01")
    write_text(tmp_path / "c.txt", "\u00e9")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "c.txt").read_bytes() == b"\xc3\xa9"


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(type(error)), open_atomic(path, "w") as file:
        file.write("half")
        raise error
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]
    with pytest.raises(type(error)), atomic_path(tmp_path / "b.png") as temporary:
        assert temporary.suffix == ".png" and temporary.parent == tmp_path
        temporary.write_bytes(b"half")
        raise error
    assert os.listdir(tmp_path) == ["a.txt"]


def test_only_new_files_are_opened(tmp_path):
    with pytest.raises(ValueError, match="not mode 'a'"), open_atomic(tmp_path / "a", "a"):
        pass
