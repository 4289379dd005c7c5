"""One training step of emdl's detector at the ``yolo_loops`` settings, taken apart: where the
time goes, how far it is from the CPU's arithmetic limit, and whether XLA compiles it.

The detector and its training batches are those of ``benchmarks/detector_ablation.py``'s
baseline (:func:`emdl.experiments.yolo_loops.detector_config` through
``detector_vs_ultralytics.emdl_config``: "xs" backbone, micrographs of loops111 resized to 640
pixels on the longest side, batches of eight 320 x 320 crops with dense boxes padded with -1 to
the most boxes a crop of the batch has, all augmentations; AdamW 4e-3, cosine decay), built by the
detector kind exactly as ``emdl train`` builds it (``DetectorKind.build``: ``jit_compile=False``)
and fed by the run's own training pipeline (``kind.datasets``). A few batches are drawn first
(``--batches``); each timed call takes the next of them in turn, so no row includes the input
except the first. Every row is the median of ``--repeats`` calls after one warm-up call per batch
(tracing, XLA compilation), each row its own ``tf.function``:

- ``input``: ``next()`` on the training pipeline's iterator (crop, augmentation, batching; its
  parallel maps run ahead, so this is the wait of a step that had nothing else to do);
- ``forward``: backbone + neck + head, ``model(images, training=True)``;
- ``assign``: keras-cv's task-aligned label assignment alone, as the model's ``compute_loss``
  calls it (:func:`emdl.models.keras_cv_adapter.assign_labels`: decoding the predicted boxes and
  ``YOLOV8LabelEncoder``), on head outputs computed beforehand;
- ``forward+loss``: the forward pass and ``model.compute_loss`` (assignment, CIoU, class
  cross-entropy, DFL);
- ``forward+loss+grad``: that and the gradients of the loss (no optimizer);
- ``train_step``: Keras' ``model.train_step`` (forward, loss, gradients, AdamW update, loss
  tracker) in a ``tf.function`` as ``model.fit`` builds it (``reduce_retracing=True``);
- ``... image-max``: ``assign``, ``train_step`` and ``train_step XLA`` on the same batches
  with their boxes padded to the most boxes a training image has, as every batch was before the
  padding per batch (side by side: the time the padding costs) and as a run compiled by XLA
  (``model.jit_compile``) still pads them, XLA compiling each shape anew;
- ``... XLA``: the row above with ``jit_compile=True`` (``forward``, ``forward+loss+grad``,
  ``train_step``); when XLA refuses, the row carries the first line of its error instead;
- ``matmul N^2``: a product of two ``--matmul-size`` square float32 matrices, whose rate
  (``2 N^3`` / its time) is taken as the CPU's peak.

After its first call and one call on each other batch, every row but ``input`` is timed in
turn, one call of each per round, so that the load of the machine falls on all rows alike.
"compile s" is a row's first call (tracing, and for XLA compiling). "traces" counts how often
its function was traced: batches differ in their number of boxes, so a row that takes them traces
twice (the first batch's number, then any, as ``reduce_retracing`` makes it; Keras' ``fit``
traces once, on the pipeline's spec) and more would mean a retrace. Beside the XLA step: its
loss after one step from the same weights and optimizer state on the same batch against the
plain step's (and the same step's with the boxes padded to the busiest image's), and the
gradients of forward + loss compiled by XLA against the plain ones at the same weights (the
norm of their difference over the norm of the plain gradients).

FLOPs: the forward pass's, counted by TensorFlow's profiler on the frozen graph of
``model(images, training=False)`` for one batch (each multiply-add of the convolutions and
matrix products counted as 2; batch normalization in inference form, a small share), and a
backward pass taken as 2 forward ones, so gradients and a training step as 3 x forward.
"of limit" is the row's FLOPs at the matmul peak over its time: 100 % would be the peak.

Only a run alone on the machine is a measurement (``tf.data``, TensorFlow's thread pools and
the matrix-multiply peak all use every core); with other work running, the rows show where the
time goes but not how fast it is::

    python benchmarks/detector_step.py --data-dir $EMDL_DATA_DIR --out /tmp/detector_step \\
        [--repeats 20] [--batches 4] [--limit-images N] [--matmul-size 4096] [--seed 0]

``--limit-images N`` keeps the first N labeled images (a quick check that it runs). ``--no-xla``
skips the XLA rows. The table is printed and written to ``--out/results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# benchmarks/ is no package: its scripts import each other from their folder. The detector
# benchmark's split, subsets, run config and stopwatch are shared with it.
sys.path.insert(0, str(Path(__file__).parent))
import detector_vs_ultralytics as VS  # noqa: N812 (a module, named as a constant)

# The rows compared with the FLOP limit: their work in forward passes (backward = 2 forward).
FORWARDS = {"forward": 1, "forward+loss+grad": 3, "train_step": 3}
FORMER = " image-max"  # suffix of the rows whose boxes are padded to the most an image has


def median_seconds(call: Callable[[int], object], repeats: int) -> float:
    """The median wall time in seconds of ``call(i)`` for ``i`` in ``range(repeats)``; each
    call's result is made concrete (``numpy()``) before the clock stops."""
    times = []
    for index in range(repeats):
        start = time.perf_counter()
        _finish(call(index))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _finish(result) -> None:
    """Wait for every tensor in ``result`` (a nest of tensors) to be computed."""
    import tensorflow as tf

    for leaf in tf.nest.flatten(result):
        if hasattr(leaf, "numpy"):
            leaf.numpy()


def flop_limit(step_flops: float, peak_flops_per_second: float) -> float:
    """Seconds a step of ``step_flops`` floating-point operations takes at the peak rate."""
    return step_flops / peak_flops_per_second


def fraction_of_limit(seconds: float, step_flops: float, peak_flops_per_second: float) -> float:
    """The share of the peak rate a step of ``step_flops`` taking ``seconds`` reaches
    (1.0: at the peak)."""
    return flop_limit(step_flops, peak_flops_per_second) / seconds


def one_line(error: BaseException, limit: int = 160) -> str:
    """The first non-empty line of ``error``'s message, at most ``limit`` characters, prefixed
    by its type: the reason XLA gave, short enough for a table cell."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def table(rows: Sequence[dict]) -> str:
    """The rows as a text table: name, median ms, calls per second, traces, and for the train
    steps the share of the FLOP limit; a row whose ``error`` is set shows it instead."""
    width = max(len(row["row"]) for row in [*rows, {"row": "row"}]) + 2
    heads = ("median ms", "per s", "traces", "compile s", "of limit")
    lines = [f"{'row':{width}}" + "".join(f"{head:>11}" for head in heads)]
    for row in rows:
        if row.get("error"):
            lines.append(f"{row['row']:{width}}failed: {row['error']}")
            continue
        cells = [
            f"{1000 * row['seconds']:.1f}",
            f"{1 / row['seconds']:.2f}",
            f"{row['traces']}" if row.get("traces") is not None else "-",
            f"{row['compile_seconds']:.1f}" if row.get("compile_seconds") is not None else "-",
            f"{row['of_limit']:.1%}" if row.get("of_limit") is not None else "-",
        ]
        lines.append(f"{row['row']:{width}}" + "".join(f"{cell:>11}" for cell in cells))
    return "\n".join(lines)


def matmul_function(size: int):
    """A ``tf.function`` multiplying two fixed ``size`` x ``size`` float32 matrices
    (``2 size^3`` operations a call): the CPU's peak rate is ``2 size^3`` / its time."""
    import tensorflow as tf

    a = tf.random.stateless_normal([size, size], seed=[1, 2])
    b = tf.random.stateless_normal([size, size], seed=[3, 4])
    return tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)), autograph=False)


def forward_flops(model, images_shape: Sequence[int]) -> int:
    """Floating-point operations of one inference-mode forward pass of ``model`` on float32
    images of ``images_shape`` ``(B, S, S, 1)``, counted by TensorFlow's profiler on the frozen
    graph."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    forward = tf.function(lambda images: model(images, training=False), autograph=False)
    concrete = forward.get_concrete_function(tf.TensorSpec(images_shape, tf.float32))
    graph = convert_variables_to_constants_v2(concrete).graph
    options = (
        tf.compat.v1.profiler.ProfileOptionBuilder(
            tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        )
        .with_empty_output()
        .build()
    )  # the count only, no report on stdout
    found = tf.compat.v1.profiler.profile(
        graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options
    )
    return int(found.total_float_ops)


def pad_boxes(targets: dict, count: int) -> dict:
    """Dense targets ``{"boxes" (B, N, 4), "classes" (B, N)}`` padded with -1 to ``count``
    boxes (``count`` >= ``N``)."""
    import tensorflow as tf

    extra = count - int(targets["classes"].shape[1])
    return {
        "boxes": tf.pad(targets["boxes"], [[0, 0], [0, extra], [0, 0]], constant_values=-1),
        "classes": tf.pad(targets["classes"], [[0, 0], [0, extra]], constant_values=-1),
    }


def build(args) -> tuple:
    """(the compiled detector, its run config, the training pipeline's iterator, the number of
    training images, the most boxes one of them has) at the ``yolo_loops`` settings on loops111
    in ``args.data_dir``."""
    import keras

    from emdl.data import load_labeled_images
    from emdl.errors import EmdlError
    from emdl.train.kinds.base import object_counts

    folder = Path(args.data_dir).resolve() / "loops111"
    labels, images_dir = folder / "annotations.xml", folder / "images"
    if not labels.is_file():
        raise EmdlError(f"{labels}: not found (give --data-dir, the folder of loops111/)")
    records, classes = load_labeled_images([labels], images_dir)
    training, _ = VS.split_images(records, 0.1, args.seed, args.limit_images)
    # The benchmark split's config; its label files are never read here (the records are).
    config = VS.emdl_config(labels, labels, images_dir, args.seed)
    kind = config.model_kind
    # Without XLA: the boxes padded per batch, and the model compiled plain; the XLA rows build
    # their own compiled functions.
    model_config = dataclasses.replace(kind.model_config(config.model, classes), jit_compile=False)
    config = dataclasses.replace(config, model=model_config, classes=tuple(classes))
    keras.utils.set_random_seed(config.training.seed)
    train_data, _, _ = kind.datasets(training, [], classes, config, config.data.batch_size)
    model = kind.build(config)
    most = max(object_counts(training, classes))
    return model, config, iter(train_data), len(training), most


def _state(model) -> list:
    """Copies of the model's and its optimizer's variables."""
    return [v.numpy() for v in [*model.variables, *model.optimizer.variables]]


def _restore(model, state: list) -> None:
    for variable, value in zip([*model.variables, *model.optimizer.variables], state, strict=True):
        variable.assign(value)


def measure(model, iterator, args, most: int) -> tuple[list[dict], dict, float]:
    """The table's rows, the XLA-against-plain comparison and the matrix-multiply peak in FLOP/s
    (see the module docstring). After each row's first call (on the first batch) and one call on
    each other batch, the rows are timed in turn, one call of each per round, so that a change
    in the machine's load falls on all of them alike."""
    import tensorflow as tf

    from emdl.models import keras_cv_adapter as kcv

    batches = [next(iterator) for _ in range(args.batches)]
    count = len(batches)
    former = [(images, pad_boxes(targets, most)) for images, targets in batches]
    padded = [int(targets["classes"].shape[1]) for _, targets in batches]
    print(f"boxes a batch is padded to: {padded} (the busiest image: {most})", flush=True)
    rows: dict[str, dict] = {}
    timed: dict[str, tuple] = {}  # name: (function, its arguments for call i)

    def forward(images):
        return model(images, training=True)

    def forward_loss(images, targets):
        return model.compute_loss(images, targets, forward(images), training=True)

    def forward_loss_grad(images, targets):
        with tf.GradientTape() as tape:
            loss = forward_loss(images, targets)
        return loss, tape.gradient(loss, model.trainable_variables)

    def assign(images, targets, predicted):
        return tuple(kcv.assign_labels(model, images, targets, predicted))

    def graph(function, jit: bool = False):
        # No AutoGraph: the step has no Python control flow on tensors (Keras' fit converts none).
        # Batches differ in their number of boxes: retracing generalizes that, as in Keras' fit.
        return tf.function(function, jit_compile=jit, autograph=False, reduce_retracing=True)

    def step_function(jit: bool):
        # As keras' TensorFlow trainer builds it for fit() (_make_function's one_step_on_data).
        return tf.function(
            model.train_step, reduce_retracing=True, jit_compile=jit, autograph=False
        )

    def first_call(name: str, function, arguments, jit: bool = False):
        """Call ``function`` on the first batch and keep it as a row; its result, or None when
        XLA refused it (the row then carries the reason)."""
        start = time.perf_counter()
        try:
            result = function(*arguments(0))
            _finish(result)
        except Exception as error:  # XLA's refusals come as several TF error types
            if not jit:
                raise
            rows[name] = {"row": name, "error": one_line(error)}
            print(f"  {name}: {rows[name]['error']}", flush=True)
            return None
        rows[name] = {"row": name, "compile_seconds": time.perf_counter() - start}
        timed[name] = (function, arguments)
        return result

    # Once eagerly: Keras builds the compiled loss (and its variables) on its first call, which
    # would make the first tf.function that calls it trace twice.
    forward_loss(*batches[0])
    model.optimizer.build(model.trainable_variables)
    before = _state(model)
    xla = not args.no_xla

    # Back to back, alone: interleaved, the pipeline would fill its buffers during the others.
    seconds = median_seconds(lambda _: next(iterator), args.repeats)
    rows["input"] = {"row": "input", "seconds": seconds}
    predicted = [forward(images) for images, _ in batches]
    first_call("forward", graph(forward), lambda i: (batches[i][0],))
    if xla:
        first_call("forward XLA", graph(forward, True), lambda i: (batches[i][0],), jit=True)
    first_call("assign", graph(assign), lambda i: (*batches[i], predicted[i]))
    first_call("assign" + FORMER, graph(assign), lambda i: (*former[i], predicted[i]))
    first_call("forward+loss", graph(forward_loss), lambda i: batches[i])

    comparison: dict = {}
    _restore(model, before)  # training-mode calls move the normalization statistics
    plain = first_call("forward+loss+grad", graph(forward_loss_grad), lambda i: batches[i])
    if xla:
        name = "forward+loss+grad XLA"
        compiled = first_call(name, graph(forward_loss_grad, True), lambda i: batches[i], True)
        if compiled is not None:
            comparison |= gradient_difference(plain, compiled)
    for name, jit in (("train_step", False), ("train_step XLA", True)):
        if jit and not xla:
            continue
        _restore(model, before)
        model.reset_metrics()  # so that "loss" is this step's alone
        logs = first_call(name, step_function(jit), lambda i: (batches[i],), jit)
        if logs is not None:
            comparison["xla_loss" if jit else "plain_loss"] = float(logs["loss"])
    _restore(model, before)
    model.reset_metrics()
    logs = first_call("train_step" + FORMER, step_function(False), lambda i: (former[i],))
    comparison["image_max_loss"] = float(logs["loss"])  # the same step: the same loss
    if xla:  # as a run with model.jit_compile trains: one shape for every batch, one compile
        _restore(model, before)
        model.reset_metrics()
        first_call("train_step XLA" + FORMER, step_function(True), lambda i: (former[i],), True)
    if "xla_loss" in comparison:
        comparison["loss_diff"] = abs(comparison["xla_loss"] - comparison["plain_loss"])
    _restore(model, before)
    product = matmul_function(args.matmul_size)
    matmul = f"matmul {args.matmul_size}^2"
    first_call(matmul, product, lambda i: ())

    for function, arguments in timed.values():
        for index in range(1, count):
            _finish(function(*arguments(index)))
    times: dict[str, list[float]] = {name: [] for name in timed}
    for repeat in range(args.repeats):
        for name, (function, arguments) in timed.items():
            start = time.perf_counter()
            _finish(function(*arguments(repeat % count)))
            times[name].append(time.perf_counter() - start)
    for name, function_arguments in timed.items():
        rows[name]["seconds"] = statistics.median(times[name])
        rows[name]["traces"] = function_arguments[0].experimental_get_tracing_count()
    peak = 2 * args.matmul_size**3 / rows[matmul]["seconds"]
    return list(rows.values()), comparison, peak


def gradient_difference(plain: tuple, compiled: tuple) -> dict:
    """``{"plain_grad_loss", "xla_grad_loss", "grad_diff"}`` of two (loss, gradients) results
    of forward + loss + gradients at the same weights, run as is and by XLA: "grad_diff" is the
    global norm of the gradients' difference over that of the plain ones."""
    import tensorflow as tf

    (plain_loss, plain_grads), (xla_loss, xla_grads) = plain, compiled
    difference = [x - p for x, p in zip(xla_grads, plain_grads, strict=True)]
    return {
        "plain_grad_loss": float(plain_loss),
        "xla_grad_loss": float(xla_loss),
        "grad_diff": float(tf.linalg.global_norm(difference) / tf.linalg.global_norm(plain_grads)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the folder holding loops111/")
    parser.add_argument("--out", required=True, help="where results.json is written")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per row")
    parser.add_argument("--batches", type=int, default=4, help="real batches drawn and cycled")
    parser.add_argument("--limit-images", type=int, help="the first N labeled images only")
    parser.add_argument("--matmul-size", type=int, default=4096)
    parser.add_argument("--no-xla", action="store_true", help="skip the XLA rows")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from emdl.errors import EmdlError

    try:
        for name in ("repeats", "batches", "matmul_size"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        model, config, iterator, images, most = build(args)
    except (EmdlError, ValueError) as exc:
        print(f"detector_step: {exc}", file=sys.stderr)
        return 1

    batch, window = config.data.batch_size, config.data.window
    print(
        f"{images} training images (at most {most} boxes in one), batches of {batch} x "
        f"{window} x {window}; timing ..."
    )
    rows, comparison, peak = measure(model, iterator, args, most)
    forward = forward_flops(model, (batch, window, window, 1))
    step = 3 * forward
    limit = flop_limit(step, peak)
    for row in rows:
        forwards = FORWARDS.get(row["row"].removesuffix(FORMER).removesuffix(" XLA"))
        if forwards and not row.get("error"):
            row["of_limit"] = fraction_of_limit(row["seconds"], forwards * forward, peak)

    print(
        f"{os.cpu_count()} CPU cores; forward {forward / 1e9:.1f} GFLOP, step (3 x forward) "
        f"{step / 1e9:.1f} GFLOP; fp32 matmul peak {peak / 1e9:.0f} GFLOP/s "
        f"({args.matmul_size}^2); FLOP limit {limit:.3f} s a step; median of {args.repeats}"
    )
    print(table(rows))
    refused = [row for row in rows if row.get("error")]
    for row in refused:
        print(f"XLA did not compile {row['row'].replace(' XLA', '')}: {row['error']}")
    print(
        f"boxes padded per batch: loss {comparison['plain_loss']:.6f} after one step; padded "
        f"to the {most} of the busiest image: {comparison['image_max_loss']:.6f}"
    )
    if "xla_loss" in comparison and "grad_diff" in comparison:
        print(
            f"XLA step from the same state: loss {comparison['xla_loss']:.6f} against "
            f"{comparison['plain_loss']:.6f} (diff {comparison['loss_diff']:.2e}); its "
            f"gradients differ from the plain ones by {comparison['grad_diff']:.2e} of their "
            "norm"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {
        "settings": vars(args),
        "training_images": images,
        "image_max_boxes": most,
        "cpu_cores": os.cpu_count(),
        "forward_flops": forward,
        "step_flops": step,
        "matmul_peak_flops_per_second": peak,
        "flop_limit_seconds": limit,
        "rows": rows,
        "xla": comparison,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
