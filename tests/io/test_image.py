"""emdl.io.image: every supported format to float32 [0, 1] gray, pixel sizes, and clean errors."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import skimage.io
import tifffile
from PIL import Image

from emdl.errors import InputError
from emdl.io import Micrograph, image_size, read_image, read_micrograph

DATA_DIR = Path(
    os.environ.get("EMDL_DATA_DIR", Path(__file__).resolve().parents[2].parent / "shared" / "data")
)

# Pure red, green, blue and black: rgb2gray weights 0.2125, 0.7154, 0.0721, scaled by the max.
RGB = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [0, 0, 0]]], dtype=np.uint8)
RGB_GRAY = np.array([[0.2125, 0.7154], [0.0721, 0.0]]) / 0.7154


def unit(values: np.ndarray) -> np.ndarray:
    """The expected reader output: min-max scaled in float64, then float32."""
    values = np.asarray(values, dtype=np.float64)
    return ((values - values.min()) / (values.max() - values.min())).astype(np.float32)


def assert_unit_image(image: np.ndarray, shape: tuple[int, int]) -> None:
    assert image.shape == shape
    assert image.dtype == np.float32
    assert image.min() == 0.0
    assert image.max() == 1.0


def test_8bit_png_exact(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    skimage.io.imsave(path, np.array([[0, 51, 102], [153, 204, 255]], dtype=np.uint8))
    expected = np.array([[0.0, 0.2, 0.4], [0.6, 0.8, 1.0]], dtype=np.float32)
    image = read_image(path)
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, expected)


def test_min_max_is_per_image(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    skimage.io.imsave(path, np.array([[10, 20, 30]], dtype=np.uint8))
    np.testing.assert_array_equal(read_image(path), np.array([[0.0, 0.5, 1.0]], np.float32))


def test_16bit_png(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    values = np.array([[100, 1000], [30000, 65535]], dtype=np.uint16)
    skimage.io.imsave(path, values, check_contrast=False)
    np.testing.assert_array_equal(read_image(path), unit(values))


@pytest.mark.parametrize(
    "values",
    [
        np.array([[0, 300], [4095, 65535]], dtype=np.uint16),
        np.array([[-70000, 0], [5, 2**31 - 1]], dtype=np.int32),
        np.array([[-1.5, 0.0], [1.0, 2.5]], dtype=np.float32),
        np.array([[True, False], [False, False]]),
    ],
    ids=["uint16", "int32", "float32", "bool"],
)
def test_tiff_dtypes(tmp_path: Path, values: np.ndarray) -> None:
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, values)
    micrograph = read_micrograph(path)
    np.testing.assert_array_equal(micrograph.image, unit(values))
    assert micrograph.pixel_size_nm is None


def test_float_tiff_values(tmp_path: Path) -> None:
    path = tmp_path / "a.tiff"
    tifffile.imwrite(path, np.array([[-1.5, 0.0, 2.5]], dtype=np.float32))
    np.testing.assert_array_equal(read_image(path), np.array([[0.0, 0.375, 1.0]], np.float32))


def test_rgb_and_rgba_png_become_gray(tmp_path: Path) -> None:
    rgba = np.dstack([RGB, np.array([[255, 0], [128, 7]], dtype=np.uint8)])
    Image.fromarray(RGB).save(tmp_path / "rgb.png")
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    gray = read_image(tmp_path / "rgb.png")
    np.testing.assert_allclose(gray, RGB_GRAY, rtol=1e-6, atol=1e-7)
    # Alpha is dropped, not composited: transparency does not change the result.
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), gray)


@pytest.mark.parametrize("planarconfig", ["contig", "separate"])
def test_rgb_tiff_becomes_gray(tmp_path: Path, planarconfig: str) -> None:
    path = tmp_path / "rgb.tif"
    data = RGB if planarconfig == "contig" else np.moveaxis(RGB, -1, 0)
    tifffile.imwrite(path, data, photometric="rgb", planarconfig=planarconfig)
    np.testing.assert_allclose(read_image(path), RGB_GRAY, rtol=1e-6, atol=1e-7)


def test_gray_from_palette_and_la_png(tmp_path: Path) -> None:
    values = np.array([[0, 100], [200, 50]], dtype=np.uint8)
    Image.fromarray(values).convert("P").save(tmp_path / "p.png")
    Image.fromarray(values).convert("LA").save(tmp_path / "la.png")
    np.testing.assert_allclose(read_image(tmp_path / "p.png"), unit(values), atol=1e-6)
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), unit(values))


def test_palette_tiff_becomes_gray(tmp_path: Path) -> None:
    path = tmp_path / "palette.tif"
    colormap = np.zeros((3, 256), dtype=np.uint16)
    colormap[:, 1] = [65535, 0, 0]
    colormap[:, 2] = [0, 65535, 0]
    colormap[:, 3] = [0, 0, 65535]
    indices = np.array([[1, 2], [3, 0]], dtype=np.uint8)
    tifffile.imwrite(path, indices, photometric="palette", colormap=colormap)
    np.testing.assert_allclose(read_image(path), RGB_GRAY, rtol=1e-6, atol=1e-7)


def test_jpeg_is_close(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    ramp = np.tile(np.linspace(0, 255, 64), (32, 1)).astype(np.uint8)
    Image.fromarray(ramp).save(path, quality=95)
    image = read_image(path)
    assert_unit_image(image, (32, 64))
    np.testing.assert_allclose(image, unit(ramp), atol=0.05)


@pytest.mark.parametrize("name", ["flat.png", "flat.tif"])
def test_constant_image_is_zeros(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    flat = np.full((4, 5), 77, dtype=np.uint8)
    if name.endswith(".tif"):
        tifffile.imwrite(path, flat)
    else:
        skimage.io.imsave(path, flat, check_contrast=False)
    image = read_image(path)
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, np.zeros((4, 5), np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_tiff_is_an_error(tmp_path: Path, bad: float) -> None:
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, np.array([[0.0, bad], [1.0, 2.0]], dtype=np.float32))
    with pytest.raises(InputError, match="non-finite") as info:
        read_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("shape", "kwargs", "frames"),
    [
        ((5, 4, 6), {}, 5),
        ((3, 4, 6), {"photometric": "minisblack"}, 3),
        ((2, 3, 4, 6), {"imagej": True, "metadata": {"axes": "TCYX"}}, 6),
    ],
    ids=["stack", "three-frame-stack", "imagej-hyperstack"],
)
def test_multi_frame_tiff_is_an_error(
    tmp_path: Path, shape: tuple[int, ...], kwargs: dict, frames: int
) -> None:
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros(shape, dtype=np.uint8), **kwargs)
    with pytest.raises(InputError, match=f"has {frames} frames"):
        read_micrograph(path)


def test_animated_png_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "anim.png"
    frames = [Image.fromarray(np.full((4, 4), v, dtype=np.uint8)) for v in (0, 100, 200)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(InputError, match="has 3 frames"):
        read_image(path)


def _png_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "good.png"
    skimage.io.imsave(path, np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    return path.read_bytes()


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing.png", None, "no such file"),
        ("empty.png", b"", "empty"),
        ("garbage.png", b"this is not an image", "not a readable PNG file"),
        ("garbage.jpg", b"this is not an image", "not a readable JPEG file"),
        ("garbage.tif", b"this is not an image", "not a readable TIFF file"),
        ("garbage.mrc", b"this is not an image" * 20, "not a readable MRC file"),
        ("garbage.dm4", b"this is not an image" * 20, "not a readable Gatan"),
        ("garbage.emd", b"this is not an image" * 20, "not a readable EMD file"),
        ("truncated.png", "half", "truncated"),
        ("labels.xml", b"<annotations/>", "unsupported image format '.xml'; supported: .png"),
        ("noext", b"data", "unsupported image format '(no extension)'"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: bytes | str | None, problem: str) -> None:
    path = tmp_path / name
    if content == "half":
        png = _png_bytes(tmp_path)
        content = png[: len(png) // 2]
    if content is not None:
        path.write_bytes(content)
    for reader in (read_micrograph, image_size):
        if reader is image_size and name == "truncated.png":
            continue  # the header is intact, so its size can still be read
        with pytest.raises(InputError, match=re.escape(problem)) as info:
            reader(path)
        message = str(info.value)
        assert message.startswith(f"{path}: ")
        assert "\n" not in message


def test_truncated_tiff(tmp_path: Path) -> None:
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.arange(4096, dtype=np.uint16).reshape(64, 64))
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(InputError, match="not a readable TIFF file") as info:
        read_image(path)
    assert info.value.__cause__ is not None


def test_directory_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "images.png"
    folder.mkdir()
    with pytest.raises(InputError, match="is a directory"):
        read_image(folder)


@pytest.mark.parametrize(
    ("unit_name", "expected"),
    [("nm", 0.5), ("um", 500.0), ("micron", 500.0), ("\\u00B5m", 500.0), ("pixel", None)],
)
def test_imagej_tiff_pixel_size(tmp_path: Path, unit_name: str, expected: float | None) -> None:
    path = tmp_path / "fiji.tif"
    data = np.array([[0, 1], [2, 4]], dtype=np.uint16)
    tifffile.imwrite(path, data, imagej=True, resolution=(2.0, 2.0), metadata={"unit": unit_name})
    micrograph = read_micrograph(path)
    assert micrograph == Micrograph(micrograph.image, expected, str(path))
    np.testing.assert_array_equal(micrograph.image, unit(data))


def test_tiff_resolution_without_imagej_has_no_pixel_size(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(
        path, np.eye(3, dtype=np.uint8), resolution=(2.0, 2.0), resolutionunit="CENTIMETER"
    )
    assert read_micrograph(path).pixel_size_nm is None


def test_png_micrograph(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    skimage.io.imsave(path, np.eye(3, dtype=np.uint8) * 9, check_contrast=False)
    micrograph = read_micrograph(path)
    assert micrograph.pixel_size_nm is None
    assert micrograph.path == str(path)
    np.testing.assert_array_equal(micrograph.image, np.eye(3, dtype=np.float32))


def _write_mrc(path: Path, data: np.ndarray, voxel_size: float | None = None) -> None:
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        if voxel_size is not None:
            mrc.voxel_size = voxel_size


def test_mrc_pixel_size_through_rsciio(tmp_path: Path) -> None:
    path = tmp_path / "a.mrc"
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    _write_mrc(path, data, voxel_size=5.0)  # MRC voxel sizes are in angstrom
    micrograph = read_micrograph(path)
    # rsciio reports the axes already converted: scale 0.5, units "nm".
    assert micrograph.pixel_size_nm == pytest.approx(0.5)
    np.testing.assert_array_equal(micrograph.image, unit(data))
    assert image_size(path) == (4, 3)


def test_uncalibrated_mrc_has_no_pixel_size(tmp_path: Path) -> None:
    path = tmp_path / "a.mrc"
    _write_mrc(path, np.arange(6, dtype=np.int16).reshape(2, 3))  # rsciio: scale 0.0, "nm"
    assert read_micrograph(path).pixel_size_nm is None


def test_mrc_stack_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "stack.mrc"
    _write_mrc(path, np.zeros((4, 3, 5), dtype=np.float32), voxel_size=5.0)
    with pytest.raises(InputError, match="has 4 frames"):
        read_micrograph(path)


def test_emd_through_rsciio(tmp_path: Path) -> None:
    """An NCEM (Berkeley) EMD, which rsciio can write; Velox files take the same path."""
    from rsciio.emd import file_writer

    path = tmp_path / "a.emd"
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    axes = [
        {"size": 3, "name": "y", "scale": 2.0, "units": "Å", "offset": 0.0, "navigate": False},
        {"size": 4, "name": "x", "scale": 0.25, "units": "µm", "offset": 0.0, "navigate": False},
    ]
    signal = {"data": data, "axes": axes, "metadata": {"General": {"title": "a"}, "Signal": {}}}
    file_writer(str(path), signal | {"original_metadata": {}})
    micrograph = read_micrograph(path)
    assert micrograph.pixel_size_nm == pytest.approx(250.0)  # x scale wins over y
    np.testing.assert_array_equal(micrograph.image, unit(data))
    assert image_size(path) == (4, 3)


def _axis(name: str, size: int, scale: float, units: object, index: int, navigate=False) -> dict:
    return {
        "name": name,
        "size": size,
        "scale": scale,
        "units": units,
        "offset": 0.0,
        "index_in_array": index,
        "navigate": navigate,
    }


@pytest.mark.parametrize(
    ("scale", "units", "expected"),
    [
        (0.2, "nm", 0.2),
        (0.002, "µm", 2.0),
        (0.002, "μm", 2.0),
        (3.0, "Å", 0.3),
        (3.0, "Å", 0.3),
        (3.0, "A", 0.3),
        (3.0, "angstrom", 0.3),
        (500.0, "pm", 0.5),
        (2e-9, "m", 2.0),
        (1.0, "<undefined>", None),
        (1.0, "", None),
        (1.0, None, None),
        (0.1, "1/nm", None),
    ],
)
def test_dm3_units_with_a_stub_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scale: float, units, expected: float | None
) -> None:
    """No DM sample file is available, so a stub stands in for rsciio's reader: the spectrum and
    the stack are skipped, the first 2-D image is used, and its x (column) scale is taken."""
    import rsciio.digitalmicrograph

    image = np.array([[1, 2, 3], [4, 5, 9]], dtype=np.int32)
    spectrum = {"data": np.zeros(7), "axes": [_axis("E", 7, 1.0, "eV", 0)]}
    stack = {
        "data": np.zeros((2, 2, 3)),
        "axes": [
            _axis("t", 2, 1.0, "s", 0, True),
            _axis("y", 2, 9, "nm", 1),
            _axis("x", 3, 9, "nm", 2),
        ],
    }
    first = {"data": image, "axes": [_axis("y", 2, 7.0, "nm", 0), _axis("x", 3, scale, units, 1)]}
    second = {"data": image * 0, "axes": first["axes"]}
    signals = [spectrum, stack, first, second]
    monkeypatch.setattr(rsciio.digitalmicrograph, "file_reader", lambda *a, **k: signals)
    path = tmp_path / "a.dm3"
    path.write_bytes(b"stub")
    micrograph = read_micrograph(path)
    assert micrograph.pixel_size_nm == pytest.approx(expected)
    np.testing.assert_array_equal(micrograph.image, unit(image))
    assert image_size(path) == (3, 2)


def test_dm4_rgb_structured_dtype(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rsciio.digitalmicrograph

    rgb = np.zeros((2, 2), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1"), ("A", "u1")])
    for c, channel in enumerate("RGB"):
        rgb[channel] = RGB[..., c]
    signal = {"data": rgb, "axes": [_axis("y", 2, 1.0, "nm", 0), _axis("x", 2, 1.0, "nm", 1)]}
    monkeypatch.setattr(rsciio.digitalmicrograph, "file_reader", lambda *a, **k: [signal])
    path = tmp_path / "rgb.dm4"
    path.write_bytes(b"stub")
    np.testing.assert_allclose(read_image(path), RGB_GRAY, rtol=1e-6, atol=1e-7)


def test_only_stacks_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rsciio.digitalmicrograph

    spectrum = {"data": np.zeros(7), "axes": [_axis("E", 7, 1.0, "eV", 0)]}
    monkeypatch.setattr(rsciio.digitalmicrograph, "file_reader", lambda *a, **k: [spectrum])
    path = tmp_path / "spectrum.dm3"
    path.write_bytes(b"stub")
    with pytest.raises(InputError, match="no 2-D image"):
        read_image(path)


@pytest.mark.parametrize(("suffix", "module"), [(".dm3", "digitalmicrograph"), (".mrc", "mrc")])
def test_missing_rsciio_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, f"rsciio.{module}", None)  # makes the import fail
    path = tmp_path / f"a{suffix}"
    path.write_bytes(b"anything")
    with pytest.raises(InputError) as info:
        read_micrograph(path)
    assert str(info.value).startswith(
        f'{path}: reading {suffix} needs the io extra: pip install "emdl[io]"'
    )


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("a.png", lambda p, a: skimage.io.imsave(p, a, check_contrast=False)),
        ("a.jpg", lambda p, a: Image.fromarray(a).save(p)),
        ("a.tif", lambda p, a: tifffile.imwrite(p, a)),
        ("rgb.tif", lambda p, a: tifffile.imwrite(p, np.dstack([a, a, a]), photometric="rgb")),
    ],
)
def test_image_size_is_width_height(tmp_path: Path, name: str, write) -> None:
    path = tmp_path / name
    write(path, np.zeros((3, 7), dtype=np.uint8))
    assert image_size(path) == (7, 3)
    assert image_size(str(path)) == (7, 3)


def test_real_bubbles_image() -> None:
    path = DATA_DIR / "bubbles" / "DL_for_Microscopy_Train_Img_1.png"
    if not path.is_file():
        pytest.fail(f"real data not found at {path}: set EMDL_DATA_DIR")
    image = read_image(path)
    assert_unit_image(image, (512, 512))
    assert image_size(path) == (512, 512)
