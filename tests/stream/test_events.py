"""The event contract: every kind of malformed message gets a reason; ts forms are normalised."""

from __future__ import annotations

import json

import pytest

from stream.events import ClickEvent, Rejection, decode, parse_ts

CATALOGUE = {1, 2, 3, 1193}
GOOD = {"event_id": "e-1", "user_id": 42, "item_id": 1193, "ts": 978300760000}


def raw(**changes: object) -> bytes:
    payload = {**GOOD, **changes}
    return json.dumps({k: v for k, v in payload.items() if v is not ...}).encode()


def test_valid_event_with_defaults_and_extra_fields() -> None:
    event = decode(raw(source="web"), CATALOGUE)
    assert isinstance(event, ClickEvent)
    assert (event.event_id, event.user_id, event.item_id, event.ts, event.type) == (
        "e-1",
        42,
        1193,
        978300760000,
        "click",
    )
    assert event.key() == b"42"
    assert json.loads(event.to_json()) == {**GOOD, "type": "click"}
    assert decode(event.to_json(), CATALOGUE) == event


@pytest.mark.parametrize(
    "ts, expected",
    [
        (0, 0),
        (978300760000, 978300760000),
        ("2001-01-01T00:00:00Z", 978307200000),
        ("2001-01-01T01:00:00+01:00", 978307200000),
        ("2001-01-01T00:00:00.123", 978307200123),  # no offset: UTC
        ("2001-01-01", 978307200000),
    ],
)
def test_ts_epoch_ms_or_iso(ts: object, expected: int) -> None:
    event = decode(raw(ts=ts))
    assert isinstance(event, ClickEvent) and event.ts == expected
    assert parse_ts(ts) == expected


@pytest.mark.parametrize(
    "payload, code, words",
    [
        (b'{"event_id": "a", "user_id": 1,', "invalid_json", "line 1"),
        (b"\xff\xfe\x00", "invalid_json", "not UTF-8"),
        (b"[1, 2]", "invalid_json", "JSON object, got list"),
        (b'"click"', "invalid_json", "got str"),
        (raw(event_id=...), "missing_field", "event_id is required"),
        (raw(user_id=..., item_id=...), "missing_field", "user_id is required; item_id is required"),
        (raw(ts=...), "missing_field", "ts is required"),
        (raw(user_id="42"), "wrong_type", "user_id"),
        (raw(item_id=12.0), "wrong_type", "item_id"),
        (raw(user_id=True), "wrong_type", "user_id"),
        (raw(event_id=7), "wrong_type", "event_id"),
        (raw(ts=1.5e12), "wrong_type", "ts: must be epoch milliseconds"),
        (raw(ts=None), "wrong_type", "ts"),
        (raw(ts="yesterday"), "invalid_field", "not an ISO 8601"),
        (raw(ts=-1), "invalid_field", "outside 1970..9999"),
        (raw(event_id=""), "invalid_field", "event_id"),
        (raw(event_id="x" * 65), "invalid_field", "at most 64"),
        (raw(item_id=0), "invalid_field", "item_id"),
        (raw(user_id=-5), "invalid_field", "user_id"),
        (raw(type="Add To Cart"), "invalid_field", "type"),
        (raw(item_id=99), "unknown_item", "item_id 99 is not in the catalogue"),
        (raw(pad="x" * 5000), "oversized", "> limit of 4096"),
    ],
)
def test_each_malformed_kind_gets_a_reason(payload: bytes, code: str, words: str) -> None:
    rejection = decode(payload, CATALOGUE, max_bytes=4096)
    assert isinstance(rejection, Rejection), rejection
    assert rejection.code == code
    assert words in rejection.reason and rejection.reason.startswith(code + ": ")


def test_missing_value_and_known_items_forms() -> None:
    assert decode(None) == Rejection("empty", "message has no value")
    assert isinstance(decode(raw(item_id=99)), ClickEvent)  # no catalogue: no item check
    assert isinstance(decode(raw(item_id=2), lambda item: item % 2 == 0), ClickEvent)
    assert isinstance(decode(raw(item_id=3), lambda item: item % 2 == 0), Rejection)
    assert isinstance(decode(raw(item_id=5), range(1, 6)), ClickEvent)


def test_event_types() -> None:
    assert decode(raw(type="add_to_cart")).type == "add_to_cart"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        ClickEvent(event_id="x", user_id=1, item_id=1, ts=0, type="x" * 33)
