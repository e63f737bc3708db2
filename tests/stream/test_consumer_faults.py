"""The consumer under failures: kill -9 mid-stream, the broker restarting empty, the database away."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from core.settings import KafkaSettings
from stream.broker import EmbeddedBroker, free_port
from tests.stream.consumer_helpers import (
    add_catalogue,
    assert_applied_exactly_once,
    click_stream,
    consumer_thread,
    event_count,
    fast_group,
    publish_student,
    send_all,
    spawn_consumer,
    wait_assigned,
    wait_until,
)
from tests.stream.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_kill_9_mid_stream_then_restart_applies_every_event_once(
    kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path
) -> None:
    kafka = fast_group(kafka)
    add_catalogue(sessions)
    publish_student(sessions, tmp_path, seed=1)
    stream = click_stream(20_000, users=500, prefix="k")
    send_all(kafka, stream.events)
    log_path = tmp_path / "consumer.log"

    first = spawn_consumer(kafka, database_url, log_path)
    try:
        wait_until(
            lambda: event_count(sessions) >= 3_000 or first.poll() is not None,
            180,
            "the first consumer to apply 3,000 events",
        )
        assert first.poll() is None, log_path.read_text()[-3000:]
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    at_kill = event_count(sessions)
    assert 0 < at_kill < 20_000, f"{at_kill} events applied when killed: not mid-stream"

    second = spawn_consumer(kafka, database_url, log_path)
    try:
        wait_until(
            lambda: event_count(sessions) == 20_000 or second.poll() is not None,
            180,
            "the restarted consumer to apply all 20,000 events",
        )
        assert second.poll() is None, log_path.read_text()[-3000:]
        second.send_signal(signal.SIGTERM)  # clean shutdown: finish the batch, commit, close
        assert second.wait(30) == 0, log_path.read_text()[-3000:]
    finally:
        second.kill()
    summary = log_path.read_text().strip().splitlines()
    print(f"\nkilled at {at_kill} events; restart: {[line for line in summary if 'stopped after' in line]}")
    assert_applied_exactly_once(sessions, stream)


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_consumer_recovers_by_itself_when_the_broker_restarts_empty(
    database_url: str, sessions, tmp_path: Path
) -> None:
    add_catalogue(sessions)
    publish_student(sessions, tmp_path, seed=1)
    prefix = f"r{uuid.uuid4().hex[:8]}"
    names = KafkaSettings(
        events_topic=f"{prefix}.events",
        dlq_topic=f"{prefix}.dlq",
        recommendations_topic=f"{prefix}.recs",
        control_topic=f"{prefix}.control",
        consumer_group=f"{prefix}-group",
    )
    port = free_port()
    broker = EmbeddedBroker(names, port=port).start()
    kafka = fast_group(broker.settings)
    before = click_stream(300, users=30, prefix="before-")
    after = click_stream(300, users=30, prefix="after-", start_ts=1_800_000_000_000, seed=1)
    try:
        with consumer_thread(kafka, database_url) as consumer:
            send_all(kafka, before.events)
            wait_until(lambda: event_count(sessions) == 300, 60, "the first 300 events")
            broker.stop()  # in memory: topics, records and committed offsets are gone
            wait_until(lambda: consumer.metrics.broker_outages >= 1, 30, "the consumer to notice")
            time.sleep(1.0)  # a few retries with backoff while nothing listens
            broker = EmbeddedBroker(names, port=port, create_topics=False).start()
            wait_until(lambda: consumer.metrics.broker_recoveries >= 1, 60, "the consumer to reconnect")
            wait_assigned([consumer], kafka.partitions)
            send_all(kafka, after.events)
            wait_until(lambda: event_count(sessions) == 600, 60, "the events published after the restart")
    finally:
        broker.stop()
    assert_applied_exactly_once(sessions, type(before)(before.events + after.events))


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_batch_is_retried_while_the_database_is_away(
    kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path
) -> None:
    add_catalogue(sessions)
    publish_student(sessions, tmp_path, seed=1)
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    first = click_stream(500, users=50, prefix="up-")
    second = click_stream(500, users=50, prefix="down-", start_ts=1_800_000_000_000, seed=1)
    try:
        with consumer_thread(fast_group(kafka), proxied) as consumer:
            send_all(kafka, first.events)
            wait_until(lambda: event_count(sessions) == 500, 60, "the first 500 events")
            proxy.stop()  # connections cut and refused, as in a database restart
            send_all(kafka, second.events)
            wait_until(lambda: consumer.metrics.batch_retries >= 2, 60, "the batch to be retried")
            assert event_count(sessions) == 500
            proxy.start()
            wait_until(lambda: event_count(sessions) == 1_000, 60, "the retried batch to be applied")
    finally:
        proxy.stop()
    assert_applied_exactly_once(sessions, type(first)(first.events + second.events))
