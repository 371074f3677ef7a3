"""Fuzzing: malformed cfgs, weights, images and command lines, each run through tdn's main() in a
worker process under a memory limit (RLIMIT_AS) and a timeout. Every case must end in a correct
result or tdn's own error: exit status 0 or 1 (2: argparse's usage error, for command lines),
nothing on stderr but `tdn: ...` lines (at most one `tdn: error:`), no traceback, no JSON NaN,
no file left outside the case's folder.

Examples per property: TDN_FUZZ_EXAMPLES (default 550: four properties, 2,200 cases a run).
A longer campaign: `TDN_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz.py`; the worker's
memory limit is TDN_FUZZ_MEMORY_MB (default 2048) and each case's timeout TDN_FUZZ_TIMEOUT
seconds (default 60).
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import selectors
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tdn.graph import graph_from_text
from tdn.weights import random_params
from tests.batch_helpers import SMALL_CFG
from tests.conftest import REPO

EXAMPLES = int(os.environ.get("TDN_FUZZ_EXAMPLES", "550"))
MEMORY_MB = int(os.environ.get("TDN_FUZZ_MEMORY_MB", "2048"))
TIMEOUT = float(os.environ.get("TDN_FUZZ_TIMEOUT", "60"))

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example, HealthCheck.filter_too_much])


class Worker:
    """tests/fuzz_worker.py in a subprocess; started again after a case that killed it or ran out of time."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.cases = 0

    def start(self) -> subprocess.Popen:
        env = dict(os.environ, MALLOC_ARENA_MAX="2", TDN_CACHE_DIR=os.devnull + "/no-cache")
        return subprocess.Popen([sys.executable, "-m", "tests.fuzz_worker", str(MEMORY_MB)], cwd=REPO, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, case: dict) -> dict:
        if self.process is None or self.process.poll() is not None:
            self.process = self.start()
        assert self.process.stdin is not None and self.process.stdout is not None
        self.cases += 1
        self.process.stdin.write(json.dumps(case) + "\n")
        self.process.stdin.flush()
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            ready = selector.select(TIMEOUT)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            self.process.wait()
            code = self.process.returncode
            self.process = None
            pytest.fail(f"case {json.dumps(case)[:2000]}: " + (f"no answer within {TIMEOUT} s" if not ready else
                        f"the worker died (exit status {code})"))
        return json.loads(line)

    def close(self) -> None:
        if self.process is not None:
            self.process.stdin.close()  # type: ignore[union-attr]
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def worker():
    running = Worker()
    yield running
    running.close()
    print(f"\nfuzz: {running.cases} cases")


def encoded(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png(width: int, height: int, color=(90, 160, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


SMALL_GRAPH = graph_from_text(SMALL_CFG)


def weights_bytes(params, header=(0, 2, 0), seen=0) -> bytes:
    floats = b"".join(np.asarray(array, "<f4").tobytes() for arrays in params for array in arrays.values())
    return struct.pack("<iii", *header) + struct.pack("<Q", seen) + floats


GOOD_WEIGHTS = weights_bytes(random_params(SMALL_GRAPH, seed=1))
BASE_FILES = {"small.cfg": encoded(SMALL_CFG.encode()), "small.weights": encoded(GOOD_WEIGHTS),
              "good.png": encoded(png(20, 16))}


def judge(case: dict, answer: dict, usage_errors: bool = False) -> None:
    where = f"case {json.dumps(case)[:3000]}\nanswer {json.dumps(answer)[:3000]}"
    assert answer["exception"] is None, where
    assert answer["files"] == [], where
    # Lines end at \n only: str.splitlines would also end them at \x1c-\x1e, \x85, ...
    code, lines = answer["code"], answer["stderr"].split("\n")[:-1]
    if usage_errors and code == 2:
        assert answer["stderr"].startswith("usage: ") and ": error: " in answer["stderr"], where
        return
    assert code in (0, 1), where
    assert "Traceback" not in answer["stderr"], where
    assert all(line.startswith("tdn: ") for line in lines), where
    errors = [line for line in lines if line.startswith("tdn: error: ")]
    assert len(errors) <= 1 and (code == 1 or not errors), where
    if code == 1:
        assert errors or any(line.startswith("tdn: skipped ") for line in lines), where
    assert all(len(line) < 1500 for line in lines), where
    for line in answer["stdout"].splitlines():
        if line.startswith("{"):
            record = json.loads(line, parse_constant=lambda constant: pytest.fail(f"{constant} in JSON: {where}"))
            for entry in record.get("top", []):
                assert math.isfinite(entry["probability"]), where


# --- malformed cfgs ----------------------------------------------------------------------------

HEADERS = ["net", "network", "convolutional", "conv", "maxpool", "max", "avgpool", "avg", "softmax", "soft",
           "connected", "conn", "dropout", "route", "shortcut", "crop", "batchnorm", "upsample", "cost", "local",
           "yolo", "lrn", "wormhole", "", "CONVOLUTIONAL", "net]", "[conv"]
KEYS = ["filters", "size", "stride", "pad", "padding", "groups", "batch_normalize", "activation", "layers", "from",
        "output", "scale", "temperature", "crop_height", "crop_width", "noadjust", "alpha", "beta", "group_id",
        "width", "height", "channels", "probability", "binary", "xnor", "flipped", "reverse", "batch", "frobnicate"]
NUMBERS = st.one_of(st.integers(-3, 40).map(str), st.sampled_from([
    "2147483647", "2147483648", "-2147483649", "99999999999", "1" * 400, "9" * 5000, "1e9", "0x10", "1.5", "nan",
    "inf", "-inf", "1e-45", "3e38", "+7", "-0", "00000000000000000003"]))
VALUES = st.one_of(NUMBERS, st.sampled_from(["leaky", "linear", "relu", "logistic", "mish", "swish", "", "1,2",
                                             "-1,-2", "-1,-999", "0,0,0", "1,,2", "-"]),
                   st.text(st.characters(codec="latin-1"), max_size=30))


@st.composite
def cfg_texts(draw) -> bytes:
    net = (f"[net]\nwidth={draw(st.one_of(st.integers(1, 64).map(str), NUMBERS))}\n"
           f"height={draw(st.one_of(st.integers(1, 64).map(str), NUMBERS))}\n"
           f"channels={draw(st.one_of(st.just('3'), st.integers(1, 5).map(str), NUMBERS))}\n")
    sections = []
    for _ in range(draw(st.integers(0, 6))):
        options = "".join(f"{draw(st.sampled_from(KEYS))}={draw(VALUES)}\n" for _ in range(draw(st.integers(0, 5))))
        sections.append(f"[{draw(st.sampled_from(HEADERS))}]\n{options}")
    text = (net + "".join(sections)).encode("latin-1") if draw(st.booleans()) else SMALL_CFG.encode()
    return draw(mutated(text))


@st.composite
def mutated(draw, data: bytes, nan_floats: bool = False) -> bytes:
    """data with up to four edits: cut, extended, bytes overwritten or inserted (control
    characters, NUL, CR, form feed, high bytes), or a float set to NaN or infinity."""
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["cut", "extend", "overwrite", "insert"] + ["float"] * nan_floats))
        noise = draw(st.binary(max_size=12) | st.sampled_from([b"\x0c", b"\x00", b"\r", b"\x85", b"\x1e", b"\n\n",
                                                               b"\xff\xd8\xff", b"\x89PNG", b"[", b"]", b"=", b"#"]))
        if edit == "cut":
            del data[at:]
        elif edit == "extend":
            data += noise * draw(st.integers(1, 3))
        elif edit == "overwrite":
            data[at:at + len(noise)] = noise
        elif edit == "insert":
            data[at:at] = noise
        elif len(data) >= 24:
            position = 20 + 4 * draw(st.integers(0, (len(data) - 24) // 4))
            data[position:position + 4] = struct.pack("<f", draw(st.sampled_from([math.nan, math.inf, -math.inf])))
    return bytes(data)


@FUZZ
@given(text=cfg_texts(), mode=st.sampled_from(["resize_min", "letterbox", "stretch", "crop"]))
def test_fuzz_cfg(worker, text, mode):
    case = {"files": {**BASE_FILES, "x.cfg": encoded(text)}, "random_weights": ["x.cfg", "x.weights"],
            "argv": ["classify", "--backend", "numpy", "--workers", "0", "--format", "json", "--resize", mode,
                     "{dir}/x.cfg", "{dir}/x.weights", "{dir}/good.png"]}
    judge(case, worker.run(case))


# --- malformed weights -------------------------------------------------------------------------

@st.composite
def weights_files(draw) -> bytes:
    header = (draw(st.sampled_from([0, 1, 1001, -1, 2**31 - 1])), draw(st.sampled_from([0, 1, 2, 1001, 7])),
              draw(st.sampled_from([0, 5, -1])))
    base = weights_bytes(random_params(SMALL_GRAPH, seed=draw(st.integers(0, 3))), header, draw(st.integers(0, 99)))
    choice = draw(st.sampled_from(["mutated", "mutated", "random", "image", "cfg"]))
    if choice == "random":
        return draw(st.binary(max_size=3000))
    if choice == "image":
        return png(8, 8)
    if choice == "cfg":
        return SMALL_CFG.encode()
    return draw(mutated(base, nan_floats=True))


@FUZZ
@given(data=weights_files())
def test_fuzz_weights(worker, data):
    case = {"files": {**BASE_FILES, "x.weights": encoded(data)},
            "argv": ["classify", "--backend", "numpy", "--workers", "0", "--format", "jsonl",
                     "{dir}/small.cfg", "{dir}/x.weights", "{dir}/good.png"]}
    answer = worker.run(case)
    judge(case, answer)
    if answer["code"] == 0:  # a readable file: the result is the one its floats give
        assert answer["stdout"].count('"top"') == 1


# --- malformed images ---------------------------------------------------------------------------

MODES = ["RGB", "L", "RGBA", "P", "1", "LA", "I;16", "I", "F", "CMYK"]
FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp", "TIFF": "tif", "WEBP": "webp", "PPM": "ppm",
           "TGA": "tga"}


def header_only_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IEND", b"")


@st.composite
def image_files(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["pillow", "pillow", "pillow", "header", "random"]))
    if kind == "header":
        size = st.sampled_from([0, 1, 2, 7000, 8000, 60000, 2**31 - 1, 2**32 - 1])
        return "png", header_only_png(draw(size), draw(size))
    if kind == "random":
        return draw(st.sampled_from(list(FORMATS.values()))), draw(st.binary(max_size=2000))
    width = draw(st.one_of(st.integers(1, 48), st.sampled_from([1, 2, 3000, 5000])))
    height = draw(st.one_of(st.integers(1, 48), st.sampled_from([1, 2]))) if width > 48 else \
        draw(st.one_of(st.integers(1, 48), st.sampled_from([1, 2, 3000, 5000])))
    fmt, mode = draw(st.sampled_from(sorted(FORMATS))), draw(st.sampled_from(MODES))
    rng = np.random.default_rng(draw(st.integers(0, 9)))
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), np.uint8)).convert(mode)
    out = io.BytesIO()
    try:
        image.save(out, fmt)
    except (OSError, ValueError, KeyError):
        out = io.BytesIO()
        image.convert("RGB").save(out, fmt)
    return FORMATS[fmt], draw(mutated(out.getvalue()))


@FUZZ
@given(image=image_files(), mode=st.sampled_from(["resize_min", "letterbox", "stretch", "crop"]),
       limit=st.sampled_from([None, None, "1", "100000"]), batch=st.sampled_from(["1", "3"]))
def test_fuzz_images(worker, image, mode, limit, batch):
    extension, data = image
    case = {"files": {**BASE_FILES, f"images/x.{extension}": encoded(data), "images/y.png": BASE_FILES["good.png"]},
            "argv": ["classify", "--backend", "numpy", "--format", "jsonl", "--resize", mode, "--batch", batch,
                     *(["--max-pixels", limit] if limit else []), "{dir}/small.cfg", "{dir}/small.weights",
                     "{dir}/images"]}
    answer = worker.run(case)
    judge(case, answer)
    records = [json.loads(line) for line in answer["stdout"].splitlines()]
    assert [record["image"].rsplit("/", 1)[1] for record in records] == [f"x.{extension}", "y.png"], answer
    assert ("top" in records[1]) == (limit != "1"), answer  # y.png: a readable 20x16 image


# --- command lines ----------------------------------------------------------------------------

PATHS = ["{dir}/small.cfg", "{dir}/small.weights", "{dir}/good.png", "{dir}/images", "{dir}/pipe", "/dev/null",
         "{dir}/missing", "{dir}/out.txt", "{dir}/names.txt", "{dir}", "", "-", "cfg/tiny.cfg"]
OPTIONS = ["--backend", "--precision", "--resize", "--batch", "--workers", "--strict", "--max-pixels", "--top",
           "--names", "--data", "--format", "--output", "--list", "--labels", "--label-rule", "--size", "--runs",
           "--warmup", "--json", "--dir", "--mirror", "--version", "-h", "--bogus"]
WORDS = ["classify", "valid", "summary", "backends", "bench", "export", "onnx", "download", "tiny", "auto", "numpy",
         "reference", "numpy-exact", "cuda", "fp16", "fp64", "letterbox", "crop", "json", "jsonl", "csv", "darknet",
         "folder", "0", "1", "-1", "3", "99999999999999", "1x1", "0x0", "100000x100000", "24x24", "1,2", "1,,2"]
TOKENS = st.one_of(st.sampled_from(PATHS), st.sampled_from(OPTIONS), st.sampled_from(WORDS),
                   st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12))


@st.composite
def command_lines(draw) -> list[str]:
    command = draw(st.sampled_from([["classify"], ["valid"], ["summary"], ["backends"], ["bench"],
                                    ["export", "onnx"], ["download", "tiny"], []]))
    argv = command + draw(st.lists(TOKENS, max_size=9))
    if command[:1] == ["bench"]:
        argv += ["--runs", "1", "--warmup", "1"]  # the last value wins: no case runs for long
    if command[:1] == ["download"]:
        argv += ["--mirror", "{dir}/images", "--dir", "{dir}/downloads"]  # never the network
    return argv


@FUZZ
@given(argv=command_lines())
def test_fuzz_command_lines(worker, argv):
    names = "".join(f"n{i}\n" for i in range(10)).encode()
    case = {"files": {**BASE_FILES, "images/y.png": BASE_FILES["good.png"], "names.txt": encoded(names),
                      "pipe": "fifo:"}, "argv": argv, "stdin": "{dir}/good.png\n"}
    judge(case, worker.run(case), usage_errors=True)


def test_the_worker_enforces_its_memory_limit_and_survives_it(worker):
    answer = worker.run({"allocate_mb": MEMORY_MB + 256, "argv": ["backends"]})
    assert answer["exception"] is not None and "MemoryError" in answer["exception"]
    answer = worker.run({"argv": ["backends"]})
    assert answer["exception"] is None and answer["code"] == 0 and "numpy" in answer["stdout"]
