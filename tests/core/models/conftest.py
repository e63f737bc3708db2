from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from core.models.base import SequenceModel
from tests.core.models.factories import KINDS, make_model

_built: dict[str, SequenceModel] = {}


@pytest.fixture(scope="session")
def text_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("text-encodings")


@pytest.fixture(params=KINDS)
def model(request: pytest.FixtureRequest, text_cache: Path) -> SequenceModel:
    """A fresh copy of each tiny model, built once per session, in eval mode."""
    kind = str(request.param)
    if kind not in _built:
        torch.manual_seed(0)
        _built[kind] = make_model(kind, text_cache)
    return copy.deepcopy(_built[kind]).eval()
