"""Child processes of ``kdrec demo``: started in their own process groups, stopped cleanly.

Each child runs in a new session (its own process group), so a Ctrl-C in the terminal reaches
only the demo, which then stops the children in reverse start order: SIGTERM to the whole
group, SIGKILL to whatever is left after a grace period. On Linux every child also gets
``PR_SET_PDEATHSIG`` = SIGTERM, so even a demo killed with SIGKILL leaves no orphan behind.
Output goes to one log file per child; ``tail`` shows its end when something goes wrong.
A child started with a ``RestartPolicy`` (``cli.restart``) that exits on its own is started
again after a growing backoff, appending to the same log, so its crash lines survive.
"""

from __future__ import annotations

import contextlib
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
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from cli import restart as report
from cli.restart import Event, RestartPolicy

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    log_path: Path
    restart: RestartPolicy | None = None
    """None: an exit is only reported (the app's ends the demo)."""
    started: float = field(default_factory=time.monotonic)
    reported: bool = False
    restarts: int = 0
    """How often the supervisor started it again after it exited on its own."""
    streak: int = 0
    """Exits in a row, each after less than ``restart.stable_s`` up (drives the backoff)."""
    restart_at: float | None = None
    """Monotonic time of the scheduled restart; None when none is due."""

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
    """Starts named children with one environment, restarts the ones with a policy, stops all; a context manager."""

    def __init__(self, log_dir: Path, env: Mapping[str, str], cwd: Path | None = None, grace_s: float = 10.0) -> None:
        self.log_dir = Path(log_dir)
        self.env = dict(env)
        self.cwd = cwd
        self.grace_s = grace_s
        self.children: list[Child] = []
        self.stopping = False

    def _spawn(self, argv: list[str], out: BinaryIO) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def start(self, name: str, argv: Sequence[str], restart: RestartPolicy | None = None) -> Child:
        """Start ``argv`` with a fresh ``<log_dir>/<name>.log``; with ``restart``, restart it when it exits."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as out:
            process = self._spawn(list(argv), out)
        child = Child(name, list(argv), process, log_path, restart)
        self.children.append(child)
        log.info("started %s (pid %d, log %s)", name, process.pid, log_path)
        return child

    def poll(self) -> list[Event]:
        """Report each exit once, schedule the restart of children with a policy, start the ones due."""
        now = time.monotonic()
        events = []
        for child in self.children:
            if child.restart_at is not None and now >= child.restart_at:
                events.append(self._restart(child, now))
            elif not child.reported and not child.running:
                events.append(self._exited(child, now))
        return events

    def exited(self) -> list[Child]:
        """Children that ended since the last call (each reported once); a ``poll`` that keeps only exits."""
        names = {event.name for event in self.poll() if event.kind == "exited"}
        return [child for child in self.children if child.name in names]

    def restart_counts(self) -> dict[str, int]:
        return {child.name: child.restarts for child in self.children}

    def _exited(self, child: Child, now: float) -> Event:
        child.reported = True
        _signal_group(child.pid, signal.SIGKILL)  # what it left in its group goes with it, as in a systemd unit
        uptime = now - child.started
        delay = None
        if child.restart is not None and not self.stopping:
            child.streak = child.restart.next_streak(child.streak, uptime)
            delay = child.restart.delay(child.streak)
            child.restart_at = now + delay
        event = report.exited(
            child.name, child.pid, child.process.returncode, uptime, child.log_path, child.tail(), delay, child.restarts
        )
        log.warning("%s", event.message.split("\n", 1)[0])
        return event

    def _restart(self, child: Child, now: float) -> Event:
        assert child.restart is not None
        child.restart_at = None
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        banner = f"\n--- {stamp}: restart {child.restarts + 1} of {child.name} by the supervisor ---\n"
        try:
            with child.log_path.open("ab") as out:
                out.write(banner.encode())
                out.flush()
                process = self._spawn(child.argv, out)
        except OSError as exc:
            child.streak += 1
            delay = child.restart.delay(child.streak)
            child.restart_at = now + delay
            log.error("could not restart %s: %s; trying again in %g s", child.name, exc, delay)
            return report.restart_failed(child.name, exc, delay)
        child.process, child.started, child.reported = process, now, False
        child.restarts += 1
        log.info("restarted %s (pid %d, restart %d, log %s)", child.name, process.pid, child.restarts, child.log_path)
        return report.restarted(child.name, process.pid, child.restarts, child.log_path)

    def stop_all(self) -> None:
        """SIGTERM every child's process group (newest first), SIGKILL what is left after the grace period.

        Pending restarts are cancelled and nothing is restarted afterwards."""
        self.stopping = True
        for child in self.children:
            child.restart_at = None
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

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def wait_http(url: str, timeout_s: float, alive: Child | None = None, interval_s: float = 0.2) -> bool:
    """Poll ``url`` until it answers 200; False on timeout or when ``alive`` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if alive is not None and not alive.running:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(interval_s)
    return False
