"""A U-Net for semantic segmentation of micrographs, built with the Keras functional API.

The model takes float32 images ``(B, H, W, 1)`` in [0, 1] with ``H`` and ``W`` divisible by
``2 ** depth`` (:mod:`emdl.predict` pads any image so) and returns per-pixel probabilities:
``(B, H, W, 1)`` (sigmoid, foreground) for one class, ``(B, H, W, classes + 1)`` (softmax, channel
0 background) for several, and with ``border_width`` set ``(B, H, W, classes + 2)``, the last
channel the borders where objects touch (an instance-aware U-Net). With ``distance_weight`` set
one more channel follows, last: each object's normalized distance to its outline, sigmoid in
[0, 1] (:func:`emdl.labels.object_distance`), whose peaks seed the watershed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import tensorflow as tf
from keras import layers

from emdl.settings import from_known_fields

UPSAMPLING = ("bilinear", "transpose")


@dataclass(frozen=True)
class UNetConfig:
    """Everything that shapes a U-Net; ``to_dict``/``from_dict`` store it in ``config.json``.

    ``depth`` down-sampling steps; ``filters`` in the first block, doubling at each step;
    ``convs_per_block`` 3 x 3 convolutions per block; ``upsampling`` "bilinear" (resize, then a
    3 x 3 convolution) or "transpose" (a transposed convolution); ``dropout`` before the bottom
    block and in the decoder; ``classes`` foreground classes (1: sigmoid output).

    ``border_width`` > 0 makes the U-Net instance-aware: it also learns a border class, the
    object pixels within ``border_width`` pixels of another object
    (:func:`emdl.labels.semantic.touching_borders`), weighted ``border_weight`` times in the
    cross-entropy, and instances grow from the objects' cores without it
    (:func:`emdl.predict.instances.instances_from_borders`). ``tta``: whole images are
    predicted with test-time augmentation, the probabilities averaged over the eight flips and
    quarter turns of each tile (:func:`emdl.predict.tta.tta_pixels`).

    ``distance_weight`` > 0 makes it a distance U-Net: a last output channel learns each object's
    normalized distance to its own outline (1 at its centre; :func:`emdl.labels.object_distance`)
    with a mean absolute error weighted ``distance_weight``, and instances grow from the peaks of
    that map at least ``peak_depth`` high (:func:`emdl.predict.instances.instances_from_distance`),
    which parts touching and overlapping objects that the distance transform of their union
    cannot. ``split_depth`` (pixels; None: the rule of
    :func:`emdl.predict.instances.split_touching`) is the neck depth at which the plain U-Net's
    watershed splits touching objects.
    """

    depth: int = 4
    filters: int = 16
    convs_per_block: int = 2
    batch_norm: bool = True
    dropout: float = 0.0
    upsampling: str = "bilinear"
    classes: int = 1
    border_width: int = 0
    border_weight: float = 1.0
    tta: bool = False
    distance_weight: float = 0.0
    peak_depth: float = 0.15
    split_depth: float | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.depth >= 1, f"depth must be at least 1, got {self.depth}"),
            (self.filters >= 1, f"filters must be at least 1, got {self.filters}"),
            (self.convs_per_block >= 1, "convs_per_block must be at least 1"),
            (0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
            (self.upsampling in UPSAMPLING, f"upsampling must be one of {UPSAMPLING}"),
            (self.classes >= 1, f"classes must be at least 1, got {self.classes}"),
            (self.border_width >= 0, f"border_width must be >= 0, got {self.border_width}"),
            (self.border_weight > 0, f"border_weight must be > 0, got {self.border_weight}"),
            (self.distance_weight >= 0, "distance_weight must be >= 0"),
            (0 < self.peak_depth < 1, f"peak_depth must be in (0, 1), got {self.peak_depth}"),
            (
                self.split_depth is None or self.split_depth > 0,
                f"split_depth must be positive (pixels) or null, got {self.split_depth}",
            ),
            (
                not (self.border_width and self.distance_weight),
                "border_width and distance_weight are two ways to part objects: choose one",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def labels(self) -> int:
        """Classes the model tells from the background: ``classes``, and the border class."""
        return self.classes + (self.border_width > 0)

    @property
    def distance(self) -> bool:
        """Whether the U-Net also outputs the distance map (its last channel)."""
        return self.distance_weight > 0

    @property
    def multiple(self) -> int:
        """Input sizes must be multiples of this (``2 ** depth``)."""
        return 2**self.depth

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> UNetConfig:
        return from_known_fields(cls, values, "model")


@keras.saving.register_keras_serializable(package="emdl")
class BilinearUpsample(layers.Layer):
    """Bilinear resize to twice the height and width. Unlike ``UpSampling2D`` it works on inputs
    whose size is only known when the graph runs, as in a SavedModel serving any image size."""

    def call(self, inputs):
        return tf.image.resize(inputs, tf.shape(inputs)[1:3] * 2, method="bilinear")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        double = lambda size: None if size is None else 2 * size  # noqa: E731
        return (batch, double(height), double(width), channels)


def apply_conv_block(x, filters: int, config: UNetConfig, name: str):
    """``convs_per_block`` times: 3 x 3 convolution, batch norm, ReLU."""
    for index in range(config.convs_per_block):
        x = layers.Conv2D(
            filters, 3, padding="same", use_bias=not config.batch_norm, name=f"{name}_conv{index}"
        )(x)
        if config.batch_norm:
            # Momentum 0.9 (PyTorch's 0.1): with Keras' 0.99 the moving statistics need
            # hundreds of steps to settle, and a short CPU run predicts nonsense in inference.
            x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{index}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{index}")(x)
    return x


def apply_upsample(x, filters: int, config: UNetConfig, name: str):
    """Double the spatial size and set the channels to ``filters``."""
    if config.upsampling == "transpose":
        return layers.Conv2DTranspose(filters, 2, strides=2, name=f"{name}_transpose")(x)
    x = BilinearUpsample(name=f"{name}_resize")(x)
    return layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv")(x)


def build_unet(config: UNetConfig | None = None, *, name: str = "unet") -> keras.Model:
    """A U-Net from ``config`` (default :class:`UNetConfig`), input ``(None, None, 1)`` float32."""
    config = config or UNetConfig()
    inputs = keras.Input((None, None, 1), name="image")
    x, skips = inputs, []
    for level in range(config.depth):
        x = apply_conv_block(x, config.filters * 2**level, config, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="bottom_dropout")(x)
    x = apply_conv_block(x, config.filters * 2**config.depth, config, "bottom")
    for level in reversed(range(config.depth)):
        filters = config.filters * 2**level
        x = apply_upsample(x, filters, config, f"up{level}")
        x = layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
        if config.dropout:
            x = layers.Dropout(config.dropout, name=f"up{level}_dropout")(x)
        x = apply_conv_block(x, filters, config, f"up{level}")
    if config.labels == 1:
        outputs = layers.Conv2D(1, 1, activation="sigmoid", name="probabilities", dtype="float32")(
            x
        )
    else:
        outputs = layers.Conv2D(
            config.labels + 1, 1, activation="softmax", name="probabilities", dtype="float32"
        )(x)
    if config.distance:
        distance = layers.Conv2D(1, 1, activation="sigmoid", name="distance", dtype="float32")(x)
        outputs = layers.Concatenate(name="outputs", dtype="float32")([outputs, distance])
    return keras.Model(inputs, outputs, name=name)
