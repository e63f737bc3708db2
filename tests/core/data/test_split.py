"""Validation samples are random users, the same for every model, not the first N."""

from __future__ import annotations

from core.data.split import EvalSet, LeaveOneOut
from core.training.recipes import valid_subset

USERS = list(range(100, 400))
FULL = EvalSet(USERS, [[u, u + 1] for u in USERS], [u + 2 for u in USERS])


def test_a_sample_is_seeded_random_users_in_their_order() -> None:
    sample = FULL.sample(50, seed=7)
    assert len(sample) == len(set(sample.users)) == 50
    assert set(sample.users) <= set(USERS) and sample.users != USERS[:50]
    assert max(sample.users) > USERS[150]  # drawn from the whole set
    assert sample.users == sorted(sample.users)  # rows keep their order
    for user, inputs, target in zip(sample.users, sample.inputs, sample.targets, strict=True):
        assert inputs == [user, user + 1] and target == user + 2  # rows stay whole
    assert FULL.sample(50, seed=7).users == sample.users
    assert FULL.sample(50, seed=8).users != sample.users


def test_all_users_when_none_or_more_than_there_are() -> None:
    assert FULL.sample(None, seed=1) is FULL and FULL.sample(10_000, seed=1) is FULL


def test_every_model_validates_on_the_same_random_users() -> None:
    folds = LeaveOneOut(num_items=500, train={}, valid=FULL, test=FULL)
    first, again = valid_subset(folds, 40), valid_subset(folds, 40)
    assert first.users == again.users and first.users != USERS[:40]
    assert valid_subset(folds, None) is FULL
