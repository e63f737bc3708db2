"""Live text encodings: the same vectors as the catalogue encoder, the LM loaded once, a cache."""

from __future__ import annotations

import torch

from core.text import checkpoint_identity, encode_texts
from core.text.checkpoint import default_checkpoint
from core.text.live import TextEncoder

TEXTS = ["Heat (1995). Genres: Action, Crime.", "A toy train. Brand: Acme.", "Heat (1995). Genres: Action, Crime."]


def test_live_encodings_equal_the_catalogue_encoder_and_are_cached() -> None:
    encoder = TextEncoder(None)
    assert not encoder.loaded  # nothing loaded before the first text
    vectors = encoder.encode(TEXTS)
    expected = encode_texts(default_checkpoint(), TEXTS, cache_dir=None)
    assert vectors.shape == (3, 384) and vectors.dtype == torch.float32
    torch.testing.assert_close(vectors, expected, atol=1e-5, rtol=1e-4)
    assert encoder.loaded and len(encoder.cache) == 2  # the repeated text once
    lm = encoder._lm
    again = encoder.encode([TEXTS[1], "Ronin (1998)"])
    assert encoder._lm is lm  # loaded once
    torch.testing.assert_close(again[0], vectors[1])
    torch.testing.assert_close(again[1:], encode_texts(default_checkpoint(), ["Ronin (1998)"], cache_dir=None))
    assert encoder.encode([]).shape == (0, 384)
    assert encoder.identity() == checkpoint_identity(default_checkpoint())


def test_a_full_cache_starts_again_without_losing_the_answer() -> None:
    encoder = TextEncoder(None, cache_size=2)
    first = encoder.encode(TEXTS[:2])
    both = encoder.encode(["Ronin (1998)", TEXTS[0]])  # over the limit: cleared, then this call's texts
    torch.testing.assert_close(both[1], first[0])
    assert set(encoder.cache) == {"Ronin (1998)"}
