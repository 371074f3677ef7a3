"""Fetching published Darknet files into the user cache, checked by SHA-256 (pooch downloads)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tdn.errors import DownloadError
from tdn.files import atomic_file, open_regular


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


class _Hashing:
    """A binary file that hashes what is written to it, so the download is checked as it arrives."""

    def __init__(self, handle: IO[bytes]):
        self.handle = handle
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def _local_folder(mirror: str) -> Path | None:
    """The folder a mirror names (a path or a file:// URL), or None for a remote URL."""
    if mirror.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlparse(mirror).path))
    return None if "://" in mirror else Path(mirror)


def _copy_from_folder(source: Path, out: _Hashing) -> None:
    with open_regular(source, "mirrored file", DownloadError) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            out.write(block)


def _download(url: str, out: _Hashing, timeout: float) -> None:
    """HTTP(S), FTP, SFTP or DOI through pooch's downloaders (requests: proxies, TLS, redirects)."""
    import pooch
    import requests

    progressbar = sys.stderr.isatty()
    try:
        downloader = pooch.HTTPDownloader(progressbar=progressbar, timeout=timeout) \
            if url.startswith(("http://", "https://")) else pooch.downloaders.choose_downloader(url, progressbar)
    except ValueError as error:
        raise DownloadError(f"{url}: {error}") from None
    try:
        downloader(url, out, None)
    except (requests.RequestException, OSError) as error:
        raise DownloadError(f"{url}: download failed: {error}") from None


def fetch(artifact: Artifact, directory: Path, mirror: str | None = None, timeout: float = 60) -> Path:
    """Download one artifact unless a copy with the right checksum is already there.

    `mirror` is a base URL or a local folder holding the same file names. The file is written
    through tdn.files.atomic_file and checked by SHA-256 before it is put in place: a failed,
    interrupted or tampered download leaves nothing behind, not even the folder when fetch made it.
    """
    import pooch

    target = directory / artifact.filename
    if target.is_file() and pooch.file_hash(str(target), alg="sha256") == artifact.sha256:
        return target
    folder = _local_folder(mirror) if mirror else None
    if folder is not None and not folder.is_dir():
        raise DownloadError(f"{mirror}: the mirror is neither a URL nor an existing folder")
    source = str(folder / artifact.filename) if folder is not None else \
        f"{mirror.rstrip('/')}/{artifact.filename}" if mirror else artifact.url
    made = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_file(target, binary=True, what="download") as handle:
            out = _Hashing(handle)
            if folder is not None:
                _copy_from_folder(folder / artifact.filename, out)
            else:
                _download(source, out, timeout)
            if out.digest.hexdigest() != artifact.sha256:
                raise DownloadError(f"{source}: SHA-256 {out.digest.hexdigest()} does not match the "
                                    f"expected {artifact.sha256}")
    except OSError as error:
        raise DownloadError(f"{directory}: cannot write: {error.strerror or error}") from None
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when still empty
        raise
    return target


def download(bundle: str, directory: Path | None = None, mirror: str | None = None) -> list[Path]:
    if bundle not in BUNDLES:
        raise DownloadError(f"unknown download '{bundle}' (known: {', '.join(sorted(BUNDLES))})")
    return [fetch(artifact, directory or cache_dir(), mirror) for artifact in BUNDLES[bundle]]
