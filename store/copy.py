"""PostgreSQL bulk insert of events through ``COPY`` into a staging table.

``COPY`` cannot skip conflicts, so rows go to a temporary table first and then into
``events`` with ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING event_id``,
in arrival order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from store.events import NewEvent

STAGE = "kdrec_events_stage"


def copy_insert_events(session: Session, batch: list[NewEvent]) -> set[str]:
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (seq bigint, event_id varchar(64), "
            "user_id bigint, item_id integer, ts bigint, type varchar(32)) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY {STAGE} (seq, event_id, user_id, item_id, ts, type) FROM STDIN") as copy:
            for seq, e in enumerate(batch):
                copy.write_row((seq, e.event_id, e.user_id, e.item_id, e.ts, e.type))
        cursor.execute(
            f"INSERT INTO events (event_id, user_id, item_id, ts, type) "
            f"SELECT event_id, user_id, item_id, ts, type FROM {STAGE} ORDER BY seq "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        inserted = {row[0] for row in cursor.fetchall()}
        cursor.execute(f"TRUNCATE {STAGE}")
    return inserted
