"""The text map as served and saved: ``encodings @ weight + bias`` (optionally rescaled rows),
optionally blended with the text neighbours' rows (neighbours.py), one safetensors file next to
the student's weights, no pickle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from core.distill.text_map.neighbours import Neighbours

TEXT_MAP_FILE = "text_map.safetensors"
FORMAT_VERSION = "2"
"""Written when the map has text neighbours; "1" (a linear map alone) otherwise, so a reader that
knows only "1" refuses a map it would serve without its neighbours."""
FORMATS = ("1", "2")
METHODS = ("ridge", "ranking")
"""How the weights were fitted: regression onto the trained rows, or trained to rank (ranking.py)."""


@dataclass(frozen=True, eq=False)
class TextMap:
    """``encodings @ weight + bias``: ``[N, T]`` LM encodings -> ``[N, D]`` student item vectors;
    with ``neighbours``, ``(1 - blend)`` of that plus ``blend`` of the neighbours' vector."""

    weight: torch.Tensor
    bias: torch.Tensor
    ridge: float
    min_count: int
    lm: str
    valid_ndcg: float | None = None
    """Validation NDCG@10 of the users whose target was a held-out item (None: not validated)."""
    norm: float | None = None
    """Every mapped vector rescaled to this L2 norm (None: as the fit gives it)."""
    method: str = "ridge"
    epochs: int = 0
    """Epochs of ranking training after the ridge start (0 for ``method="ridge"``)."""
    neighbours: Neighbours | None = None
    blend: float = 0.0
    """The neighbours' share of each vector (0: the linear map alone, 1: the neighbours alone)."""

    def __post_init__(self) -> None:
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[1],):
            raise ValueError(f"weight {tuple(self.weight.shape)} and bias {tuple(self.bias.shape)} do not match")
        if self.method not in METHODS:
            raise ValueError(f"unknown text map method {self.method!r} ({' or '.join(METHODS)})")
        if not 0.0 <= self.blend <= 1.0 or (self.blend > 0) != (self.neighbours is not None):
            raise ValueError(f"blend {self.blend} needs neighbours (and a blend in (0, 1] with them)")
        if self.neighbours is not None and (
            self.neighbours.text_dim != self.text_dim or self.neighbours.values.shape[1] != self.dim
        ):
            raise ValueError("the neighbours' keys and rows do not match the linear map's shape")

    @property
    def text_dim(self) -> int:
        return int(self.weight.shape[0])

    @property
    def dim(self) -> int:
        return int(self.weight.shape[1])

    def describe(self) -> str:
        fit = f"ridge {self.ridge:g}" + (f" + {self.epochs} ranking epochs" if self.method == "ranking" else "")
        text = f"{fit}, items seen >= {self.min_count} times" + (f", rows at norm {self.norm:.3g}" if self.norm else "")
        if self.neighbours is None:
            return text
        near = self.neighbours
        scale = f" x {near.scale:g}" if near.scale != 1 else ""
        nb = f"{self.blend:g}{scale} x {near.k} text neighbours (temperature {near.temperature:g})"
        return nb if self.blend == 1 else f"{nb} + {1 - self.blend:g} x ({text})"

    def __call__(self, encodings: torch.Tensor) -> torch.Tensor:
        if encodings.ndim != 2 or encodings.shape[1] != self.text_dim:
            raise ValueError(f"expected encodings [N, {self.text_dim}], got {tuple(encodings.shape)}")
        weight = self.weight.to(encodings.device, torch.float32)
        linear = rescaled(torch.addmm(self.bias.to(weight), encodings.to(torch.float32), weight), self.norm)
        if self.neighbours is None:
            return linear
        return (1 - self.blend) * linear + self.blend * self.neighbours(encodings)

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/TEXT_MAP_FILE`` (tensors plus string metadata), atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / TEXT_MAP_FILE
        tensors = {"weight": self.weight.to(torch.float32), "bias": self.bias.to(torch.float32)}
        if self.neighbours is not None:
            tensors |= self.neighbours.tensors()
        metadata = {
            "format": FORMAT_VERSION if self.neighbours is not None else "1",
            "ridge": repr(float(self.ridge)),
            "min_count": str(int(self.min_count)),
            "lm": self.lm,
            "valid_ndcg": "" if self.valid_ndcg is None else repr(float(self.valid_ndcg)),
            "norm": "" if self.norm is None else repr(float(self.norm)),
            "method": self.method,
            "epochs": str(int(self.epochs)),
            "blend": repr(float(self.blend)),
            "neighbours": str(self.neighbours.k if self.neighbours else 0),
            "temperature": repr(float(self.neighbours.temperature if self.neighbours else 0.0)),
            "neighbour_scale": repr(float(self.neighbours.scale if self.neighbours else 1.0)),
        }
        tmp = folder / (TEXT_MAP_FILE + ".tmp")
        save_file({k: t.detach().to("cpu").contiguous() for k, t in tensors.items()}, str(tmp), metadata)
        tmp.replace(path)
        return path


def rescaled(vectors: torch.Tensor, norm: float | None) -> torch.Tensor:
    """Rows rescaled to L2 norm ``norm`` (None: unchanged)."""
    if norm is None:
        return vectors
    return vectors * (norm / vectors.norm(dim=1, keepdim=True).clamp(min=1e-12))


def load_text_map(folder: str | Path) -> TextMap | None:
    """The map saved in ``folder``; None when there is none, ValueError when it is malformed.

    Maps saved before ranking training existed have no ``method``: they are ridge maps; maps
    saved before text neighbours existed have no ``blend``: the linear map alone."""
    path = Path(folder) / TEXT_MAP_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
            missing = {"weight", "bias"} - set(handle.keys())
            if missing:
                raise ValueError(f"missing tensors {sorted(missing)}")
            weight, bias = handle.get_tensor("weight"), handle.get_tensor("bias")
            blend = float(metadata.get("blend") or 0.0)
            neighbours = None
            if blend > 0:
                neighbours = Neighbours(
                    handle.get_tensor("neighbour_keys").to(torch.float32),
                    handle.get_tensor("neighbour_values").to(torch.float32),
                    k=int(metadata["neighbours"]),
                    temperature=float(metadata["temperature"]),
                    scale=float(metadata.get("neighbour_scale") or 1.0),
                )
        if metadata.get("format") not in FORMATS:
            raise ValueError(f"unsupported format {metadata.get('format')!r}")
        ndcg = metadata["valid_ndcg"]
        return TextMap(
            weight.to(torch.float32),
            bias.to(torch.float32),
            ridge=float(metadata["ridge"]),
            min_count=int(metadata["min_count"]),
            lm=metadata["lm"],
            valid_ndcg=float(ndcg) if ndcg else None,
            norm=float(metadata["norm"]) if metadata.get("norm") else None,
            method=metadata.get("method", "ridge"),
            epochs=int(metadata.get("epochs") or 0),
            neighbours=neighbours,
            blend=blend,
        )
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        detail = f"missing metadata {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(f"malformed text map {path}: {detail}") from exc
