"""The click-event contract on the events topic, and decoding raw Kafka values into it.

A message value is a UTF-8 JSON object, its key the user id as decimal text (so all events of
a user land in one partition and stay in order)::

    {"event_id": "3f2a...", "user_id": 42, "item_id": 1193, "ts": 978300760000, "type": "click"}

* ``event_id``: 1-64 characters, the idempotency key (the store writes each id once).
* ``user_id``: integer >= 0. ``item_id``: integer >= 1 (0 is the padding id), known to the catalogue.
* ``ts``: when it happened, epoch milliseconds (integer >= 0) or an ISO 8601 string
  (``2024-05-01T12:00:00Z``; no offset means UTC), normalised to epoch milliseconds.
* ``type``: lowercase word (letters, digits, ``_``; at most 32), default ``click``.

Types are strict: ``"42"`` is not a user id, ``true`` is not an integer, ``1.5e12`` is not a
timestamp. Unknown extra fields are ignored, so producers can add fields without breaking
older consumers. ``decode`` never raises: it returns a ``ClickEvent`` or a ``Rejection`` whose
``reason`` (``"<code>: <detail>"``) goes to the dead-letter topic with the original bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, field_validator
from pydantic_core import PydanticCustomError

MAX_EVENT_ID = 64
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)

KnownItems = Container[int] | Callable[[int], bool]


def parse_ts(value: object) -> int:
    """Epoch milliseconds from an int (already ms) or an ISO 8601 string (naive means UTC)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PydanticCustomError("ts_type", "must be epoch milliseconds (integer) or an ISO 8601 string")
    if isinstance(value, int):
        ms = value
    else:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ms = (moment - _EPOCH) // _ONE_MS
    if not 0 <= ms <= MAX_TS_MS:
        raise ValueError(f"{ms} ms is outside 1970..9999")
    return ms


class ClickEvent(BaseModel):
    """One interaction of a user with an item."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: Annotated[StrictStr, Field(min_length=1, max_length=MAX_EVENT_ID)]
    user_id: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
    item_id: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
    ts: int
    type: Annotated[StrictStr, Field(pattern=EVENT_TYPE_PATTERN)] = "click"

    @field_validator("ts", mode="before")
    @classmethod
    def _normalise_ts(cls, value: Any) -> int:
        return parse_ts(value)

    def key(self) -> bytes:
        """The Kafka message key: the user id as decimal text."""
        return user_key(self.user_id)

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON with ``ts`` in epoch milliseconds."""
        return json.dumps(self.model_dump(), separators=(",", ":")).encode()


def user_key(user_id: int) -> bytes:
    return str(user_id).encode()


@dataclass(frozen=True)
class Rejection:
    """Why a raw message is not a valid event; ``code`` is a short category."""

    code: str
    detail: str

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.detail}"


def _is_known(item_id: int, known_items: KnownItems) -> bool:
    if isinstance(known_items, Container):
        return item_id in known_items
    return bool(known_items(item_id))


def _validation_rejection(error: ValidationError) -> Rejection:
    problems = []
    kinds = set()
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "event"
        if item["type"] == "missing":
            kinds.add("missing_field")
            problems.append(f"{field} is required")
        else:
            kinds.add("wrong_type" if item["type"].endswith("_type") else "invalid_field")
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{field}: {message} (got {item.get('input')!r:.40})")
    code = next(kind for kind in ("missing_field", "wrong_type", "invalid_field") if kind in kinds)
    return Rejection(code, "; ".join(problems))


def json_object(raw: bytes | None, max_bytes: int) -> dict[str, Any] | Rejection:
    """A message value as a JSON object, or why it is not one (empty, oversized, not UTF-8 JSON)."""
    if raw is None:
        return Rejection("empty", "message has no value")
    if len(raw) > max_bytes:
        return Rejection("oversized", f"{len(raw)} bytes > limit of {max_bytes}")
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return Rejection("invalid_json", f"not UTF-8 ({exc.reason} at byte {exc.start})")
    except json.JSONDecodeError as exc:
        return Rejection("invalid_json", f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return Rejection("invalid_json", "nested too deeply")
    if not isinstance(payload, dict):
        return Rejection("invalid_json", f"expected a JSON object, got {type(payload).__name__}")
    return payload


def decode(raw: bytes | None, known_items: KnownItems | None = None, max_bytes: int = 4096) -> ClickEvent | Rejection:
    """Parse and validate one message value; never raises.

    ``known_items`` (a set, any container, or a predicate) rejects item ids not in the
    catalogue; ``None`` skips that check.
    """
    payload = json_object(raw, max_bytes)
    if isinstance(payload, Rejection):
        return payload
    try:
        event = ClickEvent.model_validate(payload)
    except ValidationError as exc:
        return _validation_rejection(exc)
    if known_items is not None and not _is_known(event.item_id, known_items):
        return Rejection("unknown_item", f"item_id {event.item_id} is not in the catalogue")
    return event
