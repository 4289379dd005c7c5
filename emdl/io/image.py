"""Reading micrographs: PNG, JPEG and TIFF, and Gatan, MRC and Velox files through RosettaSciIO.

Every reader returns one gray float32 ``(H, W)`` image min-max scaled to ``[0, 1]``; anything
that cannot become one (a missing, corrupt or multi-frame file) is an :class:`InputError`.
"""

from __future__ import annotations

import importlib
import math
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image
from skimage.color import rgb2gray

from emdl.errors import InputError

_PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
_TIFF_SUFFIXES = (".tif", ".tiff")
_RSCIIO_MODULES = {
    ".dm3": "digitalmicrograph",
    ".dm4": "digitalmicrograph",
    ".mrc": "mrc",
    ".emd": "emd",
}
SUPPORTED_SUFFIXES = (*_PIL_SUFFIXES, *_TIFF_SUFFIXES, *_RSCIIO_MODULES)
_FORMAT_NAMES = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".dm3": "Gatan DigitalMicrograph",
    ".dm4": "Gatan DigitalMicrograph",
    ".mrc": "MRC",
    ".emd": "EMD",
}

# Keys are NFKC-normalized and lower-cased, so the micro sign, Greek mu and the angstrom sign
# all land on one spelling. "um", "micron" and the escaped "\u00B5m" are how ImageJ writes µm.
_NM_PER_UNIT = {
    "nm": 1.0,
    "μm": 1e3,
    "um": 1e3,
    "micron": 1e3,
    "microns": 1e3,
    "\\u00b5m": 1e3,
    "å": 0.1,
    "a": 0.1,
    "angstrom": 0.1,
    "pm": 1e-3,
    "m": 1e9,
}


@dataclass(frozen=True)
class Micrograph:
    """A gray micrograph: ``image`` is float32 ``(H, W)`` in ``[0, 1]``; ``pixel_size_nm`` is the
    width of one pixel in nanometres, or None when the file does not record a usable one."""

    image: np.ndarray
    pixel_size_nm: float | None
    path: str


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The image in ``path`` as float32 ``(H, W)``, min-max scaled to ``[0, 1]`` (a constant image
    gives zeros). Colour is made gray with :func:`skimage.color.rgb2gray`, alpha dropped."""
    return read_micrograph(path).image


def read_micrograph(path: str | os.PathLike) -> Micrograph:
    """Read one 2-D image and its pixel size from a PNG, JPEG, TIFF, ``.dm3``/``.dm4``, ``.mrc``
    or Velox ``.emd`` file.

    The image is float32 ``(H, W)``, ``(x - min) / (max - min)`` so that it spans ``[0, 1]``
    (zeros if constant); RGB(A) becomes gray via :func:`skimage.color.rgb2gray`, alpha dropped.

    ``pixel_size_nm``: PNG and JPEG give None; a TIFF gives one only when ImageJ/Fiji wrote a
    length unit and an XResolution (pixels per unit). DM, MRC and EMD files are read with
    RosettaSciIO (the ``io`` extra); if the file holds several signals, the first 2-D image is
    used, and its pixel size comes from the axes' ``scale`` and ``units`` (None if uncalibrated).
    If the x and y scales differ, the x (column) scale is used.

    Raises :class:`InputError` for a missing, empty, corrupt, unsupported, non-finite or
    multi-frame file.
    """
    suffix = _check_file(path)
    if suffix in _PIL_SUFFIXES:
        data, pixel_size = _read_pil(path), None
    elif suffix in _TIFF_SUFFIXES:
        data, pixel_size = _read_tiff(path)
    else:
        data, pixel_size = _read_rsciio(path, suffix)
    return Micrograph(_to_unit_gray(data, path), pixel_size, os.fspath(path))


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` in pixels of the image in ``path``, from the header where the format
    allows (PNG, JPEG, TIFF); DM, MRC and EMD files are opened lazily through RosettaSciIO."""
    suffix = _check_file(path)
    try:
        if suffix in _PIL_SUFFIXES:
            with Image.open(path) as img:
                return img.size
        if suffix in _TIFF_SUFFIXES:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages.first
                return int(page.imagewidth), int(page.imagelength)
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    try:
        signals = _rsciio_signals(path, suffix, lazy=True)
    except InputError:
        # Some layouts (e.g. DigitalMicrograph RGBA) cannot be read lazily.
        signals = _rsciio_signals(path, suffix, lazy=False)
    _, y_axis, x_axis = _pick_signal(signals, path)
    return int(x_axis["size"]), int(y_axis["size"])


def _check_file(path: str | os.PathLike) -> str:
    """The lower-case suffix of ``path`` once it is known to be a non-empty, supported file."""
    p = Path(path)
    if not p.exists():
        raise InputError(path, "no such file")
    if p.is_dir():
        raise InputError(path, "is a directory, not an image file")
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(
            path,
            f"unsupported image format {suffix or '(no extension)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}",
        )
    if p.stat().st_size == 0:
        raise InputError(path, "file is empty")
    return suffix


def _unreadable(path: str | os.PathLike, exc: Exception) -> InputError:
    name = _FORMAT_NAMES[Path(path).suffix.lower()]
    return InputError(path, f"not a readable {name} file ({_reason(exc)})")


def _reason(exc: Exception) -> str:
    # Library messages can span lines or be empty; the CLI prints one line per error.
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _read_pil(path: str | os.PathLike) -> np.ndarray:
    try:
        with Image.open(path) as img:
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                raise InputError(path, f"has {frames} frames; emdl reads single images")
            # load() decodes everything, so truncated files fail here rather than later.
            img.load()
            if img.mode not in ("L", "I", "I;16", "I;16B", "I;16L", "F", "RGB", "RGBA"):
                img = img.convert("L" if img.mode in ("1", "LA", "La") else "RGB")
            return np.asarray(img)
    except InputError:
        raise
    except Exception as exc:
        raise _unreadable(path, exc) from exc


def _read_tiff(path: str | os.PathLike) -> tuple[np.ndarray, float | None]:
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            page = tif.pages.first
            colour = page.photometric in (
                tifffile.PHOTOMETRIC.RGB,
                tifffile.PHOTOMETRIC.YCBCR,
                tifffile.PHOTOMETRIC.PALETTE,
            )
            # Samples that are not RGB(A) (e.g. ImageJ channels) are separate planes, not colour.
            planes = [n for ax, n in zip(series.axes, series.shape, strict=True) if ax not in "YX"]
            if colour and "S" in series.axes:
                planes.remove(series.shape[series.axes.index("S")])
            # Other series are further images, unless they are reduced-resolution previews.
            others = [s for s in tif.series[1:] if not s.keyframe.is_reduced]
            frames = math.prod(planes) + sum(math.prod(s.shape[:-2]) for s in others)
            if frames > 1:
                raise InputError(path, f"has {frames} frames; emdl reads single images")
            data = series.asarray()
            if "S" in series.axes:
                data = np.moveaxis(data, series.axes.index("S"), -1)
            if page.photometric == tifffile.PHOTOMETRIC.PALETTE:
                data = page.colormap.T[data]
            pixel_size = _imagej_pixel_size(tif)
    except InputError:
        raise
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    return data, pixel_size


def _imagej_pixel_size(tif: tifffile.TiffFile) -> float | None:
    """nm per pixel from ImageJ's ``unit=`` and the XResolution tag (pixels per unit), or None."""
    unit = (tif.imagej_metadata or {}).get("unit")
    tag = tif.pages.first.tags.get("XResolution")
    if unit is None or tag is None:
        return None
    numerator, denominator = tag.value
    if numerator <= 0:
        return None
    return _nm(denominator / numerator, unit)


def _nm(scale: Any, unit: Any) -> float | None:
    """``scale`` in ``unit`` converted to nanometres; None when either is unusable."""
    factor = _NM_PER_UNIT.get(unicodedata.normalize("NFKC", str(unit)).strip().lower())
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        return None
    # rsciio reports an uncalibrated MRC as scale 0.0 in "nm".
    if factor is None or not math.isfinite(scale) or scale <= 0:
        return None
    return scale * factor


def _rsciio_signals(path: str | os.PathLike, suffix: str, lazy: bool) -> list[dict]:
    try:
        # Imported here because RosettaSciIO is an optional extra.
        module = importlib.import_module(f"rsciio.{_RSCIIO_MODULES[suffix]}")
    except ImportError as exc:
        raise InputError(
            path, f'reading {suffix} needs the io extra: pip install "emdl[io]" ({exc})'
        ) from exc
    # Velox files may hold EDS spectrum images; loading only images skips them (and their
    # dependency on the sparse package).
    options = {"select_type": "images"} if suffix == ".emd" else {}
    try:
        return module.file_reader(os.fspath(path), lazy=lazy, **options)
    except ImportError as exc:
        raise InputError(
            path, f'reading {suffix} needs the io extra: pip install "emdl[io]" ({exc})'
        ) from exc
    except Exception as exc:
        raise _unreadable(path, exc) from exc


def _pick_signal(signals: list[dict], path: str | os.PathLike) -> tuple[dict, dict, dict]:
    """The first signal that is one 2-D image, with its y and x axes (RosettaSciIO dicts)."""
    stacks = []
    for signal in signals:
        axes = [ax for ax in signal["axes"] if ax["size"] > 1]
        image_axes = [ax for ax in axes if not ax.get("navigate", False)]
        if len(image_axes) != 2:
            continue
        frames = math.prod(ax["size"] for ax in axes if ax.get("navigate", False))
        if frames > 1:
            stacks.append(frames)
            continue
        y_axis, x_axis = sorted(image_axes, key=lambda ax: ax.get("index_in_array", 0))
        return signal, y_axis, x_axis
    if stacks:
        raise InputError(path, f"has {stacks[0]} frames; emdl reads single images")
    raise InputError(path, f"holds no 2-D image among its {len(signals)} signal(s)")


def _read_rsciio(path: str | os.PathLike, suffix: str) -> tuple[np.ndarray, float | None]:
    signal, _, x_axis = _pick_signal(_rsciio_signals(path, suffix, lazy=False), path)
    data = np.squeeze(np.asarray(signal["data"]))
    if data.dtype.names:
        # DigitalMicrograph stores RGB images as a structured dtype with R, G, B(, A) fields.
        data = np.stack([data[c] for c in "RGB"], axis=-1)
    return data, _nm(x_axis.get("scale"), x_axis.get("units"))


def unit_gray(data: np.ndarray, source: str | os.PathLike = "image") -> np.ndarray:
    """An array of any dtype (gray ``(H, W)`` or colour ``(H, W, 3|4)``) as emdl's models take
    it: float32 ``(H, W)`` min-max scaled to [0, 1], as :func:`read_image` gives files; an
    InputError naming ``source`` for complex, empty, non-finite or other-shaped data."""
    return _to_unit_gray(np.asarray(data), source)


def _to_unit_gray(data: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """2-D gray or ``(H, W, 3|4)`` colour data as float32 ``(H, W)`` min-max scaled to [0, 1]."""
    if np.iscomplexobj(data):
        raise InputError(path, "holds complex values, not an image")
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        data = rgb2gray(data[..., :3].astype(np.float64))
    if data.ndim != 2:
        raise InputError(path, f"has shape {data.shape}; expected one 2-D image")
    if data.size == 0:
        raise InputError(path, "image has no pixels")
    data = data.astype(np.float64)
    if not np.isfinite(data).all():
        raise InputError(path, "image has non-finite values (NaN or infinity)")
    low, high = data.min(), data.max()
    if high == low:
        return np.zeros(data.shape, np.float32)
    return ((data - low) / (high - low)).astype(np.float32)
