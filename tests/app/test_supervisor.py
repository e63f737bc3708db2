"""The demo's process supervision: process groups stopped with SIGTERM, then SIGKILL, nothing left."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from cli.supervisor import Supervisor
from tests.app.live_demo import MARK, processes_with

# A child that starts a grandchild in its own process group, then both ignore SIGTERM.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
print("ready", flush=True)
time.sleep(60)
"""
POLITE = "import time; print('ready', flush=True); time.sleep(60)"


def _wait_ready(path: Path, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while "ready" not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, "child did not start"
        time.sleep(0.05)


def test_stop_all_terminates_and_kills_whole_process_groups(tmp_path: Path) -> None:
    marker = f"supervisor-{os.getpid()}-{time.monotonic_ns()}"
    supervisor = Supervisor(tmp_path, {**os.environ, MARK: marker}, grace_s=1.0)
    polite = supervisor.start("polite", [sys.executable, "-c", POLITE])
    stubborn = supervisor.start("stubborn", [sys.executable, "-c", STUBBORN])
    _wait_ready(polite.log_path)
    _wait_ready(stubborn.log_path)
    assert len(processes_with(marker)) == 3
    started = time.monotonic()
    supervisor.stop_all()
    assert time.monotonic() - started < 10
    assert polite.process.returncode == -15  # SIGTERM was enough
    assert stubborn.process.returncode == -9  # ignored SIGTERM: killed after the grace period
    deadline = time.monotonic() + 5
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == []  # the grandchild went with its group
    assert [child.name for child in supervisor.exited()] == ["polite", "stubborn"]
