"""emdl.console: log lines at each verbosity, TensorFlow's start-up noise filtered (and nothing
else), and a command's error as the only line a fresh process prints."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from emdl.cli import main
from emdl.console import NORMAL, QUIET, VERBOSE, configure_logging, without_startup_noise

STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796133791.659390   11501 port.cc:153] oneDNN custom operations are on. You may see...
I0000 00:00:1796133791.659692   11501 cudart_stub.cc:31] Could not find cuda drivers on your
E0000 00:00:1796133793.855664   11501 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA
E0000 00:00:1796133793.855664   11501 op_kernel.cc:1830] OP_REQUIRES failed: out of memory
Traceback (most recent call last):
"""


def test_only_the_known_start_up_lines_are_filtered():
    assert without_startup_noise(STARTUP) == [
        "E0000 00:00:1796133793.855664   11501 op_kernel.cc:1830] OP_REQUIRES failed: "
        "out of memory",
        "Traceback (most recent call last):",
    ]


@pytest.mark.parametrize(
    "verbosity, shown",
    [(QUIET, ["warn"]), (NORMAL, ["info", "warn"]), (VERBOSE, ["debug", "info", "warn"])],
)
def test_log_lines_at_each_verbosity(verbosity, shown, capsys):
    configure_logging(verbosity)
    log = logging.getLogger("emdl.somewhere")
    log.debug("debug")
    log.info("info")
    log.warning("warn")
    assert capsys.readouterr().err.splitlines() == shown
    configure_logging(NORMAL)
    # Configured again, still one handler of emdl's own (pytest adds its capture handlers).
    own = [h for h in logging.getLogger("emdl").handlers if type(h).__name__ == "_Stderr"]
    assert len(own) == 1


def test_quiet_hides_stage_lines(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "trained").write_text("")
    # A run whose training ended is finished first, which logs a stage line (then fails here on
    # the empty config, after the line).
    assert main(["export", str(run), "--serving-dir", str(tmp_path / "s")]) == 1
    assert "finishing the run" in capsys.readouterr().err
    assert main(["-q", "export", str(run), "--serving-dir", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert "finishing the run" not in err and err.startswith("emdl: error: ")


def test_a_fresh_process_prints_only_the_error(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_CPP")}
    missing = tmp_path / "no-run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emdl.cli",
            "evaluate",
            str(missing),
            "--labels",
            "x.xml",
            "--images",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"emdl: error: {missing}")
