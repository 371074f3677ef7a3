"""The command line tried as a new user would: arguments in the wrong order, the wrong kind of
file, tdn valid's layout, hidden files, tdn bench's progress and memory column."""

from __future__ import annotations

import io
import sys

import pytest
from PIL import Image

from tdn.cli import bench, main
from tdn.pipeline import expand_inputs
from tests.batch_helpers import write_small_net

CLASSIFY = "expected: tdn classify [options] CFG WEIGHTS IMAGE...)"


@pytest.fixture
def files(shared):
    return {"cfg": "cfg/tiny.cfg", "weights": str(shared / "weights" / "tiny.weights"),
            "image": str(shared / "images" / "dog.jpg"), "png": str(shared / "images" / "dog-stb.png")}


@pytest.mark.parametrize("order, message", [
    (("image", "weights", "cfg"), "{image}: not a Darknet cfg: it looks like a JPEG image"),
    (("weights", "cfg", "image"), "{weights}: not a Darknet cfg: it looks like binary data (a weights file?)"),
    (("png", "cfg", "weights"), "{png}: not a Darknet cfg: it looks like a PNG image"),
    (("cfg", "image", "weights"), "{image}: not a Darknet weights file: it looks like a JPEG image"),
    (("cfg", "cfg", "image"), "cfg/tiny.cfg: not a Darknet weights file: it looks like a text file"),
])
def test_arguments_in_the_wrong_order_say_the_expected_order(files, capsys, order, message):
    assert main(["classify", *(files[role] for role in order)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tdn: error: " + message.format(**files)) and err.endswith(CLASSIFY + "\n")
    assert err.count("\n") == 1 and "truncated" not in err


def test_other_commands_give_their_own_order(files, capsys):
    assert main(["summary", files["weights"]]) == 1
    assert capsys.readouterr().err.endswith("(arguments in the wrong order? expected: tdn summary [--size WxH] CFG)\n")
    assert main(["export", "onnx", files["cfg"], files["image"], "out.onnx"]) == 1
    assert capsys.readouterr().err.endswith("expected: tdn export onnx CFG WEIGHTS OUT)\n")


def test_a_file_that_is_not_weights_is_not_called_truncated(tmp_path, capsys):
    cfg, _ = write_small_net(tmp_path)
    (tmp_path / "noise.weights").write_bytes(bytes(range(256)) * 3)
    assert main(["summary", str(cfg)]) == 0
    capsys.readouterr()
    assert main(["classify", str(cfg), str(tmp_path / "noise.weights"), "x.png"]) == 1
    err = capsys.readouterr().err
    assert "not a Darknet weights file: its header reads version 50462976.117835012." in err
    assert "truncated" not in err
    # a real weights header, too short: this one may be truncated, and says so with the alternative
    (tmp_path / "short.weights").write_bytes(b"\0\0\0\0\2\0\0\0\0\0\0\0" + b"\0" * 20)
    assert main(["classify", str(cfg), str(tmp_path / "short.weights"), "x.png"]) == 1
    assert "bytes short: truncated, or written for another cfg" in capsys.readouterr().err


def test_valid_says_what_layout_it_expects(tmp_path, capsys):
    cfg, weights = write_small_net(tmp_path)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"c{i}\n" for i in range(10)))
    common = ["valid", "--backend", "numpy", "--labels", str(labels), str(cfg), str(weights)]
    assert main([*common, str(tmp_path / "val")]) == 1
    assert capsys.readouterr().err == (f"tdn: error: {tmp_path / 'val'}: no such folder; tdn valid expects "
                                       f"DIR/<class>/<image>, <class> a label name or a 0-based index\n")
    (tmp_path / "val").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "val" / "loose.png")
    assert main([*common, str(tmp_path / "val")]) == 1
    assert "val: holds images outside class folders (loose.png, ...); tdn valid expects DIR/<class>/<image>" \
        in capsys.readouterr().err
    (tmp_path / "val" / "loose.png").unlink()
    assert main([*common, str(tmp_path / "val")]) == 1
    assert "val: no class folders; tdn valid expects DIR/<class>/<image>" in capsys.readouterr().err
    (tmp_path / "val" / "c3").mkdir()
    (tmp_path / "val" / ".cache").mkdir()  # hidden: not a class
    Image.new("RGB", (8, 8)).save(tmp_path / "val" / "c3" / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "val" / "c3" / ".a.png")
    assert main([*common, str(tmp_path / "val")]) == 0
    assert capsys.readouterr().out.startswith("images: 1 ")


def test_directory_scans_skip_hidden_files_and_folders(tmp_path):
    for name in ("a.png", ".hidden.png", "._a.png", ".thumbs/b.png", "sub/c.png", "sub/.d.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / name, format="PNG")
    assert expand_inputs([str(tmp_path)]) == [str(tmp_path / "a.png"), str(tmp_path / "sub" / "c.png")]
    # a hidden file named explicitly is still read
    assert expand_inputs([str(tmp_path / ".hidden.png")]) == [str(tmp_path / ".hidden.png")]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bench_shows_progress_only_on_a_terminal(monkeypatch):
    runs = range(10)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert bench._progress("x")(runs, expected_seconds=60.0) is runs
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert bench._progress("x")(runs, expected_seconds=60.0) is not runs
    assert bench._progress("x")(runs, expected_seconds=0.1) is runs


def test_bench_memory_column_says_what_it_measures(tmp_path, capsys):
    cfg, _ = write_small_net(tmp_path)
    assert main(["bench", "--backend", "numpy", "--runs", "2", "--warmup", "1", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].split()[-2:] == ["alloc", "MB"]
    assert "alloc MB: the most memory NumPy and Python allocated at once during one run (tracemalloc)" in err
