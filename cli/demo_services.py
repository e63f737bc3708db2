"""The live system of ``kdrec demo``: broker, consumer, scheduler, live traffic and the app.

The broker is the embedded one (``stream.broker``) when the bootstrap servers are on loopback
and nothing listens there; every other part is a ``kdrec`` (or ``streamlit``) child process
under a ``Supervisor`` sharing the demo's environment, so they all read the same ``KDREC_``
settings. Parts whose command does not exist yet are skipped with a note. A consumer, scheduler
or traffic process that exits on its own is restarted with backoff (``ServeOptions.restart``);
the app's exit ends the demo.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from kafka.errors import KafkaError

from cli.restart import RestartPolicy
from cli.supervisor import Child, Supervisor, wait_http
from core.settings import Settings
from stream.broker import BrokerError, EmbeddedBroker, ensure_local_broker
from stream.net import any_reachable
from stream.topics import ensure_topics

log = logging.getLogger(__name__)
Echo = Callable[[str], None]


@dataclass(frozen=True)
class ServeOptions:
    dataset: str
    """Name or folder the children serve (exported as KDREC_DATASET)."""
    port: int = 8501
    address: str = "127.0.0.1"
    app: bool = True
    consumer: bool = True
    scheduler: bool = True
    traffic: bool = True
    rate: float = 5.0
    log_dir: Path = Path("var/logs")
    app_timeout_s: float = 90.0
    grace_s: float = 10.0
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    """How the consumer, scheduler and traffic are restarted after they exit on their own."""


class ServiceError(RuntimeError):
    """A part of the live system could not be started."""


def kdrec_commands() -> set[str]:
    """Names of the ``kdrec`` commands and groups that exist in this checkout."""
    import typer.main

    from cli.main import app

    group = typer.main.get_command(app)
    return set(getattr(group, "commands", {}))


def app_script() -> Path:
    spec = importlib.util.find_spec("app")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("the kdrec app package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "main.py"


def kdrec(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


def streamlit_argv(options: ServeOptions) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_script()),
        "--server.headless=true",
        f"--server.port={options.port}",
        f"--server.address={options.address}",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--server.runOnSave=false",
        "--client.toolbarMode=viewer",
    ]


def child_env(config: Settings, options: ServeOptions) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KDREC_DATASET": options.dataset,
            "KDREC_DATABASE_URL": config.database_url,
            "KDREC_KAFKA__BOOTSTRAP_SERVERS": config.kafka.bootstrap_servers,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_broker(config: Settings, echo: Echo) -> EmbeddedBroker | None:
    """The embedded broker when it is needed; a clear error when a configured Kafka is down."""
    broker = ensure_local_broker(config.kafka)
    if broker is not None:
        echo(f"broker: embedded, listening on {broker.bootstrap_servers} (in memory)")
        return broker
    if not any_reachable(config.kafka.bootstrap_servers):
        raise ServiceError(
            f"no Kafka broker reachable at {config.kafka.bootstrap_servers} (and the embedded "
            "one is off or the address is not loopback)"
        )
    ensure_topics(config.kafka)
    echo(f"broker: using the one at {config.kafka.bootstrap_servers}")
    return None


def start_children(supervisor: Supervisor, options: ServeOptions, echo: Echo) -> Child | None:
    """Consumer, scheduler, traffic and app; returns the app's child (None with --no-app)."""
    commands = kdrec_commands()
    wanted = [
        ("consumer", options.consumer, "consume", kdrec("consume")),
        ("scheduler", options.scheduler, "scheduler", kdrec("scheduler")),
        (
            "traffic",
            options.traffic,
            "traffic",
            kdrec("traffic", "--dataset", options.dataset, "--rate", f"{options.rate:g}"),
        ),
    ]
    for name, enabled, command, argv in wanted:
        if not enabled:
            continue
        if command not in commands:
            echo(f"{name}: not started (`kdrec {command}` does not exist in this checkout yet)")
            continue
        child = supervisor.start(name, argv, restart=options.restart)
        echo(f"{name}: pid {child.pid}, log {child.log_path}")
    if not options.app:
        return None
    child = supervisor.start("app", streamlit_argv(options))
    echo(f"app: pid {child.pid}, log {child.log_path}")
    return child


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(config: Settings, options: ServeOptions, echo: Echo, started: float) -> int:
    """Run the live system until Ctrl-C / SIGTERM; returns an exit status."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    # Ctrl-C must work even when started from a script in the background, where the shell
    # hands SIGINT over ignored (and Python then installs no KeyboardInterrupt handler).
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    broker: EmbeddedBroker | None = None
    supervisor = Supervisor(options.log_dir, child_env(config, options), grace_s=options.grace_s)
    status = 0
    try:
        broker = start_broker(config, echo)
        app_child = start_children(supervisor, options, echo)
        if app_child is not None:
            host = "localhost" if options.address in ("127.0.0.1", "0.0.0.0") else options.address
            url = f"http://{host}:{options.port}"
            if not wait_http(f"http://127.0.0.1:{options.port}/_stcore/health", options.app_timeout_s, app_child):
                raise ServiceError(
                    f"the app did not answer on {url} within {options.app_timeout_s:.0f} s:\n{app_child.tail()}"
                )
            echo(f"\nkdrec is live at {url}  (served {time.monotonic() - started:.1f} s after start; Ctrl-C to stop)")
        while True:
            if broker is not None and not broker.running:
                raise ServiceError(f"the embedded broker stopped:\n{broker.log_tail()}")
            for event in supervisor.poll():
                echo(event.message)
                if event.kind == "exited" and app_child is not None and event.name == app_child.name:
                    raise ServiceError("the app stopped")
            time.sleep(0.5)
    except KeyboardInterrupt:
        echo("\nstopping ...")
    except (ServiceError, BrokerError, KafkaError) as exc:
        echo(f"error: {exc}")
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        supervisor.stop_all()
        if broker is not None:
            broker.stop()
        restarts = {name: count for name, count in supervisor.restart_counts().items() if count}
        if restarts:
            echo("restarts: " + ", ".join(f"{name} {count}" for name, count in restarts.items()))
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    echo("stopped")
    return status
