"""``stream.poison`` on real kafka-python record batches: a corrupt compressed payload and a
failed CRC are retried, then skipped as one ``PoisonBatch`` naming the offsets; good batches
around them decode as usual."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c
from kafka import TopicPartition
from kafka.consumer.fetcher import Fetcher
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder

from stream.poison import PoisonBatch, PoisonPolicy, PoisonRetry, guarded_records_class

TP = TopicPartition("events", 0)
GZIP = 1


def batch(first: int, count: int, compression: int = GZIP) -> bytearray:
    builder = MemoryRecordsBuilder(magic=2, compression_type=compression, batch_size=1 << 20)
    for i in range(count):
        builder.append(timestamp=1_000 + i, key=b"k", value=b'{"n": %d}' % (first + i), headers=[])
    builder.close()
    raw = bytearray(builder.buffer())
    struct.pack_into(">q", raw, 0, first)  # the base offset the broker assigns (outside the CRC)
    return raw


def corrupt_payload(raw: bytearray) -> bytearray:
    """Garbage in the compressed records, with a CRC that matches it (the broker accepts it)."""
    header = DefaultRecordBatch.HEADER_STRUCT.size
    raw[header + 2 : header + 12] = b"\x00" * 10
    struct.pack_into(
        ">I", raw, DefaultRecordBatch.CRC_OFFSET, crc32c(bytes(raw[DefaultRecordBatch.ATTRIBUTES_OFFSET :]))
    )
    return raw


def flip_a_byte(raw: bytearray) -> bytearray:
    raw[-1] ^= 0xFF  # the CRC no longer matches
    return raw


def take(policy: PoisonPolicy, buffer: bytes, fetch_offset: int) -> tuple[list, object]:
    records = guarded_records_class(Fetcher.PartitionRecords, policy)(fetch_offset, TP, MemoryRecords(buffer))
    return records.take(), records


@pytest.mark.parametrize("damage", [corrupt_payload, flip_a_byte], ids=["corrupt-gzip", "bad-crc"])
def test_a_damaged_batch_is_retried_then_skipped_and_the_next_one_decodes(damage) -> None:
    policy = PoisonPolicy(attempts=3)
    good, bad, after = batch(0, 3), damage(batch(3, 4)), batch(7, 2)

    # The good batch before it is returned; the bad one is not counted until it comes first.
    out, records = take(policy, bytes(good + bad + after), 0)
    assert [r.offset for r in out] == [0, 1, 2]
    assert records.next_fetch_offset == 3 and not records and policy.retries == 0
    for attempt in (1, 2):  # fetched again from offset 3: each failure reaches the caller
        with pytest.raises(PoisonRetry) as raised:
            take(policy, bytes(bad + after), 3)
        assert raised.value.attempt == attempt and raised.value.first_offset == 3

    out, records = take(policy, bytes(bad + after), 3)
    (skipped,) = out
    assert isinstance(skipped, PoisonBatch)
    assert (skipped.topic, skipped.partition, skipped.offset, skipped.last_offset) == ("events", 0, 3, 6)
    assert skipped.count == 4 and skipped.next_offset == 7
    assert skipped.value == bytes(bad) and "offsets 3..6" in skipped.reason and "after 3 attempts" in skipped.reason
    assert records.next_fetch_offset == 7 and not records  # drained: the next fetch starts at 7
    assert policy.retries == 2 and not policy.failures

    out, _ = take(policy, bytes(after), 7)
    assert [(r.offset, r.value) for r in out] == [(7, b'{"n": 7}'), (8, b'{"n": 8}')]


def test_one_attempt_skips_at_once_and_healthy_batches_are_untouched() -> None:
    policy = PoisonPolicy(attempts=1)
    out, _ = take(policy, bytes(batch(0, 5, compression=0) + batch(5, 5)), 0)
    assert [r.offset for r in out] == list(range(10)) and policy.retries == 0
    out, _ = take(policy, bytes(corrupt_payload(batch(10, 2))), 10)
    assert [(type(r), r.offset, r.last_offset) for r in out] == [(PoisonBatch, 10, 11)]
    assert policy.retries == 0


def set_last_offset_delta(raw: bytearray, delta: int) -> bytearray:
    """A header field inside the CRC, changed without fixing the CRC (so it cannot be trusted)."""
    struct.pack_into(">i", raw, struct.calcsize(">qiibIh"), delta)  # LastOffsetDelta
    return raw


@pytest.mark.parametrize("delta", [1_000_000_000, -5], ids=["huge", "negative"])
def test_an_untrusted_header_never_skips_past_the_next_batch(delta: int) -> None:
    policy = PoisonPolicy(attempts=1)
    bad, after = set_last_offset_delta(batch(3, 4), delta), batch(7, 2)
    out, records = take(policy, bytes(bad + after), 3)
    assert [(r.offset, r.last_offset) for r in out] == [(3, 6)]  # up to the next batch's base
    assert records.next_fetch_offset == 7


def test_an_untrusted_last_batch_is_skipped_offset_by_offset_without_new_retries() -> None:
    """Nothing after it in the fetch bounds it: one offset per fetch, each skipped at once."""
    policy = PoisonPolicy(attempts=3)
    bad = bytes(set_last_offset_delta(batch(3, 4), 1_000_000_000))
    for _ in (1, 2):
        with pytest.raises(PoisonRetry):
            take(policy, bad, 3)
    skipped = []
    for offset in range(3, 7):  # the broker answers a fetch inside the batch with the whole batch
        out, records = take(policy, bad, offset)
        assert [(r.offset, r.last_offset) for r in out] == [(offset, offset)]
        skipped.append(offset)
        assert records.next_fetch_offset == offset + 1
    assert policy.retries == 2 and skipped == [3, 4, 5, 6]
    out, _ = take(policy, bytes(batch(7, 2)), 7)  # past it: decodes, and the policy forgets it
    assert [r.offset for r in out] == [7, 8] and not policy.condemned and not policy.failures


def test_a_truncated_batch_is_skipped_and_kept_byte_for_byte() -> None:
    policy = PoisonPolicy(attempts=1)
    bad = batch(3, 4)
    struct.pack_into(">i", bad, 8, 20)  # the batch length: shorter than any batch header
    out, _ = take(policy, bytes(bad[:32]), 3)
    assert [(type(r), r.offset) for r in out] == [(PoisonBatch, 3)]
    assert out[0].value == bytes(bad[:32]) and out[0].fingerprint != 0


def test_a_batch_that_heals_is_forgotten() -> None:
    policy = PoisonPolicy(attempts=3)
    with pytest.raises(PoisonRetry):
        take(policy, bytes(flip_a_byte(batch(3, 2))), 3)
    assert policy.failures
    out, _ = take(policy, bytes(batch(3, 2)), 3)  # a transient fault: fetched again, it decodes
    assert [r.offset for r in out] == [3, 4] and not policy.failures
