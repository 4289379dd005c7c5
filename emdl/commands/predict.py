"""The job behind ``emdl predict``: defect statistics of many micrographs from a trained run of
any kind (its :class:`~emdl.train.kinds.base.ModelKind` finds the defects of one image).

Images are predicted one at a time (whole images in tiles, :mod:`emdl.predict.tiled`), so memory
is bounded by one image and its tiles, and each image's rows are written as soon as it is done
(to a temporary file, renamed to its name when all are done). ``out_dir`` gets:

- ``defects.csv``: one row per defect (:data:`emdl.analysis.statistics.DEFECT_COLUMNS`);
- ``summary.csv``: one row per image (:data:`emdl.analysis.statistics.SUMMARY_COLUMNS`);
- ``overlays/<image stem>.png``: the micrograph with defect outlines and ids (a second image
  with the same stem gets ``overlays/<file name>.png``, e.g. ``a.tif.png``, and a third of the
  same file name ``overlays/<file name>-2.png``: :func:`overlay_names`);
- ``diameters.png``: the histogram of equivalent diameters over the set (nm when every image's
  pixel size is known, else pixels), with the truth's over it when labels are given;
- ``annotations.xml``: the predictions as CVAT for images 1.1 (polygons for masks, boxes for
  detections), to upload to CVAT as pre-annotations;
- with labels, ``comparison.csv``: per labeled image and pooled (``image`` "all"), counts and
  diameters against the truth (:func:`emdl.analysis.statistics.compare_image`);
- with ``uncertainty``, ``uncertainty/<overlay name>``: each defect painted green to red by how
  many of the image's eight flips and quarter turns find it
  (:func:`emdl.analysis.figures.uncertainty_pixels`), an ``agreement`` column in
  ``defects.csv`` (the fraction of the views that find the defect,
  :func:`emdl.predict.uncertainty.view_agreement`) and ``uncertainty`` / ``unexplained``
  columns in ``summary.csv`` (the image's uncertainty, and the views' defects matching none);
- with an ensemble of runs (``ensemble``, :func:`load_predictors`), the same files from the
  runs predicting together (:mod:`emdl.predict.ensemble`), and with ``uncertainty`` the
  ``agreement`` the fraction of the runs finding each defect
  (:func:`emdl.predict.ensemble.member_agreement`) instead of the views';
- ``.emdl-predict.json``: the list of the files above, written first, so that a later
  ``predict`` into the same folder with ``overwrite`` removes them (and no other file).

An image that cannot be read is named in the report and the others are still predicted. Every
file is written whole or not at all (:mod:`emdl.io.atomic`); nothing is written into a folder
used before, a folder holding an input, or over an existing file unless ``overwrite``
(:func:`emdl.io.outputs.check_output_folder`).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import keras
import numpy as np

from emdl.analysis.figures import write_histogram, write_overlay, write_uncertainty_map
from emdl.analysis.statistics import (
    COMPARISON_COLUMNS,
    DEFECT_COLUMNS,
    SUMMARY_COLUMNS,
    Defect,
    compare_image,
    compare_sets,
    instance_defects,
    sphere_volume_nm3,
    summarize,
    swelling,
)
from emdl.analysis.truth import truth_defects
from emdl.annotations import ImageAnnotation
from emdl.errors import InputError
from emdl.export.cvat_predictions import instance_shapes, write_predictions
from emdl.io.atomic import atomic_path, open_atomic
from emdl.io.image import SUPPORTED_SUFFIXES, read_micrograph
from emdl.io.labels import read_labels
from emdl.io.outputs import check_output_folder, read_manifest, remove_outputs, write_manifest
from emdl.predict.ensemble import Ensemble, member_agreement
from emdl.predict.instances import Instances
from emdl.predict.uncertainty import view_agreement
from emdl.train.calibration import postprocessing
from emdl.train.config import RunConfig


@dataclass
class PredictionReport:
    """What :func:`predict_images` did: images predicted, defects found (``touching_edge`` of
    them cut by the image edge), their mean equivalent diameter (pixels, and nm when every
    pixel size is known), with a foil thickness and every pixel size known the set's defects
    per m^3 and swelling (all defects over the summed image volumes, as in
    :func:`emdl.analysis.statistics.summarize`), images that failed (``"path: problem"``), and
    with labels the pooled comparison (:func:`emdl.analysis.statistics.compare_sets`) over
    ``compared`` labeled images."""

    out_dir: Path
    images: int = 0
    defects: int = 0
    touching_edge: int = 0
    mean_diameter: float | None = None
    mean_diameter_nm: float | None = None
    density_per_m3: float | None = None
    swelling: float | None = None
    failures: list[str] = field(default_factory=list)
    comparison: dict | None = None
    compared: int = 0

    def summary(self) -> str:
        """One line: images, defects, mean equivalent diameter, with the thickness the volume
        density and swelling, where the results are."""
        size = ""
        if self.mean_diameter is not None:
            size = f", mean diameter {self.mean_diameter:.1f} px"
            if self.mean_diameter_nm is not None:
                size += f" ({self.mean_diameter_nm:.2f} nm)"
        if self.density_per_m3 is not None:
            size += f", {self.density_per_m3:.3g} per m^3"
        if self.swelling is not None:
            size += f", swelling {100 * self.swelling:.3g} %"
        images = f"{self.images} image{'' if self.images == 1 else 's'}"
        return (
            f"{images}, {self.defects} defects ({self.touching_edge} touching the edge){size} "
            f"-> {self.out_dir}"
        )

    def comparison_line(self) -> str:
        """One line on the pooled comparison with the truth ("" without labels)."""
        if self.comparison is None:
            return ""
        c = self.comparison
        images = f"{self.compared} image{'' if self.compared == 1 else 's'}"
        line = (
            f"against the truth on {images}: count error {c['count_error']:+d} "
            f"(predicted {c['count_predicted']}, true {c['count_truth']})"
        )
        if c["mean_diameter_error"] != "":
            line += f", mean diameter error {c['mean_diameter_error']:+.2f} px"
            if c.get("mean_diameter_error_nm", "") != "":
                line += f" ({c['mean_diameter_error_nm']:+.2f} nm)"
        if c["ks_statistic"] != "":
            line += f", KS statistic {c['ks_statistic']:.3f} (p = {c['ks_pvalue']:.3g})"
        return line


def image_paths(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """The image files named by ``inputs``: files as given, and the files of each folder whose
    suffix emdl reads (sub-folders not searched), sorted by name.

    Raises InputError for a path that does not exist and for a folder without images. A named
    file with another suffix is kept, to be reported as unsupported when it is read.
    """
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(
                p for p in item.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
            )
            if not found:
                raise InputError(
                    item, f"no images ({', '.join(SUPPORTED_SUFFIXES)}) in this folder"
                )
            paths += found
        elif item.exists():
            paths.append(item)
        else:
            raise InputError(item, "no such file or folder")
    if not paths:
        raise ValueError("no images given")
    return paths


def load_predictor(run_dir: str | os.PathLike) -> tuple[RunConfig, keras.Model]:
    """:func:`emdl.train.run.load_run`, with any failure an InputError naming the run directory."""
    from emdl.train.run import load_run  # imported here: it loads TensorFlow and keras-cv

    try:
        return load_run(run_dir)
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(run_dir, f"not a usable run directory ({reason})") from None


def split_runs(arguments: Sequence[str | os.PathLike]) -> tuple[list[str], list[str]]:
    """``emdl predict``'s positional arguments as ``(runs, inputs)``: the first is a run; so is
    each one after it that is a run directory (a folder with ``config.json``), up to the first
    that is not, which starts the images (files and folders). An InputError names a run
    directory given after an image, and a lone run with nothing to predict."""
    arguments = [str(a) for a in arguments]
    count = 1
    while count < len(arguments) and (Path(arguments[count]) / "config.json").is_file():
        count += 1
    runs, inputs = arguments[:count], arguments[count:]
    for item in inputs:
        if (Path(item) / "config.json").is_file():
            raise InputError(item, "is a run directory; give the runs before the images")
    if runs and not inputs:
        raise InputError(runs[-1], "is a run directory, and no images follow it")
    return runs, inputs


# Settings of the model section an ensemble's members must share beyond kind and classes: what
# a U-Net's output channels mean (``labels``: with a border class or not; a learned distance
# map or not), and the scale and tile at which detectors and Mask R-CNNs see the micrograph
# (members predict the first run's tiles). A kind's config has only some of them.
SHARED_SETTINGS = ("labels", "distance", "resize", "tile")


def load_predictors(run_dirs: Sequence[str | os.PathLike]) -> tuple[RunConfig, keras.Model]:
    """The first run's config and its model, or for several runs an
    :class:`~emdl.predict.ensemble.Ensemble` of theirs (which predicts with the first run's
    settings). An InputError naming the run that is not usable (:func:`load_predictor`), of
    another kind, with other classes or other :data:`SHARED_SETTINGS` than the first."""
    first, config, model = run_dirs[0], *load_predictor(run_dirs[0])
    if len(run_dirs) == 1:
        return config, model
    models = [model]
    for run_dir in run_dirs[1:]:
        other, member = load_predictor(run_dir)
        if other.model_kind is not config.model_kind:
            raise InputError(
                run_dir,
                f"is a {other.kind} run but {first} is a {config.kind} run; an "
                "ensemble's runs must be of one kind",
            )
        if list(other.classes) != list(config.classes):
            raise InputError(
                run_dir,
                f"predicts the classes {list(other.classes)} but {first} predicts "
                f"{list(config.classes)}; an ensemble's runs must predict the same classes",
            )
        for name in SHARED_SETTINGS:
            mine, theirs = getattr(config.model, name, None), getattr(other.model, name, None)
            if mine != theirs:
                raise InputError(
                    run_dir,
                    f"has model {name} {theirs} but {first} has {mine}; an ensemble's "
                    "runs must agree on it",
                )
        models.append(member)
    iou = getattr(config.model, "iou_threshold", 0.5)
    return config, Ensemble(
        models, pixels=config.model_kind.target == "semantic", iou_threshold=iou
    )


def _truth_index(labels: Sequence[str | os.PathLike]) -> dict[str, tuple[str, ImageAnnotation]]:
    """Labeled images by name and by file name: ``(label file, annotation)``."""
    index: dict[str, tuple[str, ImageAnnotation]] = {}
    for path in labels:
        for image in read_labels(path).images:
            index.setdefault(image.name, (str(path), image))
            index.setdefault(Path(image.name).name, (str(path), image))
    return index


def _check_pixel_size(pixel_size_nm: float | None) -> None:
    if pixel_size_nm is not None and not (math.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise ValueError(f"the pixel size must be a positive number of nm, got {pixel_size_nm}")


def _check_thickness(thickness_nm: float | None) -> None:
    if thickness_nm is not None and not (math.isfinite(thickness_nm) and thickness_nm > 0):
        raise ValueError(f"the thickness must be a positive number of nm, got {thickness_nm}")


class _Progress:
    """Progress on ``stream``: keras' ``Progbar`` on a terminal (it writes to stdout, so it is
    pointed at the stream), else one line per image, ``[3/10] name``, for logs."""

    def __init__(self, stream: TextIO | None, total: int) -> None:
        self.stream, self.total = stream, total
        terminal = stream is not None and stream.isatty()
        self.bar = keras.utils.Progbar(total, unit_name="image") if terminal else None

    def show(self, done: int, name: str) -> None:
        """``done`` images are finished; ``name`` is the next ("" at the end)."""
        if self.stream is None:
            return
        if self.bar is None:
            if name:
                self.stream.write(f"[{done + 1}/{self.total}] {name}\n")
        else:
            with contextlib.redirect_stdout(self.stream):
                self.bar.update(done, finalize=done == self.total)
        self.stream.flush()


MANIFEST = ".emdl-predict.json"


def _unique_name(path: Path, seen: set[str]) -> str:
    # CVAT matches shapes to images by name; a second image of the same name keeps its path.
    name = path.name if path.name not in seen else str(path)
    seen.add(name)
    return name


def overlay_names(paths: Sequence[Path]) -> list[str]:
    """One overlay file name per image, unique: ``<stem>.png``; for a later image of the same
    stem ``<file name>.png`` (``a.png`` then ``a.tif``: ``a.png``, ``a.tif.png``); for a later
    one of the same file name too, ``<file name>-2.png``, ``-3``, ... Compared without case, as
    some file systems do."""
    taken: set[str] = set()
    names = []
    for path in paths:
        candidates = [f"{path.stem}.png", f"{path.name}.png"]
        name = next((c for c in candidates if c.lower() not in taken), None)
        number = 2
        while name is None or name.lower() in taken:
            name, number = f"{path.name}-{number}.png", number + 1
        taken.add(name.lower())
        names.append(name)
    return names


def _prepare_output(
    out_dir: Path, targets: list[Path], inputs: Sequence[str | os.PathLike], overwrite: bool
) -> None:
    """Refuse a used ``out_dir`` unless ``overwrite``, then clear what an earlier predict wrote
    there and list ``targets`` in its manifest."""
    manifest = out_dir / MANIFEST
    previous = read_manifest(manifest)
    if manifest.exists() and not overwrite:
        raise InputError(
            out_dir,
            "holds the outputs of an earlier emdl predict; give --overwrite to replace them, "
            "or another --out",
        )
    check_output_folder(out_dir, [*targets, manifest], inputs=inputs, overwrite=overwrite)
    remove_outputs(out_dir, previous)
    (out_dir / "overlays").mkdir(parents=True, exist_ok=True)
    write_manifest(manifest, targets)


def predict_images(
    run_dir: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    pixel_size_nm: float | None = None,
    thickness_nm: float | None = None,
    threshold: float | None = None,
    min_area: float | None = None,
    labels: Sequence[str | os.PathLike] = (),
    progress: TextIO | None = None,
    tta: bool = False,
    uncertainty: bool = False,
    overwrite: bool = False,
    ensemble: Sequence[str | os.PathLike] = (),
) -> PredictionReport:
    """Predict the defects of every image in ``inputs`` (files and folders, see
    :func:`image_paths`) with the run in ``run_dir`` and write the module's files to
    ``out_dir``.

    ``ensemble``: more runs to predict with together with ``run_dir``
    (:mod:`emdl.predict.ensemble`: U-Net probabilities averaged, detections merged across the
    runs; checked by :func:`load_predictors`), with ``run_dir``'s tiling, calibration and
    threshold; with ``uncertainty``, the agreement is then that of the runs (the fraction of
    them that find each defect of the ensemble) instead of the views'.

    ``pixel_size_nm`` (nm per pixel), when given, replaces the pixel size the files record.
    ``thickness_nm``: the foil thickness in nm, for the defects per m^3 and the swelling of
    ``summary.csv`` (:func:`emdl.analysis.statistics.summarize`; empty without it).
    ``threshold``: a U-Net's foreground probability or a detector's score, and ``min_area``:
    the smallest defect kept, square pixels; by default the run's ``calibration.json``
    (:func:`emdl.train.calibration.postprocessing`). ``uncertainty``: also predict each image
    in its eight views and write how much they agree (see the module; eight times the time).
    ``labels``:
    CVAT XML or COCO JSON files whose images (matched by name or file name) are compared with
    the predictions. ``progress``: a stream for a progress bar (None: quiet). ``overwrite``:
    predict into an ``out_dir`` used before (the files an earlier predict listed in its
    manifest are removed first, no others) or holding an input, replacing files in the way.

    Raises InputError / ValueError, before predicting anything, for a bad run directory, pixel
    size, thickness, threshold or input path, an empty folder, or an ``out_dir`` refused (see
    the module docstring); images that fail are listed in the report's ``failures`` instead.
    """
    _check_pixel_size(pixel_size_nm)
    _check_thickness(thickness_nm)
    if min_area is not None and not (math.isfinite(min_area) and min_area >= 0):
        raise ValueError(f"the minimum area must be >= 0 square pixels, got {min_area}")
    if threshold is not None and not 0 <= threshold < 1:
        raise ValueError(f"the threshold must be in [0, 1), got {threshold}")
    paths = image_paths(inputs)
    truth_index = _truth_index(labels)
    config, model = load_predictors([run_dir, *ensemble])
    if tta:
        config = config.with_model(tta=True)
    default_t, default_area = postprocessing(run_dir, config)
    threshold = default_t if threshold is None else threshold
    min_area = default_area if min_area is None else min_area
    classes = list(config.classes) or ["defect"]
    out_dir = Path(out_dir)
    seen: set[str] = set()
    names = [_unique_name(path, seen) for path in paths]
    overlays = [out_dir / "overlays" / name for name in overlay_names(paths)]
    targets = [out_dir / name for name in ("defects.csv", "summary.csv")] + overlays
    targets += [out_dir / "annotations.xml", out_dir / "diameters.png"]
    targets += [out_dir / "comparison.csv"] if labels else []
    maps = [out_dir / "uncertainty" / overlay.name for overlay in overlays]
    targets += maps if uncertainty else []
    _prepare_output(out_dir, targets, [run_dir, *ensemble, *inputs, *paths, *labels], overwrite)

    report = PredictionReport(out_dir)
    predicted_images: list[ImageAnnotation] = []
    diameters: list[float] = []  # equivalent diameters in pixels of defects not cut by the edge
    truth_diameters: list[float] = []
    scales: list[float | None] = []  # pixel size of each diameter's image, nm
    truth_scales: list[float | None] = []
    all_predicted: list[Defect] = []
    all_truth: list[Defect] = []
    all_predicted_scales: list[float | None] = []  # pixel size of each defect's image, nm
    all_truth_scales: list[float | None] = []
    # The set's imaged volume and defect volume (spheres), nm^3; None once a pixel size is unknown.
    volumes: list[float] | None = [0.0, 0.0] if thickness_nm is not None else None
    bar = _Progress(progress, len(paths))
    with (
        open_atomic(out_dir / "defects.csv", "w", newline="") as defects_file,
        open_atomic(out_dir / "summary.csv", "w", newline="") as summary_file,
    ):
        agreement_columns = ("agreement",) if uncertainty else ()
        image_columns = ("uncertainty", "unexplained") if uncertainty else ()
        defects_csv = csv.DictWriter(defects_file, DEFECT_COLUMNS + agreement_columns)
        summary_csv = csv.DictWriter(summary_file, SUMMARY_COLUMNS + image_columns)
        defects_csv.writeheader()
        summary_csv.writeheader()
        comparison_rows = []
        for done, (path, name, overlay, map_path) in enumerate(
            zip(paths, names, overlays, maps, strict=True), 1
        ):
            bar.show(done - 1, path.name)
            try:
                micrograph = read_micrograph(path)
                height, width = micrograph.image.shape
                truth = truth_index.get(name) or truth_index.get(path.name)
                if truth is not None and (truth[1].width, truth[1].height) != (width, height):
                    raise InputError(
                        truth[0],
                        f"image '{truth[1].name}' is {truth[1].width} x {truth[1].height} in the "
                        f"labels but {width} x {height} in {path}",
                    )
            except (InputError, OSError) as exc:
                report.failures.append(
                    str(exc) if isinstance(exc, InputError) else f"{path}: {exc}"
                )
                continue
            size_nm = pixel_size_nm if pixel_size_nm is not None else micrograph.pixel_size_nm

            def find(image: np.ndarray, model: keras.Model = model) -> Instances:
                return config.model_kind.instances(
                    model, image, config, threshold=threshold, min_area=min_area
                )

            agreed = None
            if uncertainty and ensemble:
                own = [functools.partial(find, model=member) for member in model.members]
                agreed = member_agreement(find, own, micrograph.image)
            elif uncertainty:
                agreed = view_agreement(find, micrograph.image)
            instances = find(micrograph.image) if agreed is None else agreed.instances
            defects = instance_defects(instances, classes)
            rows = [defect.row(name, size_nm) for defect in defects]
            summary = summarize(name, defects, width, height, size_nm, thickness_nm=thickness_nm)
            if agreed is not None:
                # Defect ids are 1..N in the order of the instances (instance_defects).
                for row, share in zip(rows, agreed.agreement, strict=True):
                    row["agreement"] = float(share)
                summary["uncertainty"] = agreed.image_uncertainty
                summary["unexplained"] = agreed.unexplained
                (out_dir / "uncertainty").mkdir(exist_ok=True)
                write_uncertainty_map(
                    map_path, micrograph.image, instances, agreed.object_uncertainty
                )
            defects_csv.writerows(rows)
            summary_csv.writerow(summary)
            if volumes is not None and size_nm is None:
                volumes = None
            elif volumes is not None:
                volumes[0] += width * height * size_nm**2 * thickness_nm
                volumes[1] += sphere_volume_nm3(defects, size_nm)
            predicted_images.append(
                ImageAnnotation(name, width, height, instance_shapes(instances, classes))
            )
            with atomic_path(overlay) as temporary:
                write_overlay(temporary, micrograph.image, instances, defects)
            whole = [d.equivalent_diameter for d in defects if not d.touches_edge]
            diameters += whole
            scales += [size_nm] * len(whole)
            if truth is not None:
                found = truth_defects(truth[1], as_boxes=instances.labels is None)
                comparison_rows.append(compare_image(name, defects, found, size_nm))
                all_predicted += defects
                all_truth += found
                all_predicted_scales += [size_nm] * len(defects)
                all_truth_scales += [size_nm] * len(found)
                true_whole = [d.equivalent_diameter for d in found if not d.touches_edge]
                truth_diameters += true_whole
                truth_scales += [size_nm] * len(true_whole)
            report.images += 1
            report.defects += len(defects)
            report.touching_edge += int(instances.touches_edge.sum())
        bar.show(len(paths), "")

    write_predictions(predicted_images, classes, out_dir / "annotations.xml")
    in_nm = None not in scales + truth_scales
    if diameters:
        report.mean_diameter = float(np.mean(diameters))
        if in_nm:
            report.mean_diameter_nm = float(np.mean(np.multiply(diameters, scales)))
    if volumes is not None and report.images:
        report.density_per_m3 = report.defects / (volumes[0] / 1e27)
        found_swelling = swelling(volumes[1], volumes[0])
        report.swelling = None if found_swelling == "" else found_swelling
    if comparison_rows:
        report.compared = len(comparison_rows)
        report.comparison = compare_sets(
            all_predicted, all_truth, (all_predicted_scales, all_truth_scales)
        )
        with open_atomic(out_dir / "comparison.csv", "w", newline="") as file:
            writer = csv.DictWriter(file, COMPARISON_COLUMNS)
            writer.writeheader()
            writer.writerows(comparison_rows)
            writer.writerow({key: report.comparison[key] for key in COMPARISON_COLUMNS})
    truth = np.multiply(truth_diameters, truth_scales) if in_nm else truth_diameters
    with atomic_path(out_dir / "diameters.png") as temporary:
        write_histogram(
            temporary,
            np.multiply(diameters, scales) if in_nm else diameters,
            unit="nm" if in_nm else "pixels",
            truth=list(truth) if comparison_rows else None,
        )
    return report
