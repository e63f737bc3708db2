"""When a supervised child that exited on its own is started again, and how that is reported.

Like systemd's ``Restart=on-failure`` with a growing ``RestartSec`` (or a Kubernetes pod's
crash-loop backoff): the first restart waits ``initial_s``, each further one in a row waits
``factor`` times longer, up to ``max_s``; a child that had stayed up for ``stable_s`` before it
exited counts as healthy again and starts over at ``initial_s``. Children stopped by the
supervisor itself are never restarted (see ``Supervisor.stop_all``).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class RestartPolicy:
    initial_s: float = 1.0
    """Wait before the first restart of a streak."""
    factor: float = 2.0
    """Each further restart in a row waits this many times longer ..."""
    max_s: float = 30.0
    """... but never longer than this."""
    stable_s: float = 60.0
    """A child up at least this long before it exited starts a new streak (backoff reset)."""

    def __post_init__(self) -> None:
        if self.initial_s < 0 or self.factor < 1 or self.max_s < self.initial_s or self.stable_s < 0:
            raise ValueError(f"bad restart policy {self}: need 0 <= initial_s <= max_s, factor >= 1, stable_s >= 0")

    def delay(self, streak: int) -> float:
        """Seconds to wait before restart number ``streak`` (1, 2, ...) of a crash streak."""
        return min(self.max_s, self.initial_s * self.factor ** max(0, streak - 1))

    def next_streak(self, streak: int, uptime_s: float) -> int:
        """The streak after an exit following ``uptime_s`` seconds up."""
        return 1 if uptime_s >= self.stable_s else streak + 1

    def describe(self) -> str:
        return (
            f"backoff {self.initial_s:g} s x{self.factor:g} up to {self.max_s:g} s, reset after {self.stable_s:g} s up"
        )


def describe_status(returncode: int) -> str:
    """``exited with status 1`` / ``was killed by SIGKILL``, from a Popen return code."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"was killed by {name}"


@dataclass(frozen=True)
class Event:
    """Something the supervisor saw or did to one child, with a message for the terminal."""

    kind: Literal["exited", "restarted", "restart_failed"]
    name: str
    message: str
    restart_in: float | None = None
    """Seconds until the next start (exits and failed restarts); None when none is scheduled."""


def exited(
    name: str,
    pid: int,
    returncode: int,
    uptime_s: float,
    log_path: Path,
    tail: str,
    restart_in: float | None,
    restarts: int,
) -> Event:
    """The report of an exit: status, uptime, when (or whether) it restarts, the log's last lines."""
    plan = "not restarting it" if restart_in is None else f"restarting it in {restart_in:g} s (restart {restarts + 1})"
    message = (
        f"{name} (pid {pid}) {describe_status(returncode)} after {uptime_s:.1f} s up; {plan}; "
        f"last lines of {log_path}:\n{tail}"
    )
    return Event("exited", name, message, restart_in)


def restarted(name: str, pid: int, restarts: int, log_path: Path) -> Event:
    return Event("restarted", name, f"{name}: restarted (restart {restarts}), pid {pid}, log {log_path}")


def restart_failed(name: str, error: OSError, retry_in: float) -> Event:
    return Event(
        "restart_failed", name, f"{name}: could not be restarted ({error}); trying again in {retry_in:g} s", retry_in
    )
