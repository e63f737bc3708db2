"""How long the broker may hold a fetch that found no records, per broker kind.

Apache Kafka answers a held fetch as soon as records arrive, so there a long wait costs no
latency and keeps an idle consumer quiet: kafka-python's default, 500 ms. On the embedded
broker (Tansu 0.6, in memory) the wait matters both ways:

* a short wait keeps an idle consumer busy (``python -m bench.idle``, bench/results/idle.md:
  consumer + broker idle at 5 ms ~22% of a core, at 100 ms ~3%);
* every fetch that returns records costs the broker time in proportion to the record batches
  already stored on the topic (``python -m bench.stream_transport --prefill 0 --prefill 20000``),
  so while records flow, fewer fetches leave it more CPU. Measured at 500 events/s on 2 cores:
  a bare consumer on a topic holding 20,000 records, delivery p99 412-814 ms with a 5 ms wait
  and 75-150 ms with 10 ms (three runs); kdrec's consumer (``python -m bench.stream
  --fetch-max-wait-ms N``, one run each), p99 56 ms with 5 ms and 39 ms with 10 ms (20, 50
  and 100 ms: no better).

So on the embedded broker the wait adapts: 10 ms while records flow, 100 ms once the consumer
has been idle for a second (the first event after a quiet spell may then wait up to 100 ms;
the next ones don't).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from core.settings import KafkaSettings
from stream.net import is_loopback, split_host_port

log = logging.getLogger(__name__)

EMBEDDED_BUSY_MS = 10
EMBEDDED_IDLE_MS = 100
REMOTE_MS = 500
IDLE_AFTER_S = 1.0


def embedded(kafka: KafkaSettings) -> bool:
    """Whether these settings point at the embedded broker (loopback, ``embedded_broker`` on)."""
    hosts = [split_host_port(server)[0] for server in kafka.bootstrap_servers.split(",") if server.strip()]
    return kafka.embedded_broker and bool(hosts) and all(is_loopback(host) for host in hosts)


class FetchWait:
    """The fetch wait of one consumer: fixed when ``fixed_ms`` is given or the broker is not the
    embedded one, else adaptive (busy/idle, see the module docstring)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        fixed_ms: int | None = None,
        *,
        busy_ms: int = EMBEDDED_BUSY_MS,
        idle_ms: int = EMBEDDED_IDLE_MS,
        idle_after_s: float = IDLE_AFTER_S,
    ) -> None:
        self.adaptive = fixed_ms is None and embedded(kafka)
        self.busy_ms, self.idle_ms, self.idle_after_s = busy_ms, idle_ms, idle_after_s
        self.current_ms = fixed_ms if fixed_ms is not None else (busy_ms if self.adaptive else REMOTE_MS)
        self._last_records = time.monotonic()
        self._config: dict[str, Any] | None = None

    def attach(self, consumer: object) -> None:
        """Find the consumer's live fetch settings (kafka-python keeps them on its fetcher; if
        a release moves them, the wait just stays fixed)."""
        config = getattr(getattr(consumer, "_fetcher", None), "config", None)
        if self.adaptive and isinstance(config, dict) and "fetch_max_wait_ms" in config:
            self._config = config
        elif self.adaptive:
            log.info("this kafka-python keeps no adjustable fetch wait; staying at %d ms", self.current_ms)

    def observe(self, got_records: bool, now: float | None = None) -> int:
        """After each poll: busy wait while records come, idle wait after ``idle_after_s`` without."""
        if self._config is None:
            return self.current_ms
        now = time.monotonic() if now is None else now
        if got_records:
            self._last_records = now
            self._set(self.busy_ms)
        elif now - self._last_records >= self.idle_after_s:
            self._set(self.idle_ms)
        return self.current_ms

    def _set(self, wait_ms: int) -> None:
        if wait_ms != self.current_ms and self._config is not None:
            self._config["fetch_max_wait_ms"] = wait_ms
            self.current_ms = wait_ms
