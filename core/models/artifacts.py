"""Model artifacts: a folder with ``model.safetensors``, ``config.json`` and ``metrics.json``.

Loading rebuilds the architecture from the JSON spec and reads plain tensors with safetensors;
nothing is ever unpickled, so an artifact cannot run code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from core.models.base import SequenceModel
from core.models.student import Student
from core.models.teacher import LMTeacher

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"
FORMAT_VERSION = 1
KINDS: dict[str, type[SequenceModel]] = {"student": Student, "teacher": LMTeacher}


class ArtifactError(ValueError):
    pass


def _write_json(path: Path, payload: object) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


def save_model(
    model: SequenceModel, folder: str | Path, metrics: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
) -> Path:
    """Write weights, the architecture spec (plus ``extra`` notes) and metrics into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in model.state_dict().items()}
    tmp = folder / (WEIGHTS + ".tmp")
    save_file(state, str(tmp), metadata={"kind": model.kind, "format": str(FORMAT_VERSION)})
    tmp.replace(folder / WEIGHTS)
    _write_json(folder / CONFIG, {"format": FORMAT_VERSION, "spec": model.spec(), "extra": extra or {}})
    _write_json(folder / METRICS, metrics or {})
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise ArtifactError(f"{folder} is not a model artifact (no {CONFIG})")
    return json.loads(path.read_text())


def read_metrics(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / METRICS
    return json.loads(path.read_text()) if path.is_file() else {}


def load_model(folder: str | Path, device: torch.device | str = "cpu") -> SequenceModel:
    """Rebuild the model described in ``config.json`` and load its safetensors weights (eval mode)."""
    folder = Path(folder)
    payload = read_config(folder)
    if payload.get("format") != FORMAT_VERSION:
        raise ArtifactError(f"{folder}: unsupported artifact format {payload.get('format')!r}")
    spec = payload["spec"]
    kind = KINDS.get(spec.get("kind"))
    if kind is None:
        raise ArtifactError(f"{folder}: unknown model kind {spec.get('kind')!r}")
    model = kind.from_spec(spec)
    state = load_file(str(folder / WEIGHTS))
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
