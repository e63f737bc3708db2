"""Mean-pooled LM encodings of item texts, cached on disk by content hash.

The cache key is sha256(checkpoint identity + every text), so a changed catalogue or model
never reuses stale vectors; the file is a safetensors tensor under ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from core.text.checkpoint import checkpoint_identity

log = logging.getLogger(__name__)


def cache_key(identity: str, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(identity.encode())
    for text in texts:
        digest.update(b"\x00" + text.encode("utf-8"))
    return digest.hexdigest()


def load_lm(checkpoint: Path) -> tuple[Any, Any]:
    """The tokenizer and the LM (eval mode) of a local checkpoint folder, offline."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True)
    model = AutoModel.from_pretrained(str(checkpoint), local_files_only=True).eval()
    return tokenizer, model


@torch.no_grad()
def mean_pooled(
    tokenizer: Any, model: Any, texts: Sequence[str], batch_size: int, max_tokens: int, progress: bool = True
) -> torch.Tensor:
    """``[len(texts), hidden]`` mean-pooled final-layer states (padding left out of the mean)."""
    out = []
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc="encode item texts", leave=False, disable=not progress):
        tokens = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_tokens,
            return_tensors="pt",
        )
        states = model(**tokens).last_hidden_state
        weights = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
        out.append((states * weights).sum(1) / weights.sum(1).clamp(min=1.0))
    hidden = model.config.hidden_size
    return torch.cat(out) if out else torch.zeros(0, hidden)


def _encode(checkpoint: Path, texts: Sequence[str], batch_size: int, max_tokens: int) -> torch.Tensor:
    tokenizer, model = load_lm(checkpoint)
    return mean_pooled(tokenizer, model, texts, batch_size, max_tokens)


def encode_texts(
    checkpoint: Path, texts: Sequence[str], cache_dir: Path | None, batch_size: int = 64, max_tokens: int = 64
) -> torch.Tensor:
    """``[len(texts), hidden]`` mean-pooled final-layer states of the LM at ``checkpoint``."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{cache_key(checkpoint_identity(checkpoint), texts)}.safetensors"
        if path.is_file():
            log.info("item text encodings from cache %s", path)
            return load_file(str(path))["encodings"]
    log.info("encoding %d item texts with %s", len(texts), checkpoint)
    encodings = _encode(checkpoint, texts, batch_size, max_tokens)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({"encodings": encodings.contiguous()}, str(tmp))
        tmp.replace(path)
    return encodings
