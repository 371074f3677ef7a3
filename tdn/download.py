"""Fetching published Darknet files into the user cache, checked by SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tdn.errors import DownloadError


@dataclass(frozen=True)
class Artifact:
    filename: str
    url: str
    sha256: str


DARKNET_RAW = "https://raw.githubusercontent.com/pjreddie/darknet/master"

BUNDLES: dict[str, tuple[Artifact, ...]] = {
    "tiny": (
        Artifact("tiny.weights", "https://pjreddie.com/media/files/tiny.weights",
                 "f1c3fe6b9bab9af69ae2a090682df3e5b9d83accba69551315f030ce1b37ea81"),
        Artifact("tiny.cfg", f"{DARKNET_RAW}/cfg/tiny.cfg",
                 "54732dd230c45c22b5a6fe392274d1cbd9e6147bf6640fe76559d5f4bc3c41bf"),
        Artifact("imagenet.shortnames.list", f"{DARKNET_RAW}/data/imagenet.shortnames.list",
                 "6ba751a14e6470ccaf740476ab79df657925d29d9f29311629eed20f7efb0ed5"),
    ),
}


def cache_dir() -> Path:
    """$TDN_CACHE_DIR, else $XDG_CACHE_HOME/tdn, else ~/.cache/tdn."""
    if os.environ.get("TDN_CACHE_DIR"):
        return Path(os.environ["TDN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tdn"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(artifact: Artifact, directory: Path, mirror: str | None = None, timeout: float = 60) -> Path:
    """Download one artifact unless a copy with the right checksum is already there."""
    target = directory / artifact.filename
    if target.is_file() and sha256_of(target) == artifact.sha256:
        return target
    url = f"{mirror.rstrip('/')}/{artifact.filename}" if mirror else artifact.url
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=f".{artifact.filename}.", delete=False) as handle:
        partial = Path(handle.name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    handle.write(block)
        except (urllib.error.URLError, OSError) as error:
            partial.unlink(missing_ok=True)
            raise DownloadError(f"{url}: download failed: {getattr(error, 'reason', error)}") from None
    found = sha256_of(partial)
    if found != artifact.sha256:
        partial.unlink()
        raise DownloadError(f"{url}: SHA-256 {found} does not match the expected {artifact.sha256}")
    os.replace(partial, target)
    return target


def download(bundle: str, directory: Path | None = None, mirror: str | None = None) -> list[Path]:
    if bundle not in BUNDLES:
        raise DownloadError(f"unknown download '{bundle}' (known: {', '.join(sorted(BUNDLES))})")
    return [fetch(artifact, directory or cache_dir(), mirror) for artifact in BUNDLES[bundle]]
