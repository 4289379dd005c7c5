"""COCO instances JSON: read label files made with other tools, write training data for COCO tools.

A COCO instances file is one JSON object with lists ``images`` (``id``, ``file_name``, ``width``,
``height``), ``categories`` (``id``, ``name``) and ``annotations`` (``id``, ``image_id``,
``category_id``, ``segmentation``, ``bbox``, ``area``, ``iscrowd``). ``bbox`` is ``[x, y, w, h]`` in
pixels from the image's top-left corner. ``segmentation`` is either polygons
``[[x1, y1, x2, y2, ...], ...]`` in pixels or a run-length code ``{"size": [h, w], "counts": ...}``
of the whole image in column-major order, ``counts`` being a list of runs (zeros first) or
pycocotools' compressed string. Coordinates follow :mod:`emdl.annotations` (COCO's convention).

Files written here are standard COCO plus extension keys that other tools ignore, so that they read
back exactly:

- categories: ``color`` and ``type``, CVAT's label colour and type;
- images: ``emdl_id``, the image's own id (may be null; the COCO ``id`` is 1..N), and, when set,
  ``emdl_subset`` and ``emdl_tags`` (``[{"label", "source", "attributes": [[name, value], ...]}]``);
- annotations: ``emdl_shape``, the CVAT shape's ``type`` and every field but its label (which
  ``category_id`` gives). Like CVAT's COCO export, ``attributes`` holds occluded, z_order, source,
  group_id and the shape's own attributes, for other tools.

Reading a file without ``emdl_shape`` makes polygons (one per part; the parts of one annotation
share a ``group_id``), masks from run-length codes and boxes from a bbox without segmentation; the
common fields and a box's ``rotation`` come from ``attributes`` where present, as CVAT exports them.

Files are read as UTF-8 (a byte order mark is dropped) or, when they begin with a UTF-16 or UTF-32
byte order mark or zero bytes, as those. An image, run-length code or mask may declare at most
``max_pixels`` pixels (:data:`emdl.io.checks.MAX_PIXELS`), checked before anything of its size is
allocated.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from emdl.annotations import (
    SHAPE_TYPES,
    Annotations,
    Box,
    Ellipse,
    ImageAnnotation,
    Label,
    Mask,
    Point,
    Polygon,
    ReadReport,
    Shape,
    Tag,
)
from emdl.errors import InputError
from emdl.io.atomic import write_text
from emdl.io.checks import (
    clip_shape,
    decode_text,
    default_pixel_limit,
    label_problem,
    pixels_problem,
    shape_problem,
)
from emdl.rasterize import shape_mask

SHAPE_KEY = "emdl_shape"
ELLIPSE_VERTICES = 64
# Per-shape bookkeeping in CVAT's COCO export, not attributes of the label.
_CVAT_EXPORT_KEYS = ("rotation", "track_id", "keyframe")


def write_coco(annotations: Annotations, path: str | PathLike) -> None:
    """Write ``annotations`` as a COCO instances JSON file with emdl's extension keys.

    Categories get ids 1..C in label order, images 1..N and annotations 1.. in file order. Every
    shape gets a standard ``segmentation``: polygons as they are, boxes as their four (rotated)
    corners, ellipses as a 64-gon, masks as compressed RLE; polylines and points enclose nothing
    and get ``[]`` with the ``bbox`` of their extent.
    """
    category_ids = {label.name: i for i, label in enumerate(annotations.labels, 1)}
    categories = [
        {"id": i, "name": label.name, "supercategory": "", "color": label.color, "type": label.type}
        for i, label in enumerate(annotations.labels, 1)
    ]
    images, coco_annotations = [], []
    for image_id, image in enumerate(annotations.images, 1):
        entry = {
            "id": image_id,
            "file_name": image.name,
            "width": image.width,
            "height": image.height,
            "emdl_id": image.id,
        }
        if image.subset is not None:
            entry["emdl_subset"] = image.subset
        if image.tags:
            entry["emdl_tags"] = [dataclasses.asdict(tag) for tag in image.tags]
        images.append(entry)
        for shape in image.shapes:
            if shape.label not in category_ids:
                raise ValueError(f"image '{image.name}': label '{shape.label}' is not declared")
            common = {name: getattr(shape, name) for name in ("occluded", "z_order", "source")}
            coco_annotations.append(
                {
                    "id": len(coco_annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_ids[shape.label],
                    **_coco_geometry(shape, image.width, image.height),
                    "iscrowd": 0,
                    "attributes": {**dict(shape.attributes), **common, "group_id": shape.group_id},
                    SHAPE_KEY: _shape_to_json(shape),
                }
            )
    coco = {"images": images, "annotations": coco_annotations, "categories": categories}
    write_text(path, json.dumps(coco, allow_nan=False))


def read_coco(path: str | PathLike, *, max_pixels: int | None = None) -> Annotations:
    """Read a COCO instances JSON file (see the module docstring for what becomes which shape).

    Shapes reaching outside their image are clipped and counted; unusable ones and ones whose
    category is not declared are skipped with a warning and counted in the report. A file that
    cannot be used raises :class:`InputError`, among them one declaring a category name with a
    control character, or an image, run-length code or mask of more than ``max_pixels`` pixels.
    """
    max_pixels = default_pixel_limit() if max_pixels is None else max_pixels
    path = Path(path)
    coco = _load(path)
    labels, names = [], {}
    for i, entry in enumerate(coco["categories"]):
        with _problem_in(path, f"categories[{i}]"):
            category_id, label = _category(entry)
            if category_id in names:
                raise ValueError(f"category id {category_id!r} is used twice")
        names[category_id] = label.name
        labels.append(label)
    images, images_by_id = [], {}
    for i, entry in enumerate(coco["images"]):
        with _problem_in(path, f"images[{i}]"):
            image_id, image = _image(entry, max_pixels)
            if image_id in images_by_id:
                raise ValueError(f"image id {image_id!r} is used twice")
        images_by_id[image_id] = image
        images.append(image)

    source, report = str(path), ReadReport()
    for position, entry in enumerate(coco["annotations"], 1):
        index = entry.get("id", position) if isinstance(entry, dict) else position
        with _problem_in(path, f"annotation {index}"):
            if not isinstance(entry, dict):
                raise ValueError("not an object")
            image = images_by_id.get(entry.get("image_id"))
            if image is None:
                raise ValueError(f"image_id {entry.get('image_id')!r} names no image")
            label = names.get(entry.get("category_id"))
            shapes = (
                []
                if label is None
                else _annotation_shapes(entry, label, image, position, max_pixels)
            )
        if label is None:
            report.skip(source, image.name, "annotation", index, "label not declared in categories")
        for shape in shapes:
            _add_shape(shape, image, index, source, report)
    for image in images:
        image.shapes.sort(key=lambda shape: shape.z_order)  # stable: file order within a z_order
    return Annotations(labels, images, source=source, report=report)


# --- writing ---


def _shape_to_json(shape: Shape) -> dict:
    """Its type and every field but the label; tuples become JSON lists, floats stay exact."""
    fields = dataclasses.asdict(shape)
    del fields["label"]
    return {"type": shape.type, **fields}


def _coco_geometry(shape: Shape, width: int, height: int) -> dict:
    """``segmentation``, ``bbox`` and ``area`` of ``shape`` for standard COCO consumers."""
    if isinstance(shape, Mask):
        rle = mask_utils.encode(np.asfortranarray(shape_mask(shape, height, width), dtype=np.uint8))
        return {
            "segmentation": {**rle, "counts": rle["counts"].decode("ascii")},
            "bbox": mask_utils.toBbox(rle).tolist(),
            "area": float(mask_utils.area(rle)),
        }
    outline: tuple[Point, ...] = ()
    if isinstance(shape, Polygon):
        outline = shape.points
    elif isinstance(shape, Box):
        outline = shape.corners
    elif isinstance(shape, Ellipse):
        outline = _ellipse_outline(shape)
    x0, y0, x1, y1 = shape.bounds
    return {
        "segmentation": [[v for point in outline for v in point]] if outline else [],
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": shape.area,
    }


def _ellipse_outline(ellipse: Ellipse) -> tuple[Point, ...]:
    cos, sin = math.cos(math.radians(ellipse.rotation)), math.sin(math.radians(ellipse.rotation))
    outline = []
    for k in range(ELLIPSE_VERTICES):
        t = 2 * math.pi * k / ELLIPSE_VERTICES
        dx, dy = ellipse.rx * math.cos(t), ellipse.ry * math.sin(t)
        outline.append((ellipse.cx + dx * cos - dy * sin, ellipse.cy + dx * sin + dy * cos))
    return tuple(outline)


# --- reading ---


def _load(path: Path) -> dict:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except OSError as error:
        raise InputError(path, f"cannot read: {error}") from None
    text = decode_text(path, data)
    if not text.strip():
        raise InputError(path, "empty file")
    try:
        coco = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(path, f"not JSON: {error.msg}", line=error.lineno) from None
    keys = ("images", "annotations", "categories")
    if not isinstance(coco, dict) or not all(isinstance(coco.get(key), list) for key in keys):
        raise InputError(
            path, "not a COCO instances file: needs lists 'images', 'annotations', 'categories'"
        )
    return coco


@contextmanager
def _problem_in(path: Path, where: str) -> Iterator[None]:
    """Turn the ValueError/TypeError of a malformed entry into an InputError naming it."""
    try:
        yield
    except (TypeError, ValueError) as error:
        raise InputError(path, f"{where}: {error}") from None


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"non-numeric coordinate {value!r}")
    return float(value)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _pairs(value: object) -> tuple[tuple[str, str], ...]:
    return tuple((_text(name), _text(text)) for name, text in value)


# How each JSON value of emdl_shape becomes a shape field; every other field is a float.
_FIELDS: dict[str, Callable[[object], object]] = {
    "occluded": _flag,
    "z_order": _int,
    "source": _text,
    "attributes": _pairs,
    "group_id": lambda value: None if value is None else _int(value),
    "points": lambda value: tuple((_number(x), _number(y)) for x, y in value),
    "rle": lambda value: tuple(map(_int, value)),
    **dict.fromkeys(("left", "top", "width", "height"), _int),
}


def _category(entry: object) -> tuple[int | str, Label]:
    if not isinstance(entry, dict) or not _is_id(entry.get("id")):
        raise ValueError("not an object with an id")
    name = _text(entry.get("name"))
    problem = label_problem(name)
    if problem is not None:
        raise ValueError(problem)
    label = Label(name, _text(entry.get("color", "")), _text(entry.get("type", "any")))
    return entry["id"], label


def _image(entry: object, max_pixels: int) -> tuple[int | str, ImageAnnotation]:
    if not isinstance(entry, dict) or not _is_id(entry.get("id")):
        raise ValueError("not an object with an id")
    name, width, height = entry.get("file_name"), entry.get("width"), entry.get("height")
    if not isinstance(name, str):
        raise ValueError("no file_name")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        raise ValueError(f"image '{name}' has no positive integer width and height")
    problem = pixels_problem(f"image '{name}'", width, height, max_pixels)
    if problem is not None:
        raise ValueError(problem)
    coco_id = entry["id"]
    own_id = entry["emdl_id"] if "emdl_id" in entry else coco_id
    subset = entry.get("emdl_subset")
    tags = [_tag(tag) for tag in entry.get("emdl_tags", [])]
    return coco_id, ImageAnnotation(
        name,
        width,
        height,
        tags=tags,
        id=own_id if isinstance(own_id, int) else None,
        subset=None if subset is None else _text(subset),
    )


def _is_id(value: object) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _tag(entry: object) -> Tag:
    if not isinstance(entry, dict):
        raise ValueError("a tag in emdl_tags is not an object")
    return Tag(
        _text(entry.get("label")),
        _text(entry.get("source", "manual")),
        _pairs(entry.get("attributes", [])),
    )


def _annotation_shapes(
    entry: dict, label: str, image: ImageAnnotation, position: int, max_pixels: int
) -> list[Shape]:
    """The shapes of one COCO annotation: exact from emdl_shape, else from the standard keys."""
    exact = entry.get(SHAPE_KEY)
    if exact is not None:
        return [_shape_from_json(exact, label, max_pixels)]
    fields, rotation = _fields_from_attributes(entry.get("attributes"))
    segmentation = entry.get("segmentation")
    if isinstance(segmentation, dict):
        bitmap = _rle_bitmap(segmentation, image.width, image.height, max_pixels)
        return [Mask.from_array(bitmap, label=label, **fields)]
    if segmentation:
        parts = _polygons(segmentation)
        if len(parts) > 1 and fields.get("group_id") is None:
            # Keep the parts of one object together as a CVAT group; annotation ids are unique.
            own_id = entry.get("id")
            fields["group_id"] = own_id if isinstance(own_id, int) else position
        return [Polygon(label=label, points=points, **fields) for points in parts]
    bbox = entry.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise ValueError("no segmentation and no bbox [x, y, w, h]")
    x, y, w, h = map(_number, bbox)
    return [Box(label=label, xtl=x, ytl=y, xbr=x + w, ybr=y + h, rotation=rotation, **fields)]


def _shape_from_json(exact: object, label: str, max_pixels: int) -> Shape:
    if not isinstance(exact, dict) or exact.get("type") not in SHAPE_TYPES:
        raise ValueError(f"{SHAPE_KEY} has no known shape type")
    fields = {
        name: _FIELDS.get(name, _number)(value) for name, value in exact.items() if name != "type"
    }
    shape = SHAPE_TYPES[exact["type"]](label=label, **fields)
    if isinstance(shape, Mask):
        width, height = shape.width, shape.height
        if width < 0 or height < 0:
            raise ValueError(f"{SHAPE_KEY}: mask has size {width} x {height}")
        problem = pixels_problem(f"{SHAPE_KEY} mask", width, height, max_pixels)
        if problem is not None:
            raise ValueError(problem)
        # Mask.to_array allocates what the runs cover: they must cover the checked rectangle.
        if min(shape.rle, default=0) < 0 or sum(shape.rle) != width * height:
            raise ValueError(f"{SHAPE_KEY}: mask runs do not cover its {width} x {height}")
    return shape


def _fields_from_attributes(attributes: object) -> tuple[dict, float]:
    """Common shape fields and a box's rotation from a foreign annotation's ``attributes``."""
    if attributes is None:
        return {}, 0.0
    if not isinstance(attributes, dict):
        raise ValueError("attributes is not an object")
    fields, own = {}, []
    for name, value in attributes.items():
        if name in ("occluded", "z_order", "source", "group_id"):
            fields[name] = _FIELDS[name](value)
        elif name not in _CVAT_EXPORT_KEYS:
            # CVAT's XML spells booleans in lower case; keep label attributes comparable to it.
            own.append((name, str(value).lower() if isinstance(value, bool) else str(value)))
    fields["attributes"] = tuple(own)
    return fields, _number(attributes.get("rotation", 0.0))


def _polygons(segmentation: object) -> list[tuple[Point, ...]]:
    if not isinstance(segmentation, list) or not all(isinstance(p, list) for p in segmentation):
        raise ValueError("segmentation is neither polygons [[x1, y1, ...], ...] nor RLE")
    parts = []
    for part in segmentation:
        if len(part) % 2:
            raise ValueError("polygon with an odd number of coordinates")
        values = [_number(v) for v in part]
        parts.append(tuple(zip(values[0::2], values[1::2], strict=True)))
    return parts


def _rle_bitmap(rle: dict, width: int, height: int, max_pixels: int) -> np.ndarray:
    """The bool ``(height, width)`` bitmap of a COCO run-length code, compressed or not, sized
    from its image; the code's ``size`` must be the image's and at most ``max_pixels``."""
    counts, size = rle.get("counts"), rle.get("size")
    if (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        problem = pixels_problem("RLE", size[1], size[0], max_pixels)
        if problem is not None:
            raise ValueError(problem)
    if size != [height, width]:
        raise ValueError(f"RLE size {rle.get('size')} is not the image's [{height}, {width}]")
    if isinstance(counts, str):
        runs = _string_runs(counts)
    elif isinstance(counts, list):
        runs = [_int(run) for run in counts]
    else:
        raise ValueError("RLE counts are neither a list nor a string")
    # Checked here because pycocotools' decode leaves pixels uninitialized when runs fall short;
    # with the runs at hand numpy decodes them (and without pycocotools' numpy 2 warning).
    if min(runs, default=0) < 0 or sum(runs) != width * height:
        raise ValueError(f"RLE runs do not cover the {width} x {height} image")
    column_major = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
    return column_major.reshape(width, height).T


def _string_runs(counts: str) -> list[int]:
    """The runs of pycocotools' compressed RLE string (``rleFrString`` in its maskApi.c).

    Each run is a little-endian sequence of 5-bit groups, offset from ``'0'``, with bit 5 meaning
    "more follows" and bit 4 of the last group the sign; from the third run on it is the difference
    to the run two before.
    """
    runs: list[int] = []
    chars = iter(counts)
    for char in chars:
        value, shift = 0, 0
        while True:
            code = ord(char) - 48
            if not 0 <= code < 64:
                raise ValueError(f"bad character {char!r} in compressed RLE counts")
            value |= (code & 0x1F) << shift
            shift += 5
            if not code & 0x20:
                break
            char = next(chars, None)
            if char is None:
                raise ValueError("compressed RLE counts end in the middle of a run")
        if code & 0x10:
            value -= 1 << shift
        runs.append(value + runs[-2] if len(runs) > 2 else value)
    return runs


def _add_shape(
    shape: Shape, image: ImageAnnotation, index: object, source: str, report: ReadReport
) -> None:
    """Clip ``shape`` to its image and add it, or skip it when it cannot be used."""
    shape, outside = clip_shape(shape, image.width, image.height)
    report.clipped += outside
    problem = shape_problem(shape)
    if problem is not None:
        report.skip(source, image.name, shape.type, index, problem)
    else:
        image.shapes.append(shape)
