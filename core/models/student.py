"""The small student: a SASRec-style causal transformer (default 2 layers x 64 dims)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.models.base import SequenceModel
from core.models.sequences import PAD, attention_allowed, positions
from core.settings import StudentConfig


class Block(nn.Module):
    """Pre-LayerNorm transformer block: masked self-attention then a GELU feed-forward."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not a multiple of {heads} heads")
        self.heads = heads
        self.dropout = dropout
        self.attn_norm = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.ff_norm = nn.LayerNorm(hidden)
        self.ff = nn.Sequential(
            nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * hidden, hidden)
        )
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, allowed: torch.Tensor | None, last_only: bool = False, causal: bool = False
    ) -> torch.Tensor:
        """``[B, L, H]`` -> ``[B, L, H]``. ``allowed``: the attention mask, or None for rows without
        padding (then ``causal`` says whether a query sees only earlier keys). With ``last_only``
        just the last position's output ``[B, 1, H]`` (keys and values still come from every
        position): serving reads only that one, and skips the other queries' attention and
        feed-forward."""
        batch, length, hidden = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        if last_only:
            q, x = q[:, :, -1:], x[:, -1:]
            allowed = allowed[:, :, -1:] if allowed is not None else None
            causal = False  # the last query sees every key
        attended = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=allowed,
            is_causal=causal and allowed is None,
            dropout_p=self.dropout if self.training else 0.0,
        )
        x = x + self.drop(self.out(attended.transpose(1, 2).reshape(batch, q.shape[2], hidden)))
        return x + self.drop(self.ff(self.ff_norm(x)))


class Student(SequenceModel):
    kind = "student"

    def __init__(
        self, config: StudentConfig, num_items: int, objective: str = "causal", mask_prob: float = 0.2
    ) -> None:
        super().__init__(num_items, config.max_len, objective, mask_prob)
        self.config = config
        tokens = num_items + (2 if objective == "cloze" else 1)
        self.item_embedding = nn.Embedding(tokens, config.hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_len, config.hidden)
        self.embed_drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(config.hidden, config.num_heads, config.dropout) for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(config.hidden)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()

    def hidden_states(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.item_embedding(inputs) + self.position_embedding(positions(inputs))
        x = self.embed_drop(x)
        allowed = attention_allowed(inputs, causal=self.objective == "causal")
        for block in self.blocks:
            x = block(x, allowed)
        return self.final_norm(x)

    def last_state(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.embed_drop(self.item_embedding(inputs) + self.position_embedding(positions(inputs)))
        causal = self.objective == "causal"
        # Rows without padding need no mask: the fused attention kernel, no [B, L, L] mask built.
        allowed = None if bool((inputs != PAD).all()) else attention_allowed(inputs, causal=causal)
        for i, block in enumerate(self.blocks):
            x = block(x, allowed, last_only=i == len(self.blocks) - 1, causal=causal)
        return self.final_norm(x)[:, -1]

    def token_embeddings(self) -> torch.Tensor:
        return self.item_embedding.weight

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "num_items": self.num_items,
            "objective": self.objective,
            "mask_prob": self.mask_prob,
            "config": self.config.model_dump(),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Student:
        return cls(StudentConfig(**spec["config"]), spec["num_items"], spec["objective"], spec["mask_prob"])
