"""What importing ``emdl`` does to the process: TensorFlow's oneDNN kernels are on unless the
user chose otherwise (checked in fresh processes, since TensorFlow reads the setting once)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ONEDNN = """
import os, emdl
from tensorflow.python.util import _pywrap_util_port
print(os.environ["TF_ENABLE_ONEDNN_OPTS"], _pywrap_util_port.IsMklEnabled())
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "1 True"), ("0", "0 False")])
def test_importing_emdl_turns_onednn_on_unless_the_user_set_it(given, expected):
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    if given is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = given
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [sys.executable, "-c", ONEDNN], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.split("\n")[-2] == expected
