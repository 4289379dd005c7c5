"""emdl.data.sources: which images, which classes, and the split by image."""

from __future__ import annotations

import pytest

from emdl.data import load_labeled_images, split_by_image
from emdl.errors import InputError, LabelWarning
from tests.conftest import box_image, box_xml


def test_real_bubbles_skip_the_images_that_are_not_there(data_dir):
    folder = data_dir / "bubbles"
    labels = [folder / f"DL_for_Microscopy_Train_Lab_{n}.xml" for n in (1, 2)]
    with pytest.raises(InputError, match="image '100kX_300kV_0537_10_2_rot270.png' not found"):
        load_labeled_images(labels, folder)
    with pytest.warns(LabelWarning) as caught:
        records, classes = load_labeled_images(labels, folder, missing="skip")
    assert len(caught) == 4
    assert classes == ["bubble"]
    assert [r.name for r in records] == [
        "DL_for_Microscopy_Train_Img_1.png",
        "DL_for_Microscopy_Train_Img_2.png",
    ]
    assert [len(r.annotation.shapes) for r in records] == [37, 14]


def test_classes_are_gathered_in_file_order(labeled_folder, tmp_path):
    labels, folder = labeled_folder({"a.png": (box_image(64), box_xml("a.png", 64))})
    second = tmp_path / "second.xml"
    second.write_text(labels.read_text().replace("a.png", "b.png").replace("bubble", "void"))
    (folder / "b.png").write_bytes((folder / "a.png").read_bytes())
    records, classes = load_labeled_images([labels, second], folder)
    assert classes == ["bubble", "loop", "void"]
    assert [r.name for r in records] == ["a.png", "b.png"]


def test_images_are_found_in_any_of_several_folders_and_never_in_two(labeled_folder, tmp_path):
    """Real micrographs in one folder, synthetic ones in another: one call, both label files."""
    labels, folder = labeled_folder({"a.png": (box_image(64), box_xml("a.png", 64))})
    other = tmp_path / "synthetic"
    other.mkdir()
    second = tmp_path / "second.xml"
    second.write_text(labels.read_text().replace("a.png", "b.png"))
    (other / "b.png").write_bytes((folder / "a.png").read_bytes())
    records, _ = load_labeled_images([labels, second], [folder, other])
    assert [r.path for r in records] == [folder / "a.png", other / "b.png"]
    with pytest.raises(InputError, match=f"image 'b.png' not found in {folder}$"):
        load_labeled_images([labels, second], folder)
    (folder / "b.png").write_bytes((folder / "a.png").read_bytes())
    with pytest.raises(InputError) as error:
        load_labeled_images([labels, second], [folder, other])
    assert str(error.value) == (
        f"{second}: image 'b.png' is in two images folders: {folder / 'b.png'} and "
        f"{other / 'b.png'}"
    )
    with pytest.raises(InputError, match="no such folder"):
        load_labeled_images(labels, [folder, tmp_path / "nowhere"])


def test_an_image_of_the_wrong_size_is_an_error(labeled_folder):
    labels, folder = labeled_folder({"a.png": (box_image(64), box_xml("a.png", 64))})
    labels.write_text(labels.read_text().replace('width="64"', 'width="65"'))
    with pytest.raises(InputError, match="image is 64 x 64, the labels say 65 x 64"):
        load_labeled_images(labels, folder)


def test_split_by_image_is_disjoint_seeded_and_complete(labeled_folder):
    images = {f"{i}.png": (box_image(64), box_xml(f"{i}.png", 64)) for i in range(10)}
    records, _ = load_labeled_images(*labeled_folder(images))
    train, validation = split_by_image(records, 0.3, seed=1)
    assert len(validation) == 3
    assert {r.name for r in train}.isdisjoint({r.name for r in validation})
    assert {r.name for r in train} | {r.name for r in validation} == {r.name for r in records}
    assert split_by_image(records, 0.3, seed=1) == (train, validation)
    assert split_by_image(records, 0.3, seed=2) != (train, validation)
    assert split_by_image(records[:2], 0.1)[1] != []  # at least one image is held out
    with pytest.raises(ValueError, match="cannot hold out validation images from 1 image"):
        split_by_image(records[:1], 0.5)
    with pytest.raises(ValueError, match="validation_fraction must be in"):
        split_by_image(records, 1.0)
