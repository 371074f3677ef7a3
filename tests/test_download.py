"""tdn download against a local HTTP server on loopback: no test needs the internet."""

import functools
import hashlib
import http.server
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
    assert list((tmp_path / "cache").iterdir()) == []


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
