import json
import subprocess
import sys

import pytest

from tdn.cli import main

PAGE = """malamute: 0.167168
Eskimo dog: 0.065828
dogsled: 0.063020
standard schnauzer: 0.051153
Siberian husky: 0.037506
"""


@pytest.fixture
def tiny(shared):
    return ["cfg/tiny.cfg", str(shared / "weights" / "tiny.weights")]


@pytest.fixture
def names(shared):
    return ["--names", str(shared / "data" / "imagenet.shortnames.list")]


def test_the_tiny_darknet_page_digit_for_digit(capsys, shared, tiny, names):
    image = str(shared / "images" / "dog-stb.png")
    assert main(["classify", "--backend", "numpy-exact", *names, *tiny, image]) == 0
    lines = capsys.readouterr().out.splitlines(keepends=True)
    assert lines[0].startswith(f"{image}: Predicted in ") and lines[0].endswith(" seconds.\n")
    assert "".join(lines[1:]) == PAGE


def test_fast_backend_same_classes_within_a_rounding_step(capsys, shared, tiny, names):
    assert main(["classify", "--backend", "numpy", *names, *tiny, str(shared / "images" / "dog-stb.png")]) == 0
    ours = [line.rsplit(": ", 1) for line in capsys.readouterr().out.splitlines()[1:]]
    page = [line.rsplit(": ", 1) for line in PAGE.splitlines()]
    assert [name for name, _ in ours] == [name for name, _ in page]
    for (_, mine), (_, theirs) in zip(ours, page):
        assert abs(float(mine) - float(theirs)) <= 1.5e-6


def test_darknet_master_format_matches_darknet_classify(capsys, shared):
    data = shared / "cfg" / "imagenet1k.data"  # names=data/imagenet.shortnames.list, resolved beside it
    assert main(["classify", "--format", "darknet-master", "--resize", "letterbox", "--data", str(data),
                 "cfg/tiny.cfg", str(shared / "weights" / "tiny-random.weights"),
                 str(shared / "images" / "dog-stb.png")]) == 0
    captured = capsys.readouterr()
    assert captured.out == (shared / "reference" / "classify_master_stdout.txt").read_text()
    assert "dog-stb.png: Predicted in " in captured.err


def test_json_several_images_and_top(capsys, shared, tiny, names):
    images = [str(shared / "images" / "dog-stb.png"), str(shared / "images" / "dog.jpg")]
    assert main(["classify", "--format", "json", "--top", "3", *names, *tiny, *images]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["image"] for r in records] == images
    for record in records:
        assert [t["name"] for t in record["top"]] == ["malamute", "Eskimo dog", "dogsled"]
        assert record["top"][0]["index"] == 14 and record["seconds"] > 0
        assert record["top"][0]["probability"] > record["top"][1]["probability"]


def test_without_names_prints_indices_and_says_how_to_get_names(capsys, shared, tiny):
    assert main(["classify", "--top", "2", *tiny, str(shared / "images" / "dog-stb.png")]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1].startswith("14: 0.1671")
    assert "--names" in captured.err and "tdn download tiny" in captured.err


def test_summary_and_backends(capsys):
    assert main(["summary", "--size", "298x224", "cfg/tiny.cfg"]) == 0
    out = capsys.readouterr().out
    assert "   19 conv   1000  1 x 1 / 1    19 x  14 x 128   ->    19 x  14 x1000  0.068 BFLOPs" in out
    assert "    0 conv     16  3 x 3 / 1   298 x 224 x   3   ->   298 x 224 x  16  0.058 BFLOPs" in out
    assert main(["backends"]) == 0
    rows = {line.split()[0]: line.split()[1:3] for line in capsys.readouterr().out.splitlines()}
    assert rows["numpy"] == rows["numpy-exact"] == ["available", "fp32"]
    assert rows["cuda"][1] == "fp32,tf32,fp16" and rows["reference"] == ["available", "fp64"]


def run_tdn(*args):
    return subprocess.run([sys.executable, "-m", "tdn", *args], capture_output=True, text=True)


@pytest.mark.parametrize("make_args, message", [
    (lambda d, t: ["classify", str(t / "bad.cfg"), str(d / "weights" / "tiny.weights"), str(d / "images" / "dog.jpg")],
     "bad.cfg:5: [convolutional] option 'filters': expected an integer, got 'many'"),
    (lambda d, t: ["classify", "cfg/tiny.cfg", str(t / "short.weights"), str(d / "images" / "dog.jpg")],
     "short.weights: expected 4185968 bytes for cfg/tiny.cfg (16-byte header + 1046488 floats), "
     "found 4185900 (68 bytes short: truncated, or written for another cfg)"),
    (lambda d, t: ["classify", "cfg/tiny.cfg", str(d / "weights" / "tiny.weights"), str(t / "text.jpg")],
     "text.jpg: not a readable image"),
    (lambda d, t: ["classify", "cfg/tiny.cfg", str(d / "weights" / "tiny.weights"), str(t / "none.jpg")],
     "none.jpg: cannot read image"),
    (lambda d, t: ["classify", "--backend", "metal", "cfg/tiny.cfg", str(d / "weights" / "tiny.weights"),
                   str(d / "images" / "dog.jpg")],
     "unknown backend 'metal'"),
    (lambda d, t: ["summary", str(t / "unknown.cfg")], "unknown.cfg:5: unknown layer type [wormhole]"),
])
def test_bad_input_is_one_line_and_exit_1(shared, tmp_path, make_args, message):
    (tmp_path / "bad.cfg").write_text("[net]\nwidth=8\nheight=8\n[convolutional]\nfilters=many\n")
    (tmp_path / "unknown.cfg").write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[wormhole]\n")
    (tmp_path / "short.weights").write_bytes((shared / "weights" / "tiny.weights").read_bytes()[:4185900])
    (tmp_path / "text.jpg").write_text("hello")
    result = run_tdn(*make_args(shared, tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # One line per problem (an unreadable image is skipped and counted, then exit 1).
    assert all(line.startswith("tdn: ") for line in result.stderr.splitlines())
    assert any(message in line for line in result.stderr.splitlines())


def test_a_precision_the_backend_does_not_offer_is_a_one_line_error(capsys, shared, tiny):
    image = str(shared / "images" / "dog-stb.png")
    assert main(["classify", "--backend", "numpy", "--precision", "fp16", *tiny, image]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "backend 'numpy' does not offer precision fp16 (it offers: fp32)" in err


def test_the_default_precision_is_the_backends_first(capsys, shared, tiny):
    image = str(shared / "images" / "dog-stb.png")
    assert main(["classify", "--backend", "numpy", "--precision", "fp32", *tiny, image]) == 0
    assert "Predicted in" in capsys.readouterr().out
