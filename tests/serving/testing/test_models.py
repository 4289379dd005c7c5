import pytest

from emdl.errors import InputError
from emdl.serving.testing import ServedModels, StatusError
from emdl.serving.testing.models import run


def test_a_serving_dir_is_every_numbered_model(tiny_saved_model, tmp_path):
    for name, version in (("a", 2), ("a", 10), ("b", 1)):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / str(version)).symlink_to(tiny_saved_model)
    (tmp_path / "models.config").write_text("")
    (tmp_path / "notes").mkdir()
    models = ServedModels.from_serving_dir(tmp_path)
    assert models.signature("a", None, "")[1] == 10
    assert models.signature("a", 2, "serving_default")[1] == 2
    assert models.signature("b", None, "bright")[1] == 1
    with pytest.raises(StatusError) as error:
        models.signature("notes", None, "")
    assert (error.value.code, error.value.message) == (
        "NOT_FOUND",
        "Servable not found for request: Latest(notes)",
    )


def test_folders_that_hold_no_saved_model_are_refused(tmp_path):
    with pytest.raises(InputError) as error:
        ServedModels.from_serving_dir(tmp_path)
    assert str(error.value) == f"{tmp_path}: has no NAME/N/saved_model.pb"
    with pytest.raises(InputError) as error:
        ServedModels({"x": tmp_path})
    assert (
        str(error.value)
        == f"{tmp_path}: is neither a SavedModel nor a folder of numbered SavedModels"
    )
    with pytest.raises(InputError) as error:
        ServedModels.from_serving_dir(tmp_path / "missing")
    assert str(error.value) == f"{tmp_path / 'missing'}: is not a folder"


def test_inputs_must_match_the_signature(served):
    function, _ = served.signature("tiny", None, "")
    with pytest.raises(StatusError) as error:
        run(function, {"x": 1})
    assert error.value.message == (
        "input size does not match signature: 1!=1 len({x}) != len({image}). "
        "Sent extra: {x}. Missing but required: {image}."
    )
