"""The pre-trained language model: where its checkpoint lives and how it encodes item text."""

from core.text.checkpoint import CheckpointNotFound, checkpoint_identity, resolve_checkpoint
from core.text.encoder import encode_texts

__all__ = ["CheckpointNotFound", "checkpoint_identity", "encode_texts", "resolve_checkpoint"]
