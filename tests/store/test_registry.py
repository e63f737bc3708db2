"""Model registry: candidate → active → retired, rejection, rollback, one active per kind."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store import registry
from store.models import ModelVersion


def test_promote_retires_previous_and_rollback_restores_it(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert registry.get_active(session, "student") is None
        teacher = registry.register(session, "teacher", "artifacts/t1", config={"layers": 2})
        s1 = registry.register(session, "student", "artifacts/s1", metrics={"ndcg@10": 0.1}, parent_id=teacher.id)
        s2 = registry.register(session, "student", "artifacts/s2", parent_id=teacher.id)
        assert (s1.status, s1.parent_id, s1.config) == ("candidate", teacher.id, {})
    with sessions.begin() as session:
        assert registry.promote(session, s1.id) is None
        assert registry.promote(session, teacher.id) is None
    with sessions.begin() as session:
        replaced = registry.promote(session, s2.id)
        assert replaced is not None and replaced.id == s1.id
    with sessions() as session:
        assert registry.get_active(session, "student").id == s2.id
        assert registry.get_active(session, "teacher").id == teacher.id
        assert registry.get_version(session, s1.id).status == "retired"
        assert [v.id for v in registry.list_versions(session, kind="student")] == [s2.id, s1.id]
        assert [v.id for v in registry.list_versions(session, status="active")] == [s2.id, teacher.id]
    with sessions.begin() as session:
        restored = registry.rollback(session, "student")
        assert restored.id == s1.id
    with sessions() as session:
        assert registry.get_active(session, "student").id == s1.id
        assert registry.get_version(session, s2.id).status == "retired"
        # Promoting the active version again is a no-op.
        assert registry.promote(session, s1.id) is None


def test_reject_and_invalid_transitions(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        good = registry.register(session, "student", "a/good")
        bad = registry.register(session, "student", "a/bad")
        registry.promote(session, good.id)
        registry.reject(session, bad.id, reason="ndcg below tolerance")
        registry.record_metrics(session, good.id, {"hr@10": 0.3})
    with sessions.begin() as session:
        assert registry.get_version(session, bad.id).note == "ndcg below tolerance"
        assert registry.get_version(session, good.id).metrics == {"hr@10": 0.3}
        with pytest.raises(registry.RegistryError, match="rejected"):
            registry.promote(session, bad.id)
        with pytest.raises(registry.RegistryError, match="active"):
            registry.reject(session, good.id)
        with pytest.raises(registry.RegistryError, match="no retired"):
            registry.rollback(session, "student")
        with pytest.raises(registry.RegistryError, match="kind"):
            registry.register(session, "ranker", "a/x")
        with pytest.raises(registry.VersionNotFound):
            registry.promote(session, 999)


def test_database_allows_one_active_version_per_kind(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first = registry.register(session, "teacher", "a/1")
        registry.promote(session, first.id)
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(ModelVersion(kind="teacher", artifact_path="a/2", status="active"))
