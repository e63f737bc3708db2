"""The item record contract: valid records become Items, every malformed one gets a reason."""

from __future__ import annotations

import json

import pytest

from core.data.dataset import Item
from core.settings import KafkaSettings
from stream.events import Rejection
from stream.items import decode_item, item_key, item_value, publish_items
from tests.stream.helpers import read_topic

LIMIT = 4096
GOOD = {"item_id": 61, "title": "  Heat ", "year": 1995, "genres": ["Action", "Crime"], "brand": "Warner"}


def raw(**changes: object) -> bytes:
    payload = {**GOOD, **changes}
    return json.dumps({k: v for k, v in payload.items() if v is not ...}).encode()


def test_a_valid_record_becomes_an_item_with_its_fields_in_order() -> None:
    value = raw(category="Movies", source_id="tt0113277")
    item = decode_item(value, b"61", LIMIT)
    assert item == Item(
        61, "Heat", 1995, ("Action", "Crime"), "tt0113277", (("brand", "Warner"), ("category", "Movies"))
    )
    assert item.text() == "Heat (1995). Genres: Action, Crime. Brand: Warner. Category: Movies."
    assert decode_item(value, None, LIMIT) == item  # the key is optional
    assert decode_item(b'{"item_id": 1, "title": "Only a title"}', None, LIMIT) == Item(1, "Only a title")
    assert decode_item(raw(year=None, genres=None), None, LIMIT) == Item(
        61, "Heat", None, (), None, (("brand", "Warner"),)
    )
    assert item_key(61) == b"61" and json.loads(item_value(GOOD)) == GOOD


@pytest.mark.parametrize(
    "value, code, words",
    [
        (None, "empty", "no value"),
        (b"x" * (LIMIT + 1), "oversized", "limit"),
        (b"\xff\xfe", "invalid_json", "UTF-8"),
        (b'{"item_id": 61,', "invalid_json", "line 1"),
        (b"[61]", "invalid_json", "JSON object"),
        (raw(title=...), "missing_field", "title is required"),
        (raw(item_id=...), "missing_field", "item_id is required"),
        (raw(item_id="61"), "wrong_type", "item_id must be an integer"),
        (raw(item_id=True), "wrong_type", "item_id must be an integer"),
        (raw(item_id=0), "invalid_field", "item_id must be 1.."),
        (raw(title=5), "wrong_type", "title must be a string"),
        (raw(title="   "), "invalid_field", "title must be 1-512"),
        (raw(title="t" * 513), "invalid_field", "title must be 1-512"),
        (raw(year="1995"), "wrong_type", "year must be an integer"),
        (raw(year=12345), "invalid_field", "year must be 0..9999"),
        (raw(genres="Action"), "wrong_type", "genres must be a list of strings"),
        (raw(genres=["Action|Crime"]), "invalid_field", "no '|'"),
        (raw(source_id=7), "wrong_type", "source_id must be a string"),
        (raw(price=9.5), "wrong_type", "price must be a string"),
        (raw(brand=None), "wrong_type", "brand must be a string"),
        (raw(**{"": "x"}), "invalid_field", "field name"),
        (raw(title=..., year="x"), "missing_field", "year must be an integer"),  # all problems named
    ],
)
def test_malformed_records_are_rejected_with_a_reason(value: bytes | None, code: str, words: str) -> None:
    outcome = decode_item(value, None, LIMIT)
    assert isinstance(outcome, Rejection), outcome
    assert outcome.code == code and words in outcome.reason
    assert outcome.reason.startswith(f"{code}: ")


def test_a_key_must_name_the_same_item() -> None:
    for key in (b"62", b"sixty-one", b""):
        outcome = decode_item(raw(), key, LIMIT)
        assert isinstance(outcome, Rejection) and outcome.code == "key_mismatch", key


def test_decode_never_raises_on_odd_json() -> None:
    for value in (b"null", b"1e999", b'"text"', b"[" * 100_000, b'{"item_id": 1, "title": "a", "x": {"y": 1}}'):
        assert isinstance(decode_item(value, None, 1 << 20), Rejection)


@pytest.mark.kafka
def test_publish_items_sends_keyed_records_and_refuses_invalid_ones(kafka: KafkaSettings) -> None:
    records = [{"item_id": 61, "title": "Heat"}, {"item_id": 62, "title": "Ronin", "brand": "MGM"}]
    assert publish_items(kafka, records) == 2
    with pytest.raises(ValueError, match="item record 1 is invalid: missing_field"):
        publish_items(kafka, [{"item_id": 63, "title": "Fine"}, {"item_id": 64}])
    sent = read_topic(kafka, kafka.items_topic, 2)
    assert [(r.key, decode_item(r.value, r.key, LIMIT)) for r in sent] == [
        (b"61", Item(61, "Heat")),
        (b"62", Item(62, "Ronin", fields=(("brand", "MGM"),))),
    ]
