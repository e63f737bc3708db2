"""Child processes of ``kdrec demo``: started in their own process groups, stopped cleanly.

Each child runs in a new session (its own process group), so a Ctrl-C in the terminal reaches
only the demo, which then stops the children in reverse start order: SIGTERM to the whole
group, SIGKILL to whatever is left after a grace period. On Linux every child also gets
``PR_SET_PDEATHSIG`` = SIGTERM, so even a demo killed with SIGKILL leaves no orphan behind.
Output goes to one log file per child; ``tail`` shows its end when something goes wrong.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    reported: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


class Supervisor:
    """Starts named children with one environment and stops all of them; a context manager."""

    def __init__(self, log_dir: Path, env: Mapping[str, str], cwd: Path | None = None,
                 grace_s: float = 10.0) -> None:
        self.log_dir = Path(log_dir)
        self.env = dict(env)
        self.cwd = cwd
        self.grace_s = grace_s
        self.children: list[Child] = []

    def start(self, name: str, argv: Sequence[str]) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as out:
            process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       env=self.env, cwd=self.cwd, start_new_session=True,
                                       preexec_fn=_die_with_parent)
        child = Child(name, list(argv), process, log_path)
        self.children.append(child)
        log.info("started %s (pid %d, log %s)", name, process.pid, log_path)
        return child

    def exited(self) -> list[Child]:
        """Children that ended since the last call (each reported once)."""
        out = []
        for child in self.children:
            if not child.reported and not child.running:
                child.reported = True
                out.append(child)
        return out

    def stop_all(self) -> None:
        """SIGTERM every child's process group (newest first), SIGKILL what is left after the grace period."""
        alive = [child for child in reversed(self.children) if child.running]
        for child in alive:
            _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for child in alive:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) ignored SIGTERM for %.0f s; killing it", child.name, child.pid, self.grace_s)
        for child in reversed(self.children):
            _signal_group(child.pid, signal.SIGKILL)  # stragglers of the group, if any
            if child.process.poll() is None:
                child.process.wait()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def wait_http(url: str, timeout_s: float, alive: Child | None = None, interval_s: float = 0.2) -> bool:
    """Poll ``url`` until it answers 200; False on timeout or when ``alive`` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if alive is not None and not alive.running:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(interval_s)
    return False
