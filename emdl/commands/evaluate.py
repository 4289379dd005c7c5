"""The job behind ``emdl evaluate``: a finished run scored on labeled images."""

from __future__ import annotations

import os
from collections.abc import Sequence

from emdl.commands.predict import load_predictor
from emdl.data import load_labeled_images
from emdl.errors import InputError
from emdl.train.config import RunConfig


def evaluate_run(
    run_dir: str | os.PathLike,
    labels: Sequence[str | os.PathLike],
    images_dir: str | os.PathLike,
    *,
    missing: str = "error",
    tta: bool = False,
    reliability: bool = False,
) -> tuple[RunConfig, dict]:
    """The run's config and the scores of its model on labeled images (classes matched by name
    to the run's), whole images predicted in tiles (with test-time augmentation when ``tta``
    or the run's config says so); ``evaluated_images`` counts them. The keys are its kind's
    (:meth:`~emdl.train.kinds.base.ModelKind.score`). With ``reliability``, ``"reliability"``
    holds :func:`emdl.metrics.reliability.reliability_table` of the run's defects (its
    calibrated post-processing; eight predictions per image)."""
    config, model = load_predictor(run_dir)  # one line naming the folder when it is no run
    if tta:
        config = config.with_model(tta=True)
    records, classes = load_labeled_images(labels, images_dir, missing=missing)
    if not records:
        raise InputError(
            images_dir, "none of the labeled images is in this folder: nothing to score"
        )
    unknown = [name for name in classes if name not in config.classes]
    if unknown:
        raise ValueError(f"labels {unknown} are not among the run's classes {list(config.classes)}")
    metrics = config.model_kind.evaluate(model, records, list(config.classes), config)
    metrics["evaluated_images"] = len(records)
    if reliability:
        from emdl.metrics.reliability import labeled_reliability
        from emdl.train.calibration import postprocessing

        threshold, min_area = postprocessing(run_dir, config)

        def predict(image):
            kind = config.model_kind
            return kind.instances(model, image, config, threshold=threshold, min_area=min_area)

        metrics["reliability"] = labeled_reliability(predict, records, list(config.classes))
    return config, metrics
