"""Publishing versions (artifacts + index + registry) and swapping the active one."""

from __future__ import annotations

import torch

from core.models.student import Student
from core.settings import ServeConfig, StudentConfig
from store import registry
from store.active import ActiveModel
from store.versions import new_artifact_folder, prune_artifacts, publish

SERVE = ServeConfig(top_k=5)


def _student(seed: int) -> Student:
    torch.manual_seed(seed)
    return Student(StudentConfig(hidden=16, num_layers=1, num_heads=1, max_len=8), num_items=30).eval()


def _publish(sessions, tmp_path, seed: int, promote: bool) -> int:
    with sessions.begin() as session:
        version = publish(
            session,
            _student(seed),
            new_artifact_folder(tmp_path, "student", f"s{seed}"),
            metrics={"NDCG@10": 0.1},
            config={"seed": seed},
            serve=SERVE,
            promote=promote,
        )
        return version.id


def test_published_student_serves_exactly_its_own_scores(sessions, tmp_path):
    version_id = _publish(sessions, tmp_path, seed=1, promote=True)
    active = ActiveModel(sessions, SERVE, check_every=0.0)
    loaded = active.current()
    assert loaded is not None and loaded.version_id == version_id
    history = [3, 7, 1]
    result = loaded.recommend([history], k=5)
    with torch.no_grad():
        scores = loaded.model.score(loaded.model.prepare([history]))[0]
    scores[[0, *history]] = float("-inf")
    assert result.ids[0].tolist() == torch.topk(scores, 5).indices.tolist()


def test_active_model_swaps_only_when_the_registry_changes(sessions, tmp_path):
    first = _publish(sessions, tmp_path, seed=1, promote=True)
    active = ActiveModel(sessions, SERVE, check_every=0.0)
    assert active.current().version_id == first
    candidate = _publish(sessions, tmp_path, seed=2, promote=False)
    assert active.current().version_id == first  # a candidate is not served
    with sessions.begin() as session:
        registry.promote(session, candidate)
    assert active.current().version_id == candidate
    assert active.swaps == 2


def test_a_broken_artifact_keeps_the_previous_version_serving(sessions, tmp_path):
    first = _publish(sessions, tmp_path, seed=1, promote=True)
    active = ActiveModel(sessions, SERVE, check_every=0.0)
    active.current()
    broken = _publish(sessions, tmp_path, seed=2, promote=False)
    with sessions.begin() as session:
        folder = registry.get_version(session, broken).artifact_path
        registry.promote(session, broken)
    (tmp_path / folder / "model.safetensors").write_bytes(b"not a model")
    assert active.current().version_id == first


def test_prune_keeps_the_newest_and_the_active(sessions, tmp_path):
    ids = [_publish(sessions, tmp_path, seed=s, promote=(s == 1)) for s in (1, 2, 3, 4)]
    with sessions.begin() as session:
        removed = prune_artifacts(session, keep=2)
        kept = {v.id: v.artifact_path for v in registry.list_versions(session, "student")}
    assert len(removed) == 1  # version 2: older than the newest two and not active
    assert str(removed[0]) == kept[ids[1]]
