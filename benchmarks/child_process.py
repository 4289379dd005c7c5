"""A benchmark contender run as a child process of its own, so that what TensorFlow fixes once per
process (its kernels, its thread pools, the setting compared) is that contender's alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence


def run_json(
    arguments: Sequence[str], failure: str, environment: Mapping[str, str] | None = None
) -> dict:
    """Run ``python SCRIPT ARGUMENTS`` (``arguments[0]`` the script) with ``environment`` over
    this process's (TensorFlow's C++ log lines quieted unless set) and return the JSON object
    of its last line of output. A failed child ends the benchmark with one line:
    ``{failure}: {the child's last line of stderr}``."""
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ, **(environment or {})}
    done = subprocess.run([sys.executable, *arguments], env=env, capture_output=True, text=True)
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"{failure}: {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])
