"""Warm-starting a teacher refit: learned rows kept, new items from their text, same scores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.data.dataset import Dataset, Item
from core.data.split import leave_one_out
from core.models.teacher import LMTeacher, build_teacher
from core.settings import TrainConfig
from core.text import encode_texts, resolve_checkpoint
from core.training.warm_start import compatible, extend_teacher, refit_start, refit_teacher, text_rows
from tests.core.models.factories import ITEMS, item_texts, teacher_config, tiny_sequences

GROWN = ITEMS + 5


@pytest.fixture(scope="module")
def text_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("text-encodings")


def _trained(kind: str, text_cache: Path) -> LMTeacher:
    """A teacher whose item rows moved away from their text start (as training moves them)."""
    torch.manual_seed(0)
    teacher = build_teacher(teacher_config(kind), item_texts(), text_cache)
    with torch.no_grad():
        teacher.item_embedding.weight[1:] *= 3.0
        teacher.item_embedding.weight[1:] += 0.05 * torch.randn_like(teacher.item_embedding.weight[1:])
    return teacher.eval()


def test_new_items_start_from_their_text_and_old_items_score_as_before(text_cache: Path) -> None:
    trained = _trained("teacher", text_cache)
    grown = extend_teacher(trained, item_texts(GROWN), text_cache).eval()
    assert grown.num_items == GROWN
    learned = trained.item_embedding.weight
    table = grown.item_embedding.weight
    assert torch.equal(table[: ITEMS + 1], learned)
    # New rows: the LM encoding of the new texts, centred over the grown catalogue, on the learned scale.
    encodings = encode_texts(resolve_checkpoint(None), item_texts(GROWN), text_cache)
    centred = encodings - encodings.mean(0)
    cosine = torch.nn.functional.cosine_similarity(table[ITEMS + 1 :], centred[ITEMS:], dim=1)
    assert torch.allclose(cosine, torch.ones(GROWN - ITEMS), atol=1e-5)
    scale = learned[1:].norm(dim=1).mean() / centred.norm(dim=1).mean()
    assert torch.allclose(table[ITEMS + 1 :], centred[ITEMS:] * scale, atol=1e-5)
    # Everything else is the trained teacher: histories of old items score old items identically.
    histories = grown.prepare([[1, 2, 3], [7, 9], [ITEMS, 1]])
    with torch.no_grad():
        before, after = trained.score(histories), grown.score(histories)
    assert torch.allclose(after[:, : ITEMS + 1], before, atol=1e-5)
    assert after.shape == (3, GROWN + 1) and torch.isfinite(after).all()


def test_cloze_teacher_keeps_its_mask_token_at_the_end(text_cache: Path) -> None:
    trained = _trained("teacher-cloze", text_cache)
    grown = extend_teacher(trained, item_texts(GROWN), text_cache)
    assert grown.mask_token == GROWN + 1
    assert torch.equal(grown.item_embedding.weight[GROWN + 1], trained.item_embedding.weight[ITEMS + 1])


def test_text_rows_are_centred_and_rescaled() -> None:
    encodings = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 2.0]])
    rows = text_rows(encodings, 2.0)
    assert torch.allclose(rows.mean(0), torch.zeros(2), atol=1e-6)
    assert torch.isclose(rows.norm(dim=1).mean(), torch.tensor(2.0))


def test_refit_start_continues_the_trained_teacher_in_its_own_architecture(text_cache: Path) -> None:
    trained = _trained("teacher", text_cache)
    teacher, how = refit_start(trained, teacher_config("teacher"), item_texts(ITEMS + 1), text_cache)
    assert how == "warm" and torch.equal(teacher.item_embedding.weight[: ITEMS + 1], trained.item_embedding.weight)
    # Settings that ask for another architecture (as the demo's 2-layer teacher meets the 6-layer
    # default) still warm-start it as it is; only dropout and mask rate come from the settings.
    other = teacher_config("teacher", max_len=8, num_layers=None, dropout=0.3)
    assert "max_len" in (compatible(trained, other) or "")
    assert "num_layers" in (compatible(trained, teacher_config("teacher", num_layers=None)) or "")
    warm, how = refit_start(trained, other, item_texts(), text_cache)
    assert how == "warm" and warm.max_len == trained.max_len and len(warm.layers) == len(trained.layers)
    assert warm.config.dropout == 0.3
    histories = warm.prepare([[1, 2, 3], [7, 9]])
    with torch.no_grad():
        torch.testing.assert_close(warm.eval().score(histories), trained.score(histories))
    cold, how = refit_start(None, other, item_texts(), text_cache)
    assert how == "cold (no trained teacher)" and cold.max_len == 8
    with pytest.raises(ValueError, match="shrank"):
        extend_teacher(trained, item_texts(ITEMS - 1), text_cache)


def test_a_text_teacher_reads_new_items_as_it_read_the_trained_ones(text_cache: Path) -> None:
    torch.manual_seed(0)
    trained = build_teacher(teacher_config("teacher-text+id"), item_texts(), text_cache).eval()
    with torch.no_grad():  # as training moves them
        trained.item_embedding.weight[1:] += 0.05 * torch.randn_like(trained.item_embedding.weight[1:])
        trained.adaptor.weight += 0.01 * torch.randn_like(trained.adaptor.weight)
    grown = extend_teacher(trained, item_texts(GROWN), text_cache).eval()
    assert torch.equal(grown.text_features[: ITEMS + 1], trained.text_features[: ITEMS + 1])
    assert torch.equal(grown.item_embedding.weight[: ITEMS + 1], trained.item_embedding.weight)
    assert torch.all(grown.item_embedding.weight[ITEMS + 1 :] == 0)
    # A new item with an old item's text gets that item's text features exactly.
    texts = [*item_texts(), item_texts()[4]]
    same = extend_teacher(trained, texts, text_cache)
    torch.testing.assert_close(same.text_features[ITEMS + 1], trained.text_features[5])
    histories = grown.prepare([[1, 2, 3], [7, 9]])
    with torch.no_grad():
        torch.testing.assert_close(grown.score(histories)[:, : ITEMS + 1], trained.score(histories))


def test_refit_teacher_continues_training(text_cache: Path) -> None:
    trained = _trained("teacher", text_cache)
    items = {i: Item(i, text) for i, text in enumerate(item_texts(), start=1)}
    folds = leave_one_out(Dataset("tiny", items, tiny_sequences(16)))
    start = extend_teacher(trained, item_texts(), text_cache)
    before = start.item_embedding.weight.detach().clone()
    config = TrainConfig(epochs=1, batch_size=8, lr=1e-3, warmup_steps=0, device="cpu")
    result = refit_teacher(start, folds, config, progress=False)
    assert result.model is start and len(result.history.epochs) == 1 and "NDCG@10" in result.valid
    assert not torch.equal(start.item_embedding.weight, before)
    with pytest.raises(ValueError, match="knows"):
        refit_teacher(
            trained,
            leave_one_out(Dataset("tiny", {**items, ITEMS + 1: Item(ITEMS + 1, "x")}, tiny_sequences(4))),
            config,
            progress=False,
        )
