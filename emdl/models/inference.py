"""The settings of tiled inference that the detector and Mask R-CNN share: how micrographs are
resized and cut into tiles, and the non-max suppression that decodes each tile."""

from __future__ import annotations

from dataclasses import dataclass

from emdl.data.resize import Resize


@dataclass(frozen=True)
class TiledInference:
    """Micrographs are resized by ``scale`` or so that their longer side is ``longest_side``
    pixels (objects keep the pixel size they were trained at), and predicted in ``tile`` x
    ``tile`` tiles (resized pixels) overlapping by ``overlap``. ``confidence_threshold``,
    ``iou_threshold`` and ``max_detections`` (per tile) configure the non-max suppression that
    decodes predictions. ``tta``: each tile is also predicted in its seven other flips and
    quarter turns and the eight views' detections merged (:func:`emdl.predict.tta.tta_detections`).

    Subclasses add their own fields and extend :meth:`checks`; a failed check is a ValueError
    ``"model: <problem>"``.
    """

    scale: float = 1.0
    longest_side: int | None = None
    tile: int = 640
    overlap: int = 128
    confidence_threshold: float = 0.05
    iou_threshold: float = 0.6
    max_detections: int = 300
    tta: bool = False

    multiple = 32  # the coarsest stride: input sizes must divide by it

    def checks(self) -> list[tuple[bool, str]]:
        """``(ok, problem)`` pairs for every setting."""
        return [
            (self.tile > 0 and self.tile % self.multiple == 0, "tile must divide by 32"),
            (0 <= self.overlap < self.tile, f"overlap must be in [0, tile), got {self.overlap}"),
            (0 <= self.confidence_threshold < 1, "confidence_threshold must be in [0, 1)"),
            (0 < self.iou_threshold <= 1, "iou_threshold must be in (0, 1]"),
            (self.max_detections >= 1, "max_detections must be at least 1"),
        ]

    def __post_init__(self) -> None:
        for ok, message in self.checks():
            if not ok:
                raise ValueError(f"model: {message}")
        self.resize  # noqa: B018 -- refuses a bad scale or longest_side now

    @property
    def resize(self) -> Resize:
        """How micrographs are resized before the model sees them."""
        return Resize(self.scale, self.longest_side)

    def tiling(self) -> dict:
        """The keyword arguments of tiled prediction (:func:`emdl.predict.detect_image`,
        :func:`emdl.predict.segment_instances`): ``tile``, ``overlap``, ``resize`` and the
        merging NMS's ``iou_threshold``."""
        return {
            "tile": self.tile,
            "overlap": self.overlap,
            "resize": self.resize,
            "iou_threshold": self.iou_threshold,
        }
