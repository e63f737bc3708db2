"""``kdrec demo`` as a subprocess on a tiny world, free ports, and a marker to find its processes.

Every process the demo starts inherits ``KDREC_TEST_MARK``; ``processes_with(marker)`` scans
/proc for it, so a test can prove that nothing is left behind after Ctrl-C.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cli.supervisor import wait_http
from core.settings import KafkaSettings
from stream.net import free_port
from tests.app.world import World

ROOT = Path(__file__).resolve().parents[2]
MARK = "KDREC_TEST_MARK"


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment holds ``KDREC_TEST_MARK=<marker>``."""
    needle = f"{MARK}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":  # a zombie has exited; it only waits to be reaped
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


@dataclass
class LiveDemo:
    world: World
    process: subprocess.Popen[bytes]
    port: int
    kafka: KafkaSettings
    marker: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child_pid(self, name: str) -> int:
        """The pid of the child's latest start, from the demo's ``<name>: pid N`` / ``<name>: restarted ...`` lines."""
        found = re.findall(rf"^{name}: (?:restarted \(restart \d+\), )?pid (\d+)", self.output(), re.M)
        if not found:
            raise LookupError(f"the demo has not reported a pid for {name}")
        return int(found[-1])

    def stop(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C (SIGINT) to the demo, as a terminal would; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return int(self.process.returncode)


def start_demo(world: World, tmp: Path, rate: float = 10.0, timeout_s: float = 150.0) -> LiveDemo:
    port, kafka_port, marker = free_port(), free_port(), uuid.uuid4().hex
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{kafka_port}")
    env = {
        **os.environ,
        **world.env(),
        "KDREC_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        MARK: marker,
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp / "demo.log"
    argv = [
        sys.executable,
        "-m",
        "cli.main",
        "demo",
        "--port",
        str(port),
        "--rate",
        f"{rate:g}",
        "--log-dir",
        str(tmp / "logs"),
    ]
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    demo = LiveDemo(world, process, port, kafka, marker, log_path)
    started = time.monotonic()
    while "kdrec is live at" not in demo.output():
        if process.poll() is not None or time.monotonic() - started > timeout_s:
            demo.stop()
            raise RuntimeError(f"kdrec demo did not come up:\n{demo.output()[-4000:]}")
        time.sleep(0.2)
    if not wait_http(f"{demo.url}/_stcore/health", 10):
        raise RuntimeError("the app stopped answering")
    return demo
