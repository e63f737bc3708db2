"""The demo's process supervision: process groups stopped with SIGTERM, then SIGKILL, nothing left;
children with a restart policy started again after a growing backoff; the app's exit ends ``serve``."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cli import demo_services
from cli.demo_services import ServeOptions
from cli.restart import Event, RestartPolicy
from cli.supervisor import Supervisor
from core.settings import KafkaSettings, Settings
from stream.net import free_port
from tests.app.live_demo import MARK, processes_with

# A child that starts a grandchild in its own process group, then both ignore SIGTERM.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c",
                      "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
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


# Counts its runs in a file; exits with status 3 at once, except run ``stable`` that stays up first.
CRASHY = """
import pathlib, sys, time
counter, stable_run, stay_s = pathlib.Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
run = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(run))
print(f"run {run}", flush=True)
if run == stable_run:
    time.sleep(stay_s)
sys.exit(3)
"""


def _poll_until(
    supervisor: Supervisor, done: Callable[[list[tuple[float, Event]]], bool], timeout_s: float = 30.0
) -> list[tuple[float, Event]]:
    """``poll`` every 20 ms until ``done(events so far)``; each event with the time it was seen."""
    seen: list[tuple[float, Event]] = []
    deadline = time.monotonic() + timeout_s
    while not done(seen):
        assert time.monotonic() < deadline, f"timed out; saw {[event.message for _, event in seen]}"
        seen += [(time.monotonic(), event) for event in supervisor.poll()]
        time.sleep(0.02)
    return seen


def _exits(seen: list[tuple[float, Event]]) -> list[Event]:
    return [event for _, event in seen if event.kind == "exited"]


def test_restart_policy_backoff_doubles_to_the_cap_and_resets_after_stable_uptime() -> None:
    policy = RestartPolicy(initial_s=1.0, factor=2.0, max_s=30.0, stable_s=60.0)
    assert [policy.delay(streak) for streak in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.next_streak(3, uptime_s=5.0) == 4
    assert policy.next_streak(3, uptime_s=60.0) == 1
    with pytest.raises(ValueError, match="bad restart policy"):
        RestartPolicy(initial_s=5.0, max_s=1.0)


def test_a_dying_child_is_restarted_after_a_growing_backoff_that_resets(tmp_path: Path) -> None:
    policy = RestartPolicy(initial_s=0.2, factor=2.0, max_s=0.8, stable_s=1.0)
    supervisor = Supervisor(tmp_path / "logs", dict(os.environ), grace_s=1.0)
    # runs 1-4 crash at once, run 5 stays up 1.5 s (> stable_s) before it crashes, run 6 crashes at once
    argv = [sys.executable, "-c", CRASHY, str(tmp_path / "runs"), "5", "1.5"]
    with supervisor:
        child = supervisor.start("crashy", argv, restart=policy)
        first_pid = child.pid
        seen = _poll_until(supervisor, lambda seen: len(_exits(seen)) == 6)
        assert [event.restart_in for event in _exits(seen)] == [0.2, 0.4, 0.8, 0.8, 0.2, 0.4]
        exits_at = [at for at, event in seen if event.kind == "exited"]
        restarts_at = [at for at, event in seen if event.kind == "restarted"]
        assert len(restarts_at) == 5 and child.restarts == 5 and supervisor.restart_counts() == {"crashy": 5}
        for exited_at, restarted_at, event in zip(exits_at, restarts_at, _exits(seen), strict=False):
            assert event.restart_in is not None and restarted_at - exited_at >= event.restart_in - 0.01
        first = _exits(seen)[0].message
        assert f"crashy (pid {first_pid}) exited with status 3" in first
        assert "restarting it in 0.2 s (restart 1)" in first and "run 1" in first
        assert next(event.message for _, event in seen if event.kind == "restarted").startswith(
            "crashy: restarted (restart 1), pid "
        )
        assert child.pid != first_pid
    text = child.log_path.read_text()  # appended across restarts: every run's lines survive
    assert [line for line in text.splitlines() if line.startswith("run ")] == [f"run {n}" for n in range(1, 7)]
    assert text.count("by the supervisor ---") == 5
    time.sleep(0.6)  # the sixth restart was pending; stop_all cancelled it
    assert supervisor.poll() == [] and child.restarts == 5
    assert (tmp_path / "runs").read_text() == "6"


def test_a_child_killed_with_sigkill_is_restarted_with_its_log_kept(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, dict(os.environ), grace_s=1.0)
    with supervisor:
        child = supervisor.start("polite", [sys.executable, "-c", POLITE], restart=RestartPolicy(initial_s=0.1))
        _wait_ready(child.log_path)
        killed = child.pid
        os.kill(killed, signal.SIGKILL)
        seen = _poll_until(supervisor, lambda seen: any(event.kind == "restarted" for _, event in seen))
        exit_event = _exits(seen)[0]
        assert f"polite (pid {killed}) was killed by SIGKILL" in exit_event.message
        assert f"last lines of {child.log_path}:\nready" in exit_event.message
        assert child.running and child.pid != killed and child.restarts == 1
        deadline = time.monotonic() + 20
        while child.log_path.read_text().count("ready") < 2:
            assert time.monotonic() < deadline, "the restarted child did not come up"
            time.sleep(0.05)


def test_children_stopped_by_stop_all_are_not_restarted(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, dict(os.environ), grace_s=1.0)
    child = supervisor.start("polite", [sys.executable, "-c", POLITE], restart=RestartPolicy(initial_s=0.05))
    _wait_ready(child.log_path)
    supervisor.stop_all()
    stopped = time.monotonic()
    seen = _poll_until(supervisor, lambda seen: time.monotonic() - stopped > 0.5)
    assert [event.kind for _, event in seen] == ["exited"]
    assert seen[0][1].restart_in is None and "was killed by SIGTERM" in seen[0][1].message
    assert "not restarting it" in seen[0][1].message
    assert not child.running and child.restarts == 0


# The demo's app, standing in for Streamlit: answers 200 on every path until it is killed.
FAKE_APP = """
import http.server, sys
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
print("app ready", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
"""
# Stands in for `kdrec consume` / `scheduler` / `traffic`: up briefly, then crashes.
FAKE_KDREC = "import sys, time; print('up', *sys.argv[1:2], flush=True); time.sleep(0.3); sys.exit(2)"


def test_serve_restarts_crashing_services_and_ends_when_the_app_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"serve-{os.getpid()}-{time.monotonic_ns()}"
    monkeypatch.setenv(MARK, marker)
    monkeypatch.setattr(demo_services, "kdrec", lambda *args: [sys.executable, "-c", FAKE_KDREC, *args])
    monkeypatch.setattr(
        demo_services, "streamlit_argv", lambda options: [sys.executable, "-c", FAKE_APP, str(options.port)]
    )
    config = Settings(
        database_url=f"sqlite:///{tmp_path / 'kdrec.db'}",
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
    )
    options = ServeOptions(
        dataset="tinyflix",
        port=free_port(),
        log_dir=tmp_path / "logs",
        grace_s=2.0,
        restart=RestartPolicy(initial_s=0.1, max_s=0.4, stable_s=30.0),
    )
    lines: list[str] = []

    def kill_the_app_once_services_restarted() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = "\n".join(lines)
            pid = re.search(r"^app: pid (\d+)", text, re.M)
            if pid and "kdrec is live" in text and "traffic: restarted (restart 2)" in text:
                os.kill(int(pid.group(1)), signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_app_once_services_restarted, daemon=True)
    killer.start()
    status = demo_services.serve(config, options, lines.append, time.monotonic())
    killer.join(5)
    text = "\n".join(lines)
    assert status == 1, text
    for name in ("consumer", "scheduler", "traffic"):
        assert re.search(
            rf"^{name} \(pid \d+\) exited with status 2 after \d+\.\d s up; restarting it in 0\.1 s "
            r"\(restart 1\); last lines of .*\nup",
            text,
            re.M,
        ), text
        assert f"{name}: restarted (restart 2), pid" in text
    assert re.search(r"^app \(pid \d+\) was killed by SIGKILL after .* not restarting it", text, re.M), text
    assert "error: the app stopped" in text and text.endswith("stopped")
    assert re.search(r"^restarts: consumer \d+, scheduler \d+, traffic \d+$", text, re.M), text
    assert processes_with(marker) == []
