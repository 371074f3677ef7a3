"""tdn download against a local HTTP server on loopback: no test needs the internet."""

import functools
import hashlib
import http.server
import os
import stat
import threading

import pytest

from tdn.cli import main
from tdn.download import Artifact, fetch
from tdn.errors import DownloadError


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_fetch_checks_sha256_and_skips_a_good_copy(server, tmp_path):
    root, base = server
    (root / "a.bin").write_bytes(b"weights")
    artifact = Artifact("a.bin", f"{base}/a.bin", hashlib.sha256(b"weights").hexdigest())
    target = fetch(artifact, tmp_path / "cache")
    assert target.read_bytes() == b"weights"
    (root / "a.bin").unlink()  # a second fetch must not need the server
    assert fetch(artifact, tmp_path / "cache") == target


def test_checksum_mismatch_leaves_nothing_behind(server, tmp_path):
    root, base = server
    (root / "a.bin").write_bytes(b"tampered")
    artifact = Artifact("a.bin", f"{base}/a.bin", hashlib.sha256(b"weights").hexdigest())
    with pytest.raises(DownloadError, match="a.bin: SHA-256 .* does not match the expected"):
        fetch(artifact, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # fetch made the folder, and took it away again
    (tmp_path / "kept").mkdir()
    with pytest.raises(DownloadError):
        fetch(artifact, tmp_path / "kept")
    assert list((tmp_path / "kept").iterdir()) == []  # a folder that was there stays, empty


def test_missing_file_is_a_download_error(server, tmp_path):
    _, base = server
    with pytest.raises(DownloadError, match="missing.bin: download failed"):
        fetch(Artifact("missing.bin", f"{base}/missing.bin", "0" * 64), tmp_path / "cache")


def test_cli_download_tiny_from_a_mirror(server, tmp_path, shared, capsys, monkeypatch):
    root, base = server
    (root / "tiny.weights").write_bytes((shared / "weights" / "tiny.weights").read_bytes())
    (root / "tiny.cfg").write_bytes((shared / "cfg" / "tiny.cfg").read_bytes())
    (root / "imagenet.shortnames.list").write_bytes((shared / "data" / "imagenet.shortnames.list").read_bytes())
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["download", "tiny", "--mirror", base]) == 0
    printed = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[1] for p in printed] == ["tiny.weights", "tiny.cfg", "imagenet.shortnames.list"]
    assert (tmp_path / "cache" / "tiny.weights").stat().st_size == 4185968
    (root / "tiny.cfg").write_text("changed")
    assert main(["download", "tiny", "--mirror", base]) == 0  # cached copies are kept, not refetched


def test_mirror_may_be_a_local_folder_and_files_respect_the_umask(tmp_path, monkeypatch, capsys):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "a.bin").write_bytes(b"weights")
    artifact = Artifact("a.bin", "https://example.invalid/a.bin", hashlib.sha256(b"weights").hexdigest())
    old = os.umask(0o022)
    try:
        target = fetch(artifact, tmp_path / "cache", mirror=str(tmp_path / "mirror"))
        assert target.read_bytes() == b"weights"
        assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not a temporary file's 0600
    finally:
        os.umask(old)
    assert fetch(artifact, tmp_path / "other", mirror=(tmp_path / "mirror").as_uri()).read_bytes() == b"weights"
    # A folder without the file, or one that does not exist: a one-line error, nothing written.
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path / "new"))
    assert main(["download", "tiny", "--mirror", str(tmp_path / "mirror")]) == 1
    assert "tiny.weights: cannot read mirrored file" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert main(["download", "tiny", "--mirror", str(tmp_path / "nowhere")]) == 1
    assert "neither a URL nor an existing folder" in capsys.readouterr().err
