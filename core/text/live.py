"""Item texts encoded one at a time while serving: new items arriving on the stream.

``encode_texts`` (``core.text.encoder``) reads a whole catalogue once, cached on disk by content
hash. A live process instead sees a few new item texts at a time: ``TextEncoder`` loads the LM
once, on first use (a process that never sees a new item never pays for it), and keeps each
text's vector in memory, so a redelivered or re-announced item costs nothing. The vectors are
the same mean-pooled encodings as ``encode_texts`` gives (same pooling, same token limit), which
is what a text map (``core.distill.text_map``) was fitted on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from core.text.checkpoint import checkpoint_identity, resolve_checkpoint
from core.text.encoder import load_lm, mean_pooled

log = logging.getLogger(__name__)

MAX_TOKENS = 64
DEFAULT_CACHE = 100_000


class TextEncoder:
    """Mean-pooled LM encodings of item texts; ``checkpoint`` None means the bundled MiniLM."""

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        max_tokens: int = MAX_TOKENS,
        batch_size: int = 32,
        cache_size: int = DEFAULT_CACHE,
    ) -> None:
        self.checkpoint = checkpoint
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.cache: dict[str, torch.Tensor] = {}
        self._lm: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._lm is not None

    def identity(self) -> str:
        """The checkpoint's content hash (``core.text.checkpoint_identity``): a text map fitted on
        encodings of another LM must not read these."""
        return checkpoint_identity(resolve_checkpoint(self.checkpoint))

    def _model(self) -> tuple[Any, Any]:
        if self._lm is None:
            folder = resolve_checkpoint(self.checkpoint)
            log.info("loading the language model at %s to encode new item texts", folder)
            self._lm = load_lm(folder)
        return self._lm

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """``float32 [len(texts), hidden]``, in order; texts seen before come from the cache."""
        with self._lock:
            if not texts:
                return torch.zeros(0, self._model()[1].config.hidden_size)
            missing = list(dict.fromkeys(text for text in texts if text not in self.cache))
            fresh: dict[str, torch.Tensor] = {}
            if missing:
                tokenizer, model = self._model()
                vectors = mean_pooled(tokenizer, model, missing, self.batch_size, self.max_tokens, progress=False)
                fresh = dict(zip(missing, vectors.to(torch.float32), strict=True))
            out = torch.stack([fresh[text] if text in fresh else self.cache[text] for text in texts])
            if len(self.cache) + len(fresh) > self.cache_size:
                self.cache.clear()  # rare (that many distinct texts); simpler than an LRU
            self.cache.update(fresh)
            return out
