"""Download MovieLens archives from GroupLens into a cache folder, verified by checksum."""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Remote:
    url: str
    md5: str
    folder: str
    """The folder the archive unpacks into."""


REMOTES = {
    "ml-1m": Remote(
        "https://files.grouplens.org/datasets/movielens/ml-1m.zip", "c4d9eecfca2ab87c1945afe126590906", "ml-1m"
    ),
    "ml-100k": Remote(
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip", "0e33842e24a9c977be4e0107933c0723", "ml-100k"
    ),
}


class FetchError(RuntimeError):
    """A download failed; the message says why in plain words."""


def md5sum(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path, timeout: float) -> None:
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with partial.open("wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise FetchError(
            f"could not download {url}: {reason}. The machine looks offline or "
            f"GroupLens is unreachable. Download the archive elsewhere, unpack it, and "
            f"give its folder path wherever a dataset name is asked for."
        ) from None
    partial.replace(target)


def fetch(name: str, download_dir: Path, timeout: float = 30.0) -> Path:
    """Download and unpack dataset ``name``; return its folder. Cached after the first call."""
    if name not in REMOTES:
        raise FetchError(f"unknown dataset {name!r}; known: {', '.join(sorted(REMOTES))}")
    remote = REMOTES[name]
    folder = download_dir / remote.folder
    if (folder / ".complete").is_file():
        return folder
    download_dir.mkdir(parents=True, exist_ok=True)
    archive = download_dir / Path(remote.url).name
    if not archive.is_file():
        log.info("downloading %s", remote.url)
        _download(remote.url, archive, timeout)
    actual = md5sum(archive)
    if actual != remote.md5:
        archive.unlink()
        raise FetchError(
            f"{archive}: checksum mismatch (md5 {actual}, expected {remote.md5}); the file was removed, try again"
        )
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(download_dir)
    (folder / ".complete").write_text(remote.md5)
    return folder
