"""The stream consumer's timing knobs, and which database errors it retries a batch for."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError


@dataclass(frozen=True)
class ConsumerOptions:
    """Timing knobs of the loop (the Kafka and serving settings come from ``Settings``)."""

    poll_timeout_ms: int = 500
    probe_every_s: float = 2.0
    """While polls come back empty, check this often that the broker still accepts connections."""
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    model_check_s: float = 2.0
    background_model_loading: bool = True
    send_timeout_s: float = 30.0
    max_in_flight: int = 3
    """Applied batches whose sends may await acknowledgement while the next ones are processed."""
    commit_interval_ms: int = 200
    """Settled batches' offsets are committed together at most this often (0: every batch)."""
    fetch_max_wait_ms: int | None = None
    """Longest hold of an empty fetch; None: by broker kind (``stream.fetch_wait``)."""
    client_id: str = "kdrec-consumer"
    threads: int = 1
    """Student and FAISS threads, set by ``run()`` in its own thread (OpenMP's is per thread)."""
    poison_attempts: int = 3
    """Polls that may fail on one undecodable record batch before it is skipped (``stream.poison``)."""
    freeze_gc: bool = True
    """Once the model is loaded, ``gc.freeze()`` everything alive: full collections then skip it
    instead of pausing the loop (and the Kafka IO thread) for tens of milliseconds."""
    follow_items: bool = True
    """Follow the items topic in a background thread (``stream.item_feed``)."""


def is_transient_db_error(exc: BaseException) -> bool:
    """Errors worth retrying the batch for: lost connections, locks timing out, pool timeouts."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
