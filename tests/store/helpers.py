"""Small helpers shared by the store tests."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from store.models import CatalogItem


def add_items(sessions: sessionmaker[Session], count: int) -> None:
    with sessions.begin() as session:
        session.add_all([CatalogItem(item_id=i, title=f"Item {i}", genres="Drama") for i in range(1, count + 1)])
