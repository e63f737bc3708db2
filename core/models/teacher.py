"""The teacher: the transformer layers of a pre-trained BERT-family LM, with items as tokens.

Items are represented as ``TeacherConfig.items`` says. ``free``: an embedding table that starts
from the LM's own mean-pooled encoding of each item's text (centred, so the direction every
sentence shares is removed, and rescaled to the norm of the LM's word embeddings) and is then
learnt freely. ``text+id``: those text features stay fixed; an item's vector is a learnt linear
adaptor of them (starting as the identity) plus an ID embedding (starting at zero), so an item
seen a handful of times stays near what its text says while a frequent one learns its own
offset. ``text``: the adaptor alone. Position embeddings and the embedding LayerNorm start from
the LM's (the LM's token-type-0 vector folded into the positions). ``pretrained=False`` builds
the same architecture from random init (random text features): the "what pre-training adds"
baseline.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.models.base import SequenceModel
from core.models.sequences import additive_mask, attention_allowed, positions
from core.settings import TeacherConfig
from core.text.checkpoint import resolve_checkpoint
from core.text.encoder import encode_texts

log = logging.getLogger(__name__)
POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2}


def _lm_config(bert_config: dict[str, Any]) -> Any:
    from transformers import CONFIG_MAPPING

    return CONFIG_MAPPING[bert_config["model_type"]].from_dict(bert_config)


def _encoder_layers(lm: nn.Module) -> nn.ModuleList:
    encoder = getattr(lm, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(f"{type(lm).__name__} is not a BERT-family model (no encoder.layer)")
    return layers


class LMTeacher(SequenceModel):
    kind = "teacher"
    text_features: torch.Tensor
    text_shift: torch.Tensor
    text_scale: torch.Tensor
    """Buffers of the text item representations (absent for ``free`` items)."""

    def __init__(self, config: TeacherConfig, num_items: int, bert_config: dict[str, Any]) -> None:
        super().__init__(num_items, config.max_len, config.objective, config.mask_prob)
        from transformers import AutoModel

        self.config = config
        lm_config = _lm_config(bert_config)
        available = lm_config.num_hidden_layers
        layers = config.num_layers or available
        if layers > available:
            raise ValueError(f"num_layers={layers} but the checkpoint has only {available} layers")
        lm_config.num_hidden_layers = layers
        lm_config.hidden_dropout_prob = config.dropout
        lm_config.attention_probs_dropout_prob = config.dropout
        self.bert_config = lm_config.to_dict()
        hidden = lm_config.hidden_size
        tokens = num_items + (2 if config.objective == "cloze" else 1)
        self.item_embedding = nn.Embedding(tokens, hidden, padding_idx=0)
        self.adaptor: nn.Linear | None = None
        self._table_cache: tuple[Any, torch.Tensor] | None = None
        if config.items != "free":
            # Fixed text features (row 0 and the mask token's: zero); saved with the model, so a
            # trained teacher loads without re-reading the texts. Shift and scale are kept for
            # items a refit adds.
            self.register_buffer("text_features", torch.zeros(tokens, hidden))
            self.register_buffer("text_shift", torch.zeros(hidden))
            self.register_buffer("text_scale", torch.ones(()))
            self.adaptor = nn.Linear(hidden, hidden, bias=False)
        self.position_embedding = nn.Embedding(config.max_len, hidden)
        self.input_norm = nn.LayerNorm(hidden, eps=lm_config.layer_norm_eps)
        self.embed_drop = nn.Dropout(config.dropout)
        lm = AutoModel.from_config(lm_config, attn_implementation="sdpa")
        self.layers = _encoder_layers(lm)
        std = lm_config.initializer_range
        for table in (self.item_embedding, self.position_embedding):
            nn.init.normal_(table.weight, std=std)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
            if self.adaptor is not None:
                self.adaptor.weight.copy_(torch.eye(hidden))
                self.item_embedding.weight.zero_()  # the ID part starts at nothing
                self.text_features[1 : num_items + 1].normal_(std=std)  # random init; the LM's replace them
        if config.items == "text":
            self.item_embedding.weight.requires_grad_(False)

    def item_vectors(self, ids: torch.Tensor) -> torch.Tensor:
        """Input vectors of the tokens ``ids`` (rows of ``token_embeddings()``, computed for just these)."""
        x = self.item_embedding(ids)
        if self.adaptor is not None:
            x = x + self.adaptor(self.text_features[ids])
        return x

    def hidden_states(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.item_vectors(inputs) + self.position_embedding(positions(inputs))
        x = self.embed_drop(self.input_norm(x))
        mask = additive_mask(attention_allowed(inputs, causal=self.objective == "causal"), x.dtype)
        for layer in self.layers:
            out = layer(x, attention_mask=mask)
            x = out[0] if isinstance(out, tuple) else out
        return x

    def token_embeddings(self) -> torch.Tensor:
        if self.adaptor is None:
            return self.item_embedding.weight
        if torch.is_grad_enabled():
            return self.item_embedding.weight + self.adaptor(self.text_features)
        # Serving and evaluation: the table is computed once per change of its inputs (tensor
        # versions move with every optimiser step or load), not on every scored batch.
        tensors = (self.item_embedding.weight, self.adaptor.weight, self.text_features)
        key = tuple((t.data_ptr(), t._version, t.device) for t in tensors)
        if self._table_cache is None or self._table_cache[0] != key:
            self._table_cache = (key, self.item_embedding.weight + self.adaptor(self.text_features))
        return self._table_cache[1]

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "num_items": self.num_items,
            "config": self.config.model_dump(),
            "bert_config": self.bert_config,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> LMTeacher:
        return cls(TeacherConfig(**spec["config"]), spec["num_items"], spec["bert_config"])

    @torch.no_grad()
    def load_language_model(self, lm: Any, text_encodings: torch.Tensor, mask_token_id: int | None) -> None:
        """Copy the LM's layers, positions and embedding norm; items from their text encodings.
        ``lm``: a transformers BERT-family model (its submodules are read by name)."""
        source_layers = _encoder_layers(lm)
        for mine, theirs in zip(self.layers, source_layers, strict=False):
            mine.load_state_dict(theirs.state_dict())
        embeddings = lm.embeddings
        offset = POSITION_OFFSET.get(self.bert_config["model_type"], 0)
        lm_positions = embeddings.position_embeddings.weight[offset : offset + self.max_len]
        token_type = getattr(embeddings, "token_type_embeddings", None)
        if token_type is not None:
            lm_positions = lm_positions + token_type.weight[0]
        self.position_embedding.weight[: len(lm_positions)] = lm_positions
        self.input_norm.load_state_dict(embeddings.LayerNorm.state_dict())
        words = embeddings.word_embeddings.weight
        target_norm = words.norm(dim=1).mean()
        shift = text_encodings.mean(dim=0)
        centred = text_encodings - shift
        scale = target_norm / centred.norm(dim=1).mean().clamp(min=1e-8)
        scaled = (centred * scale).to(self.item_embedding.weight.dtype)
        if self.adaptor is None:
            self.item_embedding.weight[1 : self.num_items + 1] = scaled
        else:
            self.text_features[1 : self.num_items + 1] = scaled
            self.text_shift.copy_(shift)
            self.text_scale.fill_(float(scale))
        if self.mask_token is not None and mask_token_id is not None:
            self.item_embedding.weight[self.mask_token] = words[mask_token_id]


def build_teacher(config: TeacherConfig, item_texts: Sequence[str], cache_dir: Path | None) -> LMTeacher:
    """A teacher for items with these texts (item i has ``item_texts[i - 1]``).

    With ``config.pretrained`` the LM's weights and the item-text encodings are loaded (text
    encodings cached under ``cache_dir``); otherwise the same architecture from random init.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = resolve_checkpoint(config.checkpoint)
    lm_config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    teacher = LMTeacher(config, len(item_texts), copy.deepcopy(lm_config).to_dict())
    if not config.pretrained:
        log.info("teacher from random init (architecture of %s)", folder)
        return teacher
    encodings = encode_texts(folder, item_texts, cache_dir)
    lm = AutoModel.from_pretrained(str(folder), local_files_only=True)
    mask_id = None
    if config.objective == "cloze":
        mask_id = AutoTokenizer.from_pretrained(str(folder), local_files_only=True).mask_token_id
    teacher.load_language_model(lm, encodings, mask_id)
    log.info("teacher from %s: %d layers, hidden %d", folder, len(teacher.layers), teacher.bert_config["hidden_size"])
    return teacher
