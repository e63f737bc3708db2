"""Evaluation scores histories shortest first, padded per batch, with the metrics of full padding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.data.split import EvalSet
from core.evaluation import evaluate, metrics_from_ranks, target_ranks
from core.evaluation.evaluator import rank_targets
from core.evaluation.metrics import pad_sequences
from core.models.base import SequenceModel
from core.models.scorer import ModelScorer
from core.models.sequences import left_pad
from tests.core.models.factories import ITEMS, MAX_LEN, make_model, tiny_sequences


def _eval_set() -> EvalSet:
    """Histories of 1 to 2 * MAX_LEN items, in no particular length order."""
    sequences = [*tiny_sequences(50, seed=3).values(), [5, 6], [7, 8, 9]]
    return EvalSet(list(range(len(sequences))), [s[:-1] for s in sequences], [s[-1] for s in sequences])


class NextItem:
    """Scores the item after the last one highest; records the histories of each call."""

    def __init__(self) -> None:
        self.calls: list[list[list[int]]] = []

    def score(self, sequences: list[list[int]]) -> torch.Tensor:
        self.calls.append(sequences)
        scores = torch.zeros(len(sequences), ITEMS + 1)
        for row, seq in enumerate(sequences):
            scores[row, seq[-1] % ITEMS + 1] = 1.0
            scores[row, 1] += 0.5  # item 1 second best everywhere
        return scores


def test_ranks_come_back_in_the_evaluation_order() -> None:
    data = _eval_set()  # every target is the item after the last one (rank 0)...
    changed = next(i for i, seq in enumerate(data.inputs) if len(seq) > 5 and seq[-1] % ITEMS + 1 != 1 and 1 not in seq)
    data.targets[changed] = 1  # ...but this user's, the second best
    scorer = NextItem()
    ranks = rank_targets(scorer, data, batch_size=8)
    assert ranks.tolist() == [1 if i == changed else 0 for i in range(len(data))]
    lengths = [len(seq) for call in scorer.calls for seq in call]
    assert lengths == sorted(lengths) and sum(map(len, scorer.calls)) == len(data)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SequenceModel]:
    cache: Path = tmp_path_factory.mktemp("text-encodings")
    torch.manual_seed(0)
    return {kind: make_model(kind, cache).eval() for kind in ("student", "teacher", "teacher-cloze")}


@pytest.mark.parametrize("kind", ["student", "teacher", "teacher-cloze"])
def test_metrics_equal_those_of_full_length_padding(models: dict[str, SequenceModel], kind: str) -> None:
    model, data = models[kind], _eval_set()
    ranks = rank_targets(ModelScorer(model), data, batch_size=8)
    reference = []
    with torch.no_grad():  # unbucketed: evaluation order, every history padded to the full input length
        for start in range(0, len(data), 8):
            inputs = data.inputs[start : start + 8]
            scores = model.score(left_pad(inputs, model.history_len, width=model.history_len))
            targets = torch.as_tensor(data.targets[start : start + 8])
            reference.append(target_ranks(scores, targets, pad_sequences(inputs)))
    assert ranks.tolist() == torch.cat(reference).tolist()
    assert evaluate(ModelScorer(model), data, batch_size=8) == pytest.approx(
        {**metrics_from_ranks(torch.cat(reference)), "users": float(len(data))}
    )
    assert max(len(seq) for seq in data.inputs) > MAX_LEN  # some histories are truncated too
