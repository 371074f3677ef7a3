"""Files and streams: non-regular inputs refused at once, outputs whole or absent (even after
SIGKILL), SIGTERM/SIGHUP cleaned up like Ctrl-C, created files respecting the umask."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from tdn import files
from tdn.cli import main
from tests.batch_helpers import write_small_net


@contextlib.contextmanager
def deadline(seconds: int):
    """A test that would hang (a blocking open of a FIFO) fails instead."""
    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def net(tmp_path):
    cfg, weights = write_small_net(tmp_path)
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "a.png")
    return str(cfg), str(weights), str(tmp_path / "a.png")


# (A directory given as an image is searched for images, so it is not in the cases.)
@pytest.mark.parametrize("role, special", [
    (role, special) for role in ("cfg", "weights", "image", "list", "names", "data")
    for special in ("fifo", "/dev/zero", "directory") if (role, special) != ("image", "directory")])
def test_non_regular_files_are_refused_at_once(net, tmp_path, capsys, role, special):
    if special == "fifo":
        path = str(tmp_path / "pipe")
        os.mkfifo(path)
        kind = "a FIFO (named pipe)"
    elif special == "directory":
        path, kind = str(tmp_path), "a directory"
    else:
        if not os.path.exists(special):
            pytest.skip(f"{special} does not exist here")
        path, kind = special, "a character device"
    cfg, weights, image = net
    args = {"cfg": [cfg, weights, image], "weights": [cfg, weights, image], "image": [cfg, weights, image],
            "list": [cfg, weights, "--list", path], "names": ["--names", path, cfg, weights, image],
            "data": ["--data", path, cfg, weights, image]}[role]
    args = [path if (role, i) in (("cfg", 0), ("weights", 1)) else a for i, a in enumerate(args)]
    if role == "image":
        args[2] = path
    with deadline(20):
        code = main(["classify", "--backend", "numpy", "--workers", "0", *args])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{path}: cannot read" in err and f"it is {kind}, not a regular file" in err
    assert all(line.startswith("tdn: ") for line in err.splitlines())


@pytest.mark.parametrize("output, message", [
    ("", "the --output path is empty: give a file name"),
    (".", ".: the --output is a directory: give a file name"),
    ("no/such/folder/out.txt",
     "no/such/folder/out.txt: cannot write the --output: folder no/such/folder does not exist"),
])
def test_a_bad_output_path_is_an_error_before_any_work(capsys, output, message):
    # The cfg does not exist either: the output is checked first, before any work.
    assert main(["classify", "--output", output, "missing.cfg", "missing.weights", "missing.png"]) == 1
    assert capsys.readouterr().err == f"tdn: error: {message}\n"


def test_export_and_bench_check_their_output_paths_first(capsys, tmp_path):
    assert main(["export", "onnx", "missing.cfg", "missing.weights", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"tdn: error: {tmp_path}: the ONNX file is a directory: give a file name\n"
    assert main(["bench", "--json", "", "missing.cfg"]) == 1
    assert capsys.readouterr().err == "tdn: error: the --json path is empty: give a file name\n"


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "fallback"])
def test_atomic_file_respects_the_umask_and_leaves_nothing_on_error(tmp_path, monkeypatch, unnamed):
    if not unnamed:
        monkeypatch.setattr(files, "_unnamed", lambda folder: None)
    elif files._unnamed(tmp_path) is None:
        pytest.skip("no O_TMPFILE here")
    old = os.umask(0o027)
    try:
        with files.atomic_file(tmp_path / "out.txt") as handle:
            handle.write("first\n")
        assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o640
        with pytest.raises(RuntimeError), files.atomic_file(tmp_path / "out.txt") as handle:
            handle.write("half")
            raise RuntimeError("stopped")
        assert listing(tmp_path) == ["out.txt"] and (tmp_path / "out.txt").read_text() == "first\n"
        with files.atomic_file(tmp_path / "out.txt") as handle:
            handle.write("second\n")
        assert listing(tmp_path) == ["out.txt"] and (tmp_path / "out.txt").read_text() == "second\n"
    finally:
        os.umask(old)


def long_run(tmp_path: Path, net, out: Path) -> subprocess.Popen:
    """tdn classify over many copies of an image into `out`, slowly enough to be killed midway."""
    cfg, weights, image = net
    (tmp_path / "many.txt").write_text(f"{image}\n" * 20000)
    # The reference backend: the numpy one's thread team can hang at exit when its run is
    # interrupted (a barrier left waiting; Ctrl-C alike), which is not what this test is about.
    return subprocess.Popen([sys.executable, "-m", "tdn", "classify", "--backend", "reference", "--workers", "0",
                             "--format", "jsonl", "--output", str(out), "--list", str(tmp_path / "many.txt"),
                             cfg, weights], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_open_output(process: subprocess.Popen, folder: Path) -> None:
    """Until the process holds a file in `folder` open for writing (the output being written)."""
    fds = Path(f"/proc/{process.pid}/fd")
    for _ in range(600):
        with contextlib.suppress(OSError):
            if any(os.readlink(fd).startswith(str(folder)) for fd in fds.iterdir()):
                time.sleep(0.3)  # well into the run
                return
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the output in {folder} was never opened: {process.communicate()[1]}")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to watch the child's files")
@pytest.mark.parametrize("signum, status", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 128 + signal.SIGTERM),
                                            (signal.SIGHUP, 128 + signal.SIGHUP)])
def test_a_killed_run_leaves_no_partial_or_temporary_file(tmp_path, net, signum, status):
    folder = tmp_path / "results"
    folder.mkdir()
    process = long_run(tmp_path, net, folder / "out.jsonl")
    wait_for_open_output(process, folder)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert "Traceback" not in err
    assert listing(folder) == []


def test_sigterm_cleans_up_the_fallback_temporary_file_like_ctrl_c(tmp_path, net, monkeypatch, capsys):
    monkeypatch.setattr(files, "_unnamed", lambda folder: None)  # a file system without O_TMPFILE
    cfg, weights, image = net
    (tmp_path / "many.txt").write_text(f"{image}\n" * 20000)
    folder = tmp_path / "results"
    folder.mkdir()

    def terminate_when_writing():
        for _ in range(600):
            if listing(folder):
                time.sleep(0.2)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.02)

    # The host's own handler: it must be back after main(), and it keeps a signal that came too
    # late from ending pytest.
    late: list[int] = []

    def host(signum, frame):
        late.append(signum)

    previous = signal.signal(signal.SIGTERM, host)
    try:
        killer = threading.Thread(target=terminate_when_writing)
        killer.start()
        code = main(["classify", "--backend", "reference", "--workers", "0", "--output", str(folder / "out.txt"),
                     "--list", str(tmp_path / "many.txt"), cfg, weights])
        killer.join()
        assert code == 128 + signal.SIGTERM and late == []
        assert listing(folder) == []
        assert signal.getsignal(signal.SIGTERM) is host
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_export_onnx_is_atomic_and_respects_the_umask(tmp_path, net):
    pytest.importorskip("onnx")
    cfg, weights, _ = net
    target = tmp_path / "model.onnx"
    target.write_text("old")
    bad = tmp_path / "bad.cfg"
    bad.write_text("[net]\nwidth=8\nheight=8\n[connected]\noutput=4\n[route]\nlayers=-1\n")
    assert main(["export", "onnx", str(bad), weights, str(target)]) == 1
    assert target.read_text() == "old"
    old = os.umask(0o022)
    try:
        assert main(["export", "onnx", cfg, weights, str(target)]) == 0
    finally:
        os.umask(old)
    assert target.read_bytes()[:1] != b"o" and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert listing(tmp_path) == sorted(["a.png", "bad.cfg", "model.onnx", "small.cfg", "small.weights"])
