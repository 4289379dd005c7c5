"""What a command may write into its output folder, and the list of what it wrote there."""

from __future__ import annotations

import json

import pytest

from emdl.errors import InputError
from emdl.io.outputs import check_output_folder, read_manifest, remove_outputs, write_manifest


def test_a_new_folder_and_new_files_are_fine(tmp_path):
    check_output_folder(tmp_path / "out", [tmp_path / "out" / "a.txt"], inputs=[tmp_path / "x"])


def test_the_folder_of_an_input_is_refused_unless_overwrite(tmp_path):
    labels = tmp_path / "labels.xml"
    labels.write_text("<annotations/>")
    with pytest.raises(InputError) as error:
        check_output_folder(tmp_path, [tmp_path / "annotations.json"], inputs=[labels])
    assert str(error.value) == (
        f"{tmp_path}: holds this command's input {labels}; write to another folder "
        "(or give --overwrite to write beside it)"
    )
    check_output_folder(tmp_path, [tmp_path / "a.json"], inputs=[labels], overwrite=True)
    images = tmp_path / "images"
    images.mkdir()
    with pytest.raises(InputError, match="holds this command's input"):
        check_output_folder(images, [images / "a.png"], inputs=[images])


def test_an_input_file_is_never_replaced(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"micrograph")
    with pytest.raises(InputError) as error:
        check_output_folder(tmp_path, [image], inputs=[tmp_path, image], overwrite=True)
    assert str(error.value) == (
        f"{image}: is an input of this command and is never replaced; write to another folder"
    )


def test_an_existing_file_is_refused_unless_overwrite(tmp_path):
    (tmp_path / "classes.txt").write_text("mine\n")
    with pytest.raises(InputError) as error:
        check_output_folder(tmp_path, [tmp_path / "classes.txt"])
    assert str(error.value) == (
        f"{tmp_path / 'classes.txt'}: exists already; give --overwrite to replace it, "
        "or another --out"
    )
    check_output_folder(tmp_path, [tmp_path / "classes.txt"], overwrite=True)
    (tmp_path / "labels").mkdir()
    with pytest.raises(InputError, match="is a folder where emdl would write a file"):
        check_output_folder(tmp_path, [tmp_path / "labels"], overwrite=True)


def test_links_inside_the_folder_are_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "labels").symlink_to(elsewhere, target_is_directory=True)
    (out / "classes.txt").symlink_to(elsewhere / "classes.txt")  # dangling: still a link
    for target in (out / "labels" / "a.txt", out / "classes.txt"):
        with pytest.raises(InputError) as error:
            check_output_folder(out, [target], overwrite=True)
        link = out / target.relative_to(out).parts[0]
        assert str(error.value) == (
            f"{link}: is a symbolic link inside the output folder; emdl does not write through it"
        )
    # The output folder itself may be a link: the user named it.
    (tmp_path / "link").symlink_to(elsewhere, target_is_directory=True)
    check_output_folder(tmp_path / "link", [tmp_path / "link" / "a.txt"])


def test_a_manifest_lists_files_and_removing_them_spares_the_rest(tmp_path):
    manifest = tmp_path / ".list.json"
    assert read_manifest(manifest) == []
    files = [tmp_path / "a.csv", tmp_path / "sub" / "b.png", tmp_path / "gone.txt"]
    write_manifest(manifest, files)
    assert json.loads(manifest.read_text()) == {"files": ["a.csv", "sub/b.png", "gone.txt"]}
    assert read_manifest(manifest) == files
    (tmp_path / "sub").mkdir()
    for path in files[:2]:
        path.write_text("old output")
    (tmp_path / "mine.txt").write_text("the user's")
    assert remove_outputs(tmp_path, read_manifest(manifest)) == 2
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".list.json", "mine.txt", "sub"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "is not a list of emdl's outputs (Expecting property name"),
        ('{"files": [1]}', "is not a list of emdl's outputs ('files' is not a list of names)"),
        ('{"files": ["../x"]}', "lists '../x', outside its folder; remove the manifest"),
    ],
)
def test_a_bad_manifest_is_one_line(tmp_path, text, problem):
    manifest = tmp_path / ".list.json"
    manifest.write_text(text)
    with pytest.raises(InputError) as error:
        read_manifest(manifest)
    assert str(error.value).startswith(f"{manifest}: {problem}")


def test_files_behind_a_link_are_not_removed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "b.png").write_text("not the command's")
    out = tmp_path / "out"
    out.mkdir()
    (out / "overlays").symlink_to(elsewhere, target_is_directory=True)
    assert remove_outputs(out, [out / "overlays" / "b.png"]) == 0
    assert (elsewhere / "b.png").read_text() == "not the command's"
