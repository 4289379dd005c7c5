"""CVAT for images 1.1 XML: read every shape type CVAT exports for images, and write them back.

Reading uses xmltodict on pyexpat, with entity declarations refused (so an entity-expansion
"billion laughs" file is an error, not a memory blow-up) and the line of every element recorded,
so errors can say where they are. It streams: each ``<image>`` is read into shapes as soon as it
ends and its XML dropped, so a large file takes the memory of its shapes, not of its XML tree
(UTF-8 files; UTF-16 and UTF-32 ones are decoded whole first). A file may be a job, task or
project export, hold many images of different sizes, and name images with sub-folders.
``<image>`` elements are read wherever they are (CVAT puts them after ``<meta>``; some tools nest
them in ``<job>`` or ``<task>`` elements; nested ones are kept until the file ends). Files in
UTF-16 or UTF-32 (with or without a byte order mark) are read as well as UTF-8 ones. An image or
mask may declare at most ``max_pixels`` pixels (:data:`emdl.io.checks.MAX_PIXELS`), checked before
anything of its size is allocated.
"""

from __future__ import annotations

import math
import os
import pyexpat
from pyexpat import ErrorString, ExpatError
from typing import Any
from xml.sax.saxutils import XMLGenerator

import xmltodict

from emdl.annotations import (
    SHAPE_TYPES,
    Annotations,
    Box,
    Ellipse,
    ImageAnnotation,
    Label,
    Mask,
    Polygon,
    Polyline,
    ReadReport,
    Shape,
    Tag,
)
from emdl.errors import InputError
from emdl.io.atomic import open_atomic
from emdl.io.checks import (
    clip_shape,
    decode_text,
    default_pixel_limit,
    label_problem,
    pixels_problem,
    shape_problem,
    text_encoding,
)

_POSITION = "@emdl-position"  # "line:column" of an element's start tag, added while parsing
_POSITIONED = {"label"}  # elements that get a position even without attributes
_SHAPE_GEOMETRY = {
    "box": ("xtl", "ytl", "xbr", "ybr"),
    "ellipse": ("cx", "cy", "rx", "ry"),
    "mask": ("left", "top", "width", "height"),
}


class _PositionParser:
    """Wraps a pyexpat parser so that every element carrying attributes (and every ``<label>``)
    also gets its position, and ``owner.root`` the name of the root element."""

    def __init__(self, parser: Any, owner: _PositionExpat) -> None:
        object.__setattr__(self, "_parser", parser)
        object.__setattr__(self, "_owner", owner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "StartElementHandler":
            parser, owner = self._parser, self._owner

            def start(tag: str, attributes: list[str]) -> None:
                if owner.root is None:
                    owner.root = tag
                if attributes or tag in _POSITIONED:
                    position = f"{parser.CurrentLineNumber}:{parser.CurrentColumnNumber}"
                    attributes = [*attributes, _POSITION[1:], position]
                value(tag, attributes)

            setattr(self._parser, name, start)
        else:
            setattr(self._parser, name, value)


class _PositionExpat:
    """Stands in for the pyexpat module in ``xmltodict.parse`` and keeps the parser it made."""

    parser: Any = None
    root: str | None = None

    def ParserCreate(self, *args: Any) -> _PositionParser:  # noqa: N802 (pyexpat names it so)
        self.parser = pyexpat.ParserCreate(*args)
        return _PositionParser(self.parser, self)


def _as_list(node: Any) -> list:
    if node is None:
        return []
    return node if isinstance(node, list) else [node]


def _text(node: Any) -> str:
    if isinstance(node, dict):
        node = node.get("#text")
    return "" if node is None else str(node)


def _line(node: dict) -> int | None:
    position = node.get(_POSITION)
    return int(position.split(":")[0]) if position else None


def _position(node: dict) -> tuple[int, int]:
    line, column = node[_POSITION].split(":")
    return int(line), int(column)


def _parse_xml(path: str, source: Any, encoding: str | None, on_item: Any) -> None:
    """Parse ``source`` (bytes or a binary file, read in chunks), handing each child of the root
    element to ``on_item(root name, tag, node)`` when it ends; nothing else is kept, so memory
    is bounded by the largest child (an ``<image>`` with its shapes), not the file."""
    expat = _PositionExpat()

    def item(path_: list, node: Any) -> bool:
        on_item(expat.root, path_[-1][0], node)
        return True

    try:
        xmltodict.parse(
            source,
            encoding,
            expat=expat,
            disable_entities=True,
            item_depth=2,
            item_callback=item,
        )
    except InputError:
        raise
    except ExpatError as exc:
        raise InputError(path, f"malformed XML: {ErrorString(exc.code)}", exc.lineno) from exc
    except ValueError as exc:  # raised by xmltodict when the DTD declares an entity
        line = expat.parser.CurrentLineNumber if expat.parser is not None else None
        raise InputError(
            path, "XML entity declarations are refused (entity expansion)", line
        ) from exc
    if expat.root != "annotations":
        raise InputError(path, f"not a CVAT for images export: root element is <{expat.root}>")


def _meta_labels(path: str, meta: Any) -> list[Label]:
    """Labels from ``<meta>`` of a job, task or project export, in the file's order."""
    if not isinstance(meta, dict):
        raise InputError(path, "not a CVAT for images export: no <meta>")
    for level in ("job", "task", "project"):
        owner = meta.get(level)
        if isinstance(owner, dict) and isinstance(owner.get("labels"), dict):
            labels = []
            for item in _as_list(owner["labels"].get("label")):
                if not isinstance(item, dict) or not set(item) - {_POSITION, "#text"}:
                    continue  # an empty <label/> or one with text only
                label = Label(
                    _text(item.get("name")), _text(item.get("color")), _text(item.get("type"))
                )
                problem = label_problem(label.name)
                if problem is not None:
                    raise InputError(path, problem, _line(item))
                labels.append(label)
            return labels
    raise InputError(path, "not a CVAT for images export: <meta> declares no labels")


class _ImageReader:
    """Turns one ``<image>`` element into an :class:`ImageAnnotation`, raising or skipping."""

    def __init__(self, path: str, labels: set[str], report: ReadReport, max_pixels: int) -> None:
        self.path, self.labels, self.report = path, labels, report
        self.max_pixels = max_pixels

    def error(self, node: dict, problem: str) -> InputError:
        return InputError(self.path, problem, _line(node))

    def number(self, node: dict, key: str, what: str, number_type: type = float) -> Any:
        raw = node.get("@" + key)
        if raw is None:
            raise self.error(node, f"{what} has no '{key}'")
        try:
            value = float(raw)
        except ValueError:
            raise self.error(node, f"{what} has a non-numeric {key}='{raw}'") from None
        if not math.isfinite(value) or (number_type is int and not value.is_integer()):
            raise self.error(node, f"{what} has an invalid {key}='{raw}'")
        return int(value) if number_type is int else value

    def points(self, node: dict, what: str) -> tuple[tuple[float, float], ...]:
        raw = node.get("@points")
        if raw is None:
            raise self.error(node, f"{what} has no 'points'")
        points = []
        for pair in filter(None, raw.strip().split(";")):
            try:
                x, y = (float(v) for v in pair.split(","))
            except ValueError:
                raise self.error(node, f"{what} has a malformed point '{pair}'") from None
            if not (math.isfinite(x) and math.isfinite(y)):
                raise self.error(node, f"{what} has a malformed point '{pair}'")
            points.append((x, y))
        return tuple(points)

    def shape(self, shape_type: str, node: dict, what: str) -> Shape:
        common: dict[str, Any] = {
            "label": node["@label"],
            "occluded": node.get("@occluded", "0") == "1",
            "z_order": int(self.number(node, "z_order", what)) if "@z_order" in node else 0,
            "source": node.get("@source", "manual"),
            "attributes": tuple(
                (item.get("@name", ""), _text(item))
                for item in _as_list(node.get("attribute"))
                if isinstance(item, dict)
            ),
        }
        if "@group_id" in node:
            common["group_id"] = self.number(node, "group_id", what, int)
        if shape_type in ("polygon", "polyline", "points"):
            return SHAPE_TYPES[shape_type](points=self.points(node, what), **common)
        geometry = {key: self.number(node, key, what) for key in _SHAPE_GEOMETRY[shape_type]}
        if shape_type in ("box", "ellipse"):
            rotation = self.number(node, "rotation", what) if "@rotation" in node else 0.0
            return SHAPE_TYPES[shape_type](**geometry, rotation=rotation, **common)
        return self.mask(node, what, common)

    def mask(self, node: dict, what: str, common: dict[str, Any]) -> Mask:
        box = {key: self.number(node, key, what, int) for key in _SHAPE_GEOMETRY["mask"]}
        width, height = box["width"], box["height"]
        if width < 0 or height < 0:
            raise self.error(node, f"{what} has size {width} x {height}")
        problem = pixels_problem(what, width, height, self.max_pixels)
        if problem is not None:
            raise self.error(node, problem)
        raw = node.get("@rle")
        if raw is None:
            raise self.error(node, f"{what} has no 'rle'")
        try:
            rle = tuple(int(v) for v in raw.replace(" ", "").split(",") if v)
        except ValueError:
            raise self.error(node, f"{what} has a non-numeric rle") from None
        # Mask.to_array allocates what the runs cover: they must cover the checked rectangle.
        if any(v < 0 for v in rle) or sum(rle) != width * height:
            raise self.error(
                node,
                f"{what} rle covers {sum(rle)} pixels, its {width} x {height} rectangle has "
                + str(width * height),
            )
        return Mask(**box, rle=rle, **common)

    def read(self, node: dict) -> ImageAnnotation:
        name = node.get("@name")
        if not name:
            raise self.error(node, "<image> has no 'name'")
        what = f"image '{name}'"
        width = self.number(node, "width", what, int)
        height = self.number(node, "height", what, int)
        if width <= 0 or height <= 0:
            raise self.error(node, f"{what} has size {width} x {height}")
        problem = pixels_problem(what, width, height, self.max_pixels)
        if problem is not None:
            raise self.error(node, problem)
        image_id = self.number(node, "id", what, int) if "@id" in node else None
        image = ImageAnnotation(name, width, height, id=image_id, subset=node.get("@subset"))

        children = [
            (key, child)
            for key, value in node.items()
            if not key.startswith(("@", "#"))
            for child in _as_list(value)
        ]
        children.sort(key=lambda item: _position(item[1]) if isinstance(item[1], dict) else (0, 0))
        placed: list[tuple[int, int, Shape]] = []
        for index, (shape_type, child) in enumerate(children):
            if not isinstance(child, dict) or _POSITION not in child:
                child = {}
            if shape_type == "tag":
                tag = self.tag(child, name, index)
                if tag is not None:
                    image.tags.append(tag)
                continue
            if shape_type not in SHAPE_TYPES:
                self.report.skip(self.path, name, shape_type, index, "unknown shape type")
                continue
            label = child.get("@label")
            if label is None:
                raise self.error(child, f"{shape_type} #{index} in {what} has no 'label'")
            if label not in self.labels:
                self.report.skip(self.path, name, shape_type, index, "label not declared in <meta>")
                continue
            shape = self.shape(shape_type, child, f"{shape_type} #{index} in {what}")
            shape, outside = clip_shape(shape, width, height)
            self.report.clipped += outside
            problem = shape_problem(shape)
            if problem is not None:
                self.report.skip(self.path, name, shape_type, index, problem)
                continue
            placed.append((shape.z_order, index, shape))
        image.shapes = [shape for _, _, shape in sorted(placed, key=lambda item: item[:2])]
        return image

    def tag(self, node: dict, image: str, index: int) -> Tag | None:
        label = node.get("@label")
        if label not in self.labels:
            self.report.skip(self.path, image, "tag", index, "label not declared in <meta>")
            return None
        attributes = tuple(
            (item.get("@name", ""), _text(item)) for item in _as_list(node.get("attribute"))
        )
        return Tag(label, node.get("@source", "manual"), attributes)


def _image_nodes(path: str, document: dict) -> list[dict]:
    """The ``<image>`` elements of ``document`` wherever they are, in file order. Looks through
    every element but images (whose children are shapes); a ``<track>`` anywhere is refused."""
    images: list[dict] = []
    stack = [document]
    while stack:  # not recursive: deeply nested XML is no RecursionError
        node = stack.pop()
        for key, value in node.items():
            if key.startswith(("@", "#")):
                continue
            for child in _as_list(value):
                if key == "image":
                    if not isinstance(child, dict) or _POSITION not in child:
                        raise InputError(path, "an <image> element has no attributes")
                    images.append(child)
                elif key == "track":
                    raise InputError(
                        path,
                        "a CVAT for video export (it has <track>); export as CVAT for images 1.1",
                        _line(child) if isinstance(child, dict) else None,
                    )
                elif isinstance(child, dict):
                    stack.append(child)
    return sorted(images, key=_position)


def read_cvat(path: str | os.PathLike, *, max_pixels: int | None = None) -> Annotations:
    """Read a "CVAT for images 1.1" XML export.

    Returns the labels from ``<meta>`` in the file's order and the images in the file's order, each
    with its shapes sorted by ``z_order`` (file order within one ``z_order``), the order CVAT draws
    them. Coordinates outside an image are clipped (see :func:`emdl.io.checks.clip_shape`) and
    counted in ``report.clipped``; unusable shapes are skipped with a :class:`LabelWarning` and
    counted in ``report.skipped``.

    An image or mask declaring more than ``max_pixels`` pixels (width x height) is an error, found
    before anything of that size is allocated.

    Raises:
        InputError: the file is missing, empty, not well-formed XML (or not valid UTF-16/UTF-32
            when it is such), declares entities, is not a CVAT for images export, declares a label
            name with a control character or an image or mask of more than ``max_pixels`` pixels,
            or has a shape missing a required or numeric attribute. The message names the file
            and, where known, the line.
    """
    max_pixels = default_pixel_limit() if max_pixels is None else max_pixels
    path = os.fspath(path)
    try:
        file = open(path, "rb")  # closed below, after streaming from it
    except OSError as exc:
        raise InputError(path, exc.strerror or "cannot be read") from exc
    with file:
        source, encoding = _xml_source(path, file)
        return _CvatDocument(path, max_pixels).read(source, encoding)


def _xml_source(path: str, file: Any) -> tuple[Any, str | None]:
    """What expat reads and its encoding: the file itself, streamed, when it is UTF-8 without a
    byte order mark (encoding None: expat follows the XML declaration); else its text decoded
    here and encoded as UTF-8, as expat reads UTF-16 only when the declaration says so (editors
    saving as UTF-16 leave encoding="utf-8")."""
    head = file.read(4096)
    codec = text_encoding(head)
    if codec != "utf-8":
        data = decode_text(path, head + file.read(), codec).encode("utf-8")
        if not data.strip():
            raise InputError(path, "empty file")
        return data, "utf-8"
    chunk = head
    while not chunk.strip():  # only white space so far: empty, or read on
        if not chunk:
            raise InputError(path, "empty file")
        chunk = file.read(1 << 16)
    file.seek(0)
    return file, None


class _CvatDocument:
    """The children of ``<annotations>`` as the parser ends each: ``<meta>``'s labels, each
    ``<image>`` read at once (kept until ``<meta>`` when it comes first), anything else kept to
    look through for nested images when the file ends."""

    def __init__(self, path: str, max_pixels: int) -> None:
        self.path, self.max_pixels = path, max_pixels
        self.reader: _ImageReader | None = None
        self.labels: list[Label] | None = None
        self.report = ReadReport()
        self.read_images: list[tuple[tuple[int, int], dict, ImageAnnotation]] = []
        self.waiting: list[dict] = []  # images before <meta>
        self.kept: dict[str, Any] = {}

    def on_item(self, root: str | None, tag: str, node: Any) -> None:
        if root != "annotations":
            raise InputError(self.path, f"not a CVAT for images export: root element is <{root}>")
        if tag == "image":
            if not isinstance(node, dict) or _POSITION not in node:
                raise InputError(self.path, "an <image> element has no attributes")
            if self.reader is None:
                self.waiting.append(node)
            else:
                self.add(node)
            return
        if tag == "meta" and self.labels is None:
            self.labels = _meta_labels(self.path, node)
            names = {label.name for label in self.labels}
            self.reader = _ImageReader(self.path, names, self.report, self.max_pixels)
            for waiting in self.waiting:
                self.add(waiting)
            self.waiting = []
        if tag in self.kept:
            self.kept[tag] = [*_as_list(self.kept[tag]), node]
        else:
            self.kept[tag] = node

    def add(self, node: dict) -> None:
        image = self.reader.read(node)
        # Only the position and the line stay of the node: its shapes are in the image now.
        self.read_images.append((_position(node), {_POSITION: node[_POSITION]}, image))

    def read(self, source: Any, encoding: str | None) -> Annotations:
        _parse_xml(self.path, source, encoding, self.on_item)
        nested = _image_nodes(self.path, self.kept)
        if self.labels is None:
            _meta_labels(self.path, self.kept.get("meta"))  # raises: no <meta>
        for node in nested:
            self.add(node)
        images: list[ImageAnnotation] = []
        seen: set[str] = set()
        for _, node, image in sorted(self.read_images, key=lambda item: item[0]):
            if image.name in seen:
                raise InputError(self.path, f"image '{image.name}' appears twice", _line(node))
            seen.add(image.name)
            images.append(image)
        return Annotations(self.labels, images, source=self.path, report=self.report)


def _number(value: float) -> str:
    """CVAT's two decimals when they are exact, else the shortest exact form."""
    short = f"{value:.2f}"
    return short if float(short) == value else repr(float(value))


def _shape_attributes(shape: Shape) -> dict[str, str]:
    attributes = {
        "label": shape.label,
        "source": shape.source,
        "occluded": "1" if shape.occluded else "0",
    }
    if isinstance(shape, (Polygon, Polyline)) or shape.type == "points":
        attributes["points"] = ";".join(f"{_number(x)},{_number(y)}" for x, y in shape.points)
    elif isinstance(shape, (Box, Ellipse)):
        for key in _SHAPE_GEOMETRY[shape.type]:
            attributes[key] = _number(getattr(shape, key))
        if shape.rotation:
            attributes["rotation"] = _number(shape.rotation)
    elif isinstance(shape, Mask):
        attributes["rle"] = ", ".join(map(str, shape.rle))
        for key in _SHAPE_GEOMETRY["mask"]:
            attributes[key] = str(getattr(shape, key))
    attributes["z_order"] = str(shape.z_order)
    if shape.group_id is not None:
        attributes["group_id"] = str(shape.group_id)
    return attributes


def write_cvat(annotations: Annotations, path: str | os.PathLike, *, name: str = "emdl") -> None:
    """Write ``annotations`` as a "CVAT for images 1.1" task export that CVAT can upload, e.g. as
    pre-annotations from a model. :func:`read_cvat` of the written file gives back equal labels,
    images and shapes. ``name`` is the task name written to ``<meta>``. The file is written
    whole or not at all (:mod:`emdl.io.atomic`).
    """
    with open_atomic(path, "w", encoding="utf-8") as file:
        xml = XMLGenerator(file, encoding="utf-8", short_empty_elements=True)
        depth = 0

        def open_(tag: str, attributes: dict[str, str] | None = None, text: str | None = None):
            nonlocal depth
            if depth:
                xml.ignorableWhitespace("\n" + "  " * depth)
            xml.startElement(tag, attributes or {})
            if text is not None:
                xml.characters(text)
                xml.endElement(tag)
            else:
                depth += 1

        def close(tag: str) -> None:
            nonlocal depth
            depth -= 1
            xml.ignorableWhitespace("\n" + "  " * depth)
            xml.endElement(tag)

        def attribute_elements(pairs: tuple[tuple[str, str], ...]) -> None:
            for key, value in pairs:
                open_("attribute", {"name": key}, value)

        xml.startDocument()
        open_("annotations")
        open_("version", text="1.1")
        open_("meta")
        open_("task")
        open_("name", text=name)
        open_("size", text=str(len(annotations.images)))
        open_("labels")
        for label in annotations.labels:
            open_("label")
            open_("name", text=label.name)
            open_("color", text=label.color)
            open_("type", text=label.type)
            open_("attributes", text="")
            close("label")
        close("labels")
        close("task")
        close("meta")
        for index, image in enumerate(annotations.images):
            attributes = {
                "id": str(image.id if image.id is not None else index),
                "name": image.name,
                "width": str(image.width),
                "height": str(image.height),
            }
            if image.subset is not None:
                attributes["subset"] = image.subset
            open_("image", attributes)
            for tag in image.tags:
                open_("tag", {"label": tag.label, "source": tag.source})
                attribute_elements(tag.attributes)
                close("tag")
            for shape in image.shapes:
                open_(shape.type, _shape_attributes(shape))
                attribute_elements(shape.attributes)
                close(shape.type)
            close("image")
        close("annotations")
        xml.endDocument()
        file.write("\n")
