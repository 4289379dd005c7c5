"""What the command line shows: emdl's log lines at the chosen verbosity, and TensorFlow's
start-up noise kept out of them.

Library modules log through ``logging.getLogger(__name__)`` (children of ``"emdl"``): stage lines
such as ``evaluating on 2 validation images ...`` at INFO, details at DEBUG. Results are
printed by the command itself, whatever the verbosity.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile

# Lines TensorFlow's C++ runtime writes to stderr while it starts on a machine without a GPU
# driver, before its own log level applies (absl logs them before InitializeLog). Anything
# else written meanwhile is passed on.
STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|cudart_stub\.cc:\d+\] Could not find cuda drivers"
    r"|port\.cc:\d+\] oneDNN custom operations are on"
    r"|cuda_platform\.cc:\d+\] failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation_placer\.cc:\d+\] computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* in other operations, rebuild TensorFlow"
)
QUIET, NORMAL, VERBOSE = -1, 0, 1


def configure_logging(verbosity: int = NORMAL) -> None:
    """Send emdl's log lines to stderr as plain text: warnings only when ``QUIET``, stage lines
    (INFO) by default, everything when ``VERBOSE``."""
    level = {QUIET: logging.WARNING, NORMAL: logging.INFO}.get(verbosity, logging.DEBUG)
    logger = logging.getLogger("emdl")
    logger.setLevel(level)
    if not any(isinstance(handler, _Stderr) for handler in logger.handlers):
        logger.addHandler(_Stderr())
    logger.propagate = False


class _Stderr(logging.Handler):
    """Writes each message as a line to whatever ``sys.stderr`` is at the time (a test's
    capture, a redirected stream), not to the stream of when logging was configured."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def import_tensorflow_quietly(verbosity: int = NORMAL) -> None:
    """Import TensorFlow (and let it look for GPUs, where a machine without a driver complains)
    with its start-up noise (:data:`STARTUP_NOISE`) filtered out of stderr; every other line
    it writes is passed on, so a real error still shows. ``VERBOSE`` filters nothing. A no-op
    once TensorFlow is imported."""
    if "tensorflow" in sys.modules:
        return
    if verbosity >= VERBOSE:
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
    kept = without_startup_noise(text)
    if kept:
        print("\n".join(kept), file=sys.stderr)


def without_startup_noise(text: str) -> list[str]:
    """The non-empty lines of ``text`` that are not TensorFlow start-up noise."""
    return [line for line in text.splitlines() if line and not STARTUP_NOISE.search(line)]
