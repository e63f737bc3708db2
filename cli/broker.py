"""``kdrec broker``: run the embedded local Kafka-protocol broker in the foreground."""

from __future__ import annotations

import signal
from types import FrameType

import typer

from cli.context import fail, settings
from stream.broker import BrokerError, EmbeddedBroker

app = typer.Typer(help="The embedded local Kafka-protocol broker.")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command("broker")
def broker() -> None:
    """Run the local broker (in memory, loopback, KDREC_KAFKA__BOOTSTRAP_SERVERS) until Ctrl-C.

    Creates kdrec's topics with the configured partitions. Everything is lost when it stops.
    """
    kafka = settings().kafka
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in the background
    try:
        with EmbeddedBroker(kafka) as running:
            topics = ", ".join(f"{name} ({count})" for name, count in running.topics.items())
            typer.echo(f"broker listening on {running.bootstrap_servers}; topics: {topics}")
            typer.echo("Ctrl-C to stop")
            status = running.wait()
            tail = running.log_tail()
            raise fail(f"broker exited unexpectedly (status {status})\n{tail}")
    except KeyboardInterrupt:  # anywhere after start-up, not only inside wait(): the with-block stopped the broker
        typer.echo("stopping")
    except BrokerError as exc:
        raise fail(str(exc)) from None
