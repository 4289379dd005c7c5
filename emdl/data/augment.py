"""Random augmentation of crops: parameters drawn once per crop, applied to the image and its
targets alike.

Every draw is a stateless TensorFlow random op keyed by the crop's seed, so the same seed gives
the same crops bit for bit, whatever the order tf.data runs them in.

Geometry (flips, 90-degree turns, rotation, zoom, translation) is one affine map per crop, done by
``ImageProjectiveTransformV3`` while cutting the crop out of the whole image, so rotated and zoomed
crops take real pixels from around the window instead of filling corners. Where the window does
reach past the image, the image is filled with its mean and masks with 0. Masks use nearest
neighbour. Scan jitter shifts rows sideways and moves masks and boxes with them. The imaging
effects (background, contrast, blur, Poisson and Gaussian noise, salt and pepper) touch only the
image, which ends min-max normalized to [0, 1].

Coordinates are continuous pixels (``emdl.annotations``); boxes are float32 "xyxy".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import tensorflow as tf

from emdl.data.normalize import min_max


@dataclass(frozen=True)
class _Kind:
    """What an effect's range means: allowed bounds, the default range, and the unit."""

    bounds: tuple[float, float] | None  # None: the effect has a probability and no range
    default: tuple[float, float] | None
    unit: str


EFFECTS: dict[str, _Kind] = {
    "flip_horizontal": _Kind(None, None, "mirror left-right"),
    "flip_vertical": _Kind(None, None, "mirror top-bottom"),
    "rotate90": _Kind(None, None, "turn by 90, 180 or 270 degrees"),
    "rotate": _Kind((-180.0, 180.0), (-180.0, 180.0), "degrees"),
    "zoom": _Kind((0.25, 4.0), (0.8, 1.25), "scale factor, > 1 magnifies"),
    "translate": _Kind((-1.0, 1.0), (-0.1, 0.1), "fraction of the window"),
    "jitter": _Kind((0.0, 16.0), (0.0, 1.5), "largest sideways row shift, pixels"),
    "background": _Kind((0.0, 1.0), (0.0, 0.3), "amplitude, fraction of the intensity range"),
    "contrast": _Kind((0.1, 10.0), (0.7, 1.5), "gamma"),
    "blur": _Kind((0.0, 8.0), (0.5, 1.5), "Gaussian sigma, pixels"),
    "poisson_noise": _Kind((1.0, 1e6), (20.0, 200.0), "dose, counts per pixel at full intensity"),
    "gaussian_noise": _Kind((0.0, 1.0), (0.01, 0.08), "sigma, fraction of the intensity range"),
    "salt_pepper": _Kind((0.0, 0.5), (0.0, 0.01), "fraction of pixels"),
}
# Augmentations that combine crops (emdl.data.mosaic): applied to the stream of crops, not inside
# one, so they are kept out of EFFECTS (whose order keys each crop's seeds) and of the defaults.
COMBINATIONS: dict[str, _Kind] = {
    "mosaic": _Kind((0.0, 1.0), (0.25, 0.75), "where four crops meet, fraction of the window"),
}
KINDS = EFFECTS | COMBINATIONS
INTERPOLATIONS = ("bilinear", "nearest")


@dataclass(frozen=True)
class Effect:
    """One augmentation: applied with ``probability``, its value drawn uniformly in
    ``[low, high]`` (unused by flips and 90-degree turns)."""

    probability: float
    low: float = 0.0
    high: float = 0.0


@dataclass(frozen=True)
class Augmentation:
    """A validated set of augmentations; see :data:`EFFECTS` and :data:`COMBINATIONS` for
    names, units and bounds.

    ``interpolation`` ("bilinear" or "nearest") resamples the image; masks always use nearest.
    """

    effects: tuple[tuple[str, Effect], ...] = ()
    interpolation: str = "bilinear"

    def get(self, name: str) -> Effect | None:
        return dict(self.effects).get(name)

    @classmethod
    def from_dict(cls, spec: Mapping[str, object], *, interpolation: str = "bilinear"):
        """Build from ``{"name": {"probability": p, "range": [low, high]}, ...}``.

        ``range`` defaults to the effect's default range and ``probability`` to 0.5; flips and
        ``rotate90`` take no range. Raises ValueError on an unknown name, a probability outside
        [0, 1], or a range that is reversed or outside the effect's bounds.
        """
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"unknown interpolation '{interpolation}', expected one of {INTERPOLATIONS}"
            )
        effects = []
        for name, settings in spec.items():
            if name not in KINDS:
                raise ValueError(f"unknown augmentation '{name}'; known: {', '.join(KINDS)}")
            settings = dict(settings or {})
            unknown = set(settings) - {"probability", "range"}
            if unknown:
                raise ValueError(f"augmentation '{name}': unknown setting(s) {sorted(unknown)}")
            probability = float(settings.get("probability", 0.5))
            if not 0 <= probability <= 1:
                raise ValueError(f"augmentation '{name}': probability {probability} not in [0, 1]")
            kind = KINDS[name]
            if kind.bounds is None:
                if "range" in settings:
                    raise ValueError(f"augmentation '{name}' takes no range")
                effects.append((name, Effect(probability)))
                continue
            low, high = (float(v) for v in settings.get("range", kind.default))
            lowest, highest = kind.bounds
            if not lowest <= low <= high <= highest:
                raise ValueError(
                    f"augmentation '{name}': range [{low}, {high}] must be increasing and within "
                    f"[{lowest}, {highest}] ({kind.unit})"
                )
            effects.append((name, Effect(probability, low, high)))
        return cls(tuple(effects), interpolation)

    @classmethod
    def default(cls, probability: float = 0.5) -> Augmentation:
        """Every augmentation of :data:`EFFECTS` at its default range, each applied with
        ``probability`` (no mosaic)."""
        return cls.from_dict({name: {"probability": probability} for name in EFFECTS})

    def to_dict(self) -> dict[str, dict[str, object]]:
        """The inverse of :meth:`from_dict` (JSON-ready)."""
        return {
            name: {"probability": effect.probability}
            | ({"range": [effect.low, effect.high]} if KINDS[name].bounds else {})
            for name, effect in self.effects
        }


_SEED_SLOTS = {name: index for index, name in enumerate([*EFFECTS, "centre_x", "centre_y"])}


def crop_seeds(seed: tf.Tensor) -> tf.Tensor:
    """Independent seeds, int64 ``(n, 2)``, three per effect (whether it applies, its value, its
    noise), from one crop seed."""
    return tf.random.experimental.stateless_split(seed, num=3 * len(_SEED_SLOTS))


def _seed(seeds: tf.Tensor, name: str, which: int) -> tf.Tensor:
    return seeds[3 * _SEED_SLOTS[name] + which]


def _draw(seeds: tf.Tensor, name: str, effect: Effect | None, shape=()) -> tuple:
    """Whether ``effect`` applies to this crop, and its value(s) in ``[low, high]``."""
    if effect is None:
        return tf.zeros(shape, tf.bool), tf.zeros(shape)
    applies = tf.random.stateless_uniform(shape, _seed(seeds, name, 0)) < effect.probability
    value = tf.random.stateless_uniform(shape, _seed(seeds, name, 1), effect.low, effect.high)
    return applies, value


def random_geometry(
    seeds: tf.Tensor, height: tf.Tensor, width: tf.Tensor, window: int, augmentation: Augmentation
) -> tuple[tf.Tensor, tf.Tensor]:
    """A random crop: the linear part ``A`` (float32 (2, 2)) of the map from image to crop
    coordinates and the image point (float32 (2,), x then y) that lands on the window's centre.

    The centre is drawn so that the turned and zoomed window stays inside the image where it fits.
    """
    get = augmentation.get
    flip_x, _ = _draw(seeds, "flip_horizontal", get("flip_horizontal"))
    flip_y, _ = _draw(seeds, "flip_vertical", get("flip_vertical"))
    turn, turn_value = _draw(seeds, "rotate90", get("rotate90"))
    rotate, angle = _draw(seeds, "rotate", get("rotate"))
    zoom_on, zoom = _draw(seeds, "zoom", get("zoom"))
    shift_on, shift = _draw(seeds, "translate", get("translate"), shape=(2,))

    quarter_turns = tf.where(turn, tf.cast(turn_value * 3, tf.int32) + 1, 0)
    # Exact cosines and sines of quarter turns keep unrotated crops free of interpolation.
    cos90 = tf.gather([1.0, 0.0, -1.0, 0.0], quarter_turns)
    sin90 = tf.gather([0.0, 1.0, 0.0, -1.0], quarter_turns)
    radians = tf.where(rotate, angle, 0.0) * (math.pi / 180)
    cos, sin = tf.cos(radians), tf.sin(radians)
    cos, sin = tf.where(rotate, cos, 1.0), tf.where(rotate, sin, 0.0)
    c, s = cos * cos90 - sin * sin90, sin * cos90 + cos * sin90
    scale = tf.where(zoom_on, zoom, 1.0)
    fx = tf.where(flip_x, -1.0, 1.0)
    fy = tf.where(flip_y, -1.0, 1.0)
    linear = scale * tf.reshape(tf.stack([c * fx, -s * fy, s * fx, c * fy]), (2, 2))

    # Half the window's extent in image pixels, to keep it inside the image.
    inverse = tf.linalg.inv(linear)
    half = tf.reduce_sum(tf.abs(inverse), axis=1) * (window / 2)
    size = tf.stack([tf.cast(width, tf.float32), tf.cast(height, tf.float32)])
    u = tf.stack(
        [
            tf.random.stateless_uniform([], _seed(seeds, "centre_x", 0)),
            tf.random.stateless_uniform([], _seed(seeds, "centre_y", 0)),
        ]
    )
    room = size - 2 * half
    centre = tf.where(room > 0, half + u * room, size / 2)
    centre += tf.where(shift_on[0], shift * window, 0.0)
    return linear, centre


def window_geometry(top: tf.Tensor, left: tf.Tensor, window: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The plain (unaugmented) crop with top-left pixel ``(top, left)``, as :func:`random_geometry`
    describes it."""
    centre = tf.stack([tf.cast(left, tf.float32), tf.cast(top, tf.float32)]) + window / 2
    return tf.eye(2), centre


def _transform_vector(linear: tf.Tensor, centre: tf.Tensor, window: int) -> tf.Tensor:
    """``ImageProjectiveTransformV3``'s 8 numbers: crop pixel index to image pixel index."""
    inverse = tf.linalg.inv(linear)
    # Pixel index i is the continuous coordinate i + 0.5.
    offset = centre + tf.linalg.matvec(inverse, tf.fill([2], 0.5 - window / 2)) - 0.5
    return tf.stack(
        [inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1], 0.0, 0.0]
    )


def warp(
    image: tf.Tensor,
    linear: tf.Tensor,
    centre: tf.Tensor,
    window: int,
    *,
    interpolation: str,
    fill: tf.Tensor | float = 0.0,
) -> tf.Tensor:
    """Cut the ``window x window`` crop described by ``linear`` and ``centre`` out of ``image``
    ``(H, W, C)`` (any dtype); returns ``(window, window, C)`` of the same dtype."""
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis],
        transforms=_transform_vector(linear, centre, window)[tf.newaxis],
        output_shape=[window, window],
        interpolation=interpolation.upper(),
        fill_mode="CONSTANT",
        fill_value=tf.cast(fill, tf.float32),
    )
    return warped[0]


def warp_boxes(boxes: tf.Tensor, linear: tf.Tensor, centre: tf.Tensor, window: int) -> tf.Tensor:
    """Boxes float32 ``(N, 4)`` "xyxy" in image pixels to the crop: the box around each turned
    box (not clipped)."""
    x0, y0, x1, y1 = tf.unstack(boxes, axis=1)
    corners = tf.stack(
        [
            tf.stack([x0, y0], 1),
            tf.stack([x1, y0], 1),
            tf.stack([x1, y1], 1),
            tf.stack([x0, y1], 1),
        ],
        axis=1,
    )
    moved = tf.einsum("ij,nkj->nki", linear, corners - centre) + window / 2
    return tf.concat([tf.reduce_min(moved, axis=1), tf.reduce_max(moved, axis=1)], axis=1)


def keep_inside(
    boxes: tf.Tensor, region: tf.Tensor, min_visible: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """Which of ``boxes`` float32 ``(N, 4)`` "xyxy" keep enough of themselves inside ``region``
    float32 ``(4,)`` "xyxy" (some area, and at least ``min_visible`` of their own): bool
    ``(N,)``, and the boxes clipped to the region ``(N, 4)``."""
    low = tf.concat([region[:2], region[:2]], 0)
    high = tf.concat([region[2:], region[2:]], 0)
    clipped = tf.clip_by_value(boxes, low, high)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    visible = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    return (visible > 0) & (visible >= min_visible * area), clipped


def jitter_shifts(seeds: tf.Tensor, window: int, augmentation: Augmentation) -> tf.Tensor:
    """Sideways shift of each crop row, int32 ``(window,)``; zeros when jitter does not apply."""
    applies, amplitude = _draw(seeds, "jitter", augmentation.get("jitter"))
    rows = tf.random.stateless_uniform([window], _seed(seeds, "jitter", 2), -1.0, 1.0)
    shifts = tf.cast(tf.round(rows * amplitude), tf.int32)
    return tf.where(applies, shifts, tf.zeros_like(shifts))


def shift_rows(image: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
    """Move row ``r`` of ``image`` ``(S, S, C)`` right by ``shifts[r]`` pixels (edge repeated)."""
    size = tf.shape(image)[1]
    columns = tf.range(size)[tf.newaxis, :] - shifts[:, tf.newaxis]
    return tf.gather(image, tf.clip_by_value(columns, 0, size - 1), axis=1, batch_dims=1)


def shift_boxes(boxes: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
    """Widen boxes ``(N, 4)`` "xyxy" by the smallest and largest shift of the rows they span."""
    rows = tf.cast(tf.range(tf.shape(shifts)[0]), tf.float32) + 0.5
    inside = (rows[tf.newaxis] >= boxes[:, 1:2]) & (rows[tf.newaxis] <= boxes[:, 3:4])
    row_shifts = tf.cast(shifts, tf.float32)[tf.newaxis]
    low = tf.reduce_min(tf.where(inside, row_shifts, 1e9), axis=1)
    high = tf.reduce_max(tf.where(inside, row_shifts, -1e9), axis=1)
    any_row = tf.reduce_any(inside, axis=1)
    low, high = tf.where(any_row, low, 0.0), tf.where(any_row, high, 0.0)
    return tf.stack([boxes[:, 0] + low, boxes[:, 1], boxes[:, 2] + high, boxes[:, 3]], axis=1)


def _blur(images: tf.Tensor, sigmas: tf.Tensor, radius: int) -> tf.Tensor:
    """Gaussian blur of ``(B, S, S, 1)`` with one sigma per image; the batch becomes the channels
    of a depthwise convolution so that each image gets its own kernel."""
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernels = tf.exp(-(x[:, tf.newaxis] ** 2) / (2 * tf.maximum(sigmas, 1e-3) ** 2))
    kernels /= tf.reduce_sum(kernels, axis=0, keepdims=True)  # (K, B)
    stacked = tf.transpose(images, [3, 1, 2, 0])  # (1, S, S, B)
    pad = [[0, 0], [radius, radius], [radius, radius], [0, 0]]
    stacked = tf.pad(stacked, pad, "REFLECT")
    rows = tf.nn.depthwise_conv2d(stacked, kernels[:, tf.newaxis, :, tf.newaxis], [1] * 4, "VALID")
    both = tf.nn.depthwise_conv2d(rows, kernels[tf.newaxis, :, :, tf.newaxis], [1] * 4, "VALID")
    return tf.transpose(both, [3, 1, 2, 0])


def _smooth_interpolation(size: tf.Tensor, knots: int = 4) -> tf.Tensor:
    """``(size, knots)`` weights that interpolate ``knots`` evenly spread values smoothly (a
    raised-cosine blend of the two nearest knots) onto ``size`` pixels."""
    position = (tf.cast(tf.range(size), tf.float32) + 0.5) / tf.cast(size, tf.float32)
    position = position * (knots - 1)
    distance = tf.abs(position[:, tf.newaxis] - tf.range(knots, dtype=tf.float32))
    return tf.where(distance < 1, 0.5 + 0.5 * tf.cos(math.pi * distance), 0.0)


def _salt_and_pepper(
    images: tf.Tensor, fraction: tf.Tensor, most: float, seeds: tf.Tensor
) -> tf.Tensor:
    """Set ``fraction`` (per image, ``(B, 1, 1, 1)``) of the pixels to the image's minimum or
    maximum, half each. Only the chosen pixels are drawn (at most ``most`` of them), not a random
    number per pixel."""
    shape = tf.shape(images)
    pixels = shape[1] * shape[2]
    slots = max(1, math.ceil(most * 256 * 256))  # per 256 x 256 crop; scaled below
    slots = tf.cast(tf.math.ceil(tf.cast(slots * pixels, tf.float32) / 65536.0), tf.int32)
    positions = tf.random.stateless_uniform(
        tf.stack([shape[0], slots]), _seed(seeds, "salt_pepper", 2), 0, pixels, tf.int32
    )
    chosen = tf.cast(tf.reshape(fraction, [-1, 1]) * tf.cast(pixels, tf.float32), tf.int32)
    slot = tf.range(slots)[tf.newaxis]
    # 1 marks pepper, 2 salt, 0 a slot this image does not use.
    code = tf.where(slot < chosen // 2, 1, tf.where(slot < chosen, 2, 0))
    batch = tf.broadcast_to(tf.range(shape[0])[:, tf.newaxis], tf.shape(positions))
    index = tf.stack([batch, positions], axis=-1)
    codes = tf.tensor_scatter_nd_max(tf.zeros(tf.stack([shape[0], pixels]), tf.int32), index, code)
    codes = tf.reshape(codes, shape)
    low = tf.reduce_min(images, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
    return tf.where(codes == 1, low, tf.where(codes == 2, high, images))


def imaging_effects(images: tf.Tensor, seed: tf.Tensor, augmentation: Augmentation) -> tf.Tensor:
    """The EM imaging effects on a batch of crops ``(B, S, S, 1)`` float32, each crop with its
    own draws, in the order they arise: specimen background, contrast, defocus blur, shot noise,
    detector noise, dead and hot pixels. ``seed`` is int64 ``(2,)``. Returns the crops each
    normalized to [0, 1]."""
    get = augmentation.get
    seeds = crop_seeds(seed)
    images = min_max(images)
    shape = tf.shape(images)
    per_image = tf.stack([shape[0], 1, 1, 1])

    def draw(name: str) -> tuple[tf.Tensor, tf.Tensor]:
        return _draw(seeds, name, get(name), shape=per_image)

    if get("background") is not None:
        applies, amplitude = draw("background")
        coarse = tf.random.stateless_uniform(
            tf.stack([shape[0], 4, 4]), _seed(seeds, "background", 2), -1.0, 1.0
        )
        # A 4 x 4 grid of random levels, smoothly interpolated: interpolation is separable, so
        # two small matrix products make the field instead of a resize of every image.
        rows = _smooth_interpolation(shape[1])
        columns = _smooth_interpolation(shape[2])
        field = tf.einsum("yi,bij,xj->byx", rows, coarse, columns)[..., tf.newaxis]
        images = tf.where(applies, min_max(images + amplitude * field), images)
    if get("contrast") is not None:
        applies, gamma = draw("contrast")
        # exp(gamma log x) is x ** gamma; tf.pow with a broadcast exponent is 7 times slower.
        curved = tf.exp(gamma * tf.math.log(tf.maximum(images, 1e-12)))
        images = tf.where(applies, curved, images)
    blur = get("blur")
    if blur is not None:
        applies, sigma = draw("blur")
        blurred = _blur(images, tf.reshape(sigma, [-1]), max(1, math.ceil(3 * blur.high)))
        images = tf.where(applies, blurred, images)
    if get("poisson_noise") is not None or get("gaussian_noise") is not None:
        # Shot noise at dose d has variance I / d (in units of full intensity); it is drawn from
        # that normal approximation of the Poisson law, together with the detector's Gaussian
        # noise in one draw: exact Poisson sampling costs 2.5 ms per 256 x 256 crop here, five
        # times the rest of the imaging effects together.
        shot_on, dose = draw("poisson_noise")
        read_on, sigma = draw("gaussian_noise")
        variance = tf.where(shot_on, images / tf.maximum(dose, 1.0), 0.0)
        variance += tf.where(read_on, sigma**2, 0.0)
        noise = tf.random.stateless_normal(shape, _seed(seeds, "gaussian_noise", 2))
        images = images + tf.sqrt(variance) * noise
    salt_pepper = get("salt_pepper")
    if salt_pepper is not None:
        applies, fraction = draw("salt_pepper")
        images = tf.where(
            applies, _salt_and_pepper(images, fraction, salt_pepper.high, seeds), images
        )
    return min_max(images)
