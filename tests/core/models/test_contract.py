"""The same contract checks on every neural model: the student and each teacher variant."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.models.artifacts import load_model, save_model
from core.models.base import SequenceModel
from core.models.batch import TrainBatch
from core.models.scorer import ModelScorer
from core.settings import TrainConfig
from core.training import fit, seed_everything, training_batches
from tests.core.models.factories import ITEMS, MAX_LEN, tiny_sequences

HISTORIES = [[1, 2, 3], [4, 5, 6, 7, 8, 9], [10]]
ATOL = 1e-5


def batch(model: SequenceModel) -> torch.Tensor:
    return model.prepare(HISTORIES)


class TestContract:
    def test_shapes(self, model: SequenceModel) -> None:
        x = batch(model)
        encoded = model.encode(x)
        items = model.item_embeddings()
        scores = model.score(x)
        assert encoded.shape == (3, items.shape[1])
        assert items.shape == (ITEMS + 1, encoded.shape[1])
        assert scores.shape == (3, ITEMS + 1)
        torch.testing.assert_close(scores, encoded @ items.T)

    def test_encode_is_the_last_hidden_state(self, model: SequenceModel) -> None:
        """``last_state`` (which a model may compute more cheaply) equals the full pass's last row."""
        model.eval()
        inputs = model.prepare([[*history, 1] for history in HISTORIES])  # slot for a cloze mask token
        if model.mask_token is not None:
            inputs[:, -1] = model.mask_token
        torch.testing.assert_close(model.last_state(inputs), model.hidden_states(inputs)[:, -1], atol=ATOL, rtol=0)

    def test_loss_is_finite_and_trains_the_items(self, model: SequenceModel) -> None:
        model.train()
        x = model.prepare([seq[:MAX_LEN] for seq in tiny_sequences(4).values()])
        targets = torch.roll(x, -1, dims=1).masked_fill(x == 0, 0)
        targets[:, -1] = 0
        loss = model.loss(TrainBatch(x, targets))
        assert loss.ndim == 0 and torch.isfinite(loss)
        loss.backward()
        # The parameters the item table is made of (the table itself, or a text adaptor + IDs).
        item_params = [p for name, p in model.named_parameters() if name.startswith(("item_embedding", "adaptor"))]
        grads = [p.grad for p in item_params if p.requires_grad]
        assert grads and all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0

    def test_extra_left_padding_does_not_change_the_encoding(self, model: SequenceModel) -> None:
        x = batch(model)
        padded = torch.cat([torch.zeros((3, 4), dtype=torch.long), x], dim=1)[:, -model.max_len :]
        torch.testing.assert_close(model.encode(padded), model.encode(x), atol=ATOL, rtol=0)
        alone = model.encode(model.prepare([HISTORIES[0]]))
        torch.testing.assert_close(alone[0], model.encode(x)[0], atol=ATOL, rtol=0)

    def test_history_beyond_the_input_length_is_dropped(self, model: SequenceModel) -> None:
        scorer = ModelScorer(model)
        long = [(i % ITEMS) + 1 for i in range(3 * MAX_LEN)]
        torch.testing.assert_close(scorer.score([long]), scorer.score([long[-model.history_len :]]), atol=ATOL, rtol=0)

    def test_no_leak_from_future_positions(self, model: SequenceModel) -> None:
        if model.objective != "causal":
            pytest.skip("cloze models are bidirectional by design; encode reads only the history")
        x = model.prepare([list(range(1, MAX_LEN + 1))])
        changed = x.clone()
        changed[:, 6:] = torch.arange(20, 20 + MAX_LEN - 6)
        states, states_changed = model.hidden_states(x), model.hidden_states(changed)
        torch.testing.assert_close(states[:, :6], states_changed[:, :6], atol=ATOL, rtol=0)
        assert not torch.allclose(states[:, 6:], states_changed[:, 6:])
        for t in (1, 5, MAX_LEN):
            torch.testing.assert_close(model.encode(x[:, :t]), states[:, t - 1], atol=ATOL, rtol=0)

    def test_same_seed_same_result(self, model: SequenceModel) -> None:
        import copy

        config = TrainConfig(epochs=1, batch_size=8, lr=1e-3, warmup_steps=2, device="cpu", seed=7)
        results = []
        for _ in range(2):
            seed_everything(7)
            trained = copy.deepcopy(model)
            batches = training_batches(trained, tiny_sequences().values(), config.batch_size, config.seed)
            fit(trained, batches, None, config, progress=False)
            results.append(trained.score(batch(trained)))
        torch.testing.assert_close(results[0], results[1], atol=0, rtol=0)

    def test_save_then_load_gives_identical_scores(self, model: SequenceModel, tmp_path: Path) -> None:
        folder = save_model(model, tmp_path / "artifact", metrics={"NDCG@10": 0.5})
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.json", "model.safetensors"]
        loaded = load_model(folder)
        assert type(loaded) is type(model)
        assert torch.equal(loaded.score(batch(loaded)), model.score(batch(model)))

    def test_parameter_counts(self, model: SequenceModel) -> None:
        counts = model.parameter_counts()
        assert 0 < counts["non_embedding"] < counts["total"] == sum(p.numel() for p in model.parameters())
