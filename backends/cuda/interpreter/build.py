"""A kernel source compiled for the CPU: g++ with execution.h, cached by a hash of everything
that goes into the shared library."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from tdn.backends.cuda.interpreter import ptx, shared

# -ffp-contract=off: every float operation rounds once, as the kernel's text says (nvcc may fuse a
# multiply and an add where the text does not: see the README on what the interpreter cannot see).
# Without _FORTIFY_SOURCE, since a launch leaves a faulting fiber with siglongjmp.
# -fno-gnu-unique: a static local of a template or inline function (a __shared__ array in a
# templated kernel body, execution.h's launch state) is otherwise one object per process, shared
# by every library loaded: two variants of conv.cu, whose conv_body<MODE> declares its tiles with
# different sizes, would share the first one's arrays. As plain weak symbols each library keeps its own.
FLAGS = ("-std=c++17", "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math", "-U_FORTIFY_SOURCE",
         "-fno-strict-aliasing", "-fno-gnu-unique", "-w")


def cache_dir() -> Path:
    """$TDN_CACHE_DIR, else $XDG_CACHE_HOME/tdn/cuda-interpreter, else ~/.cache/tdn/cuda-interpreter."""
    if configured := os.environ.get("TDN_CACHE_DIR"):
        return Path(configured) / "cuda-interpreter"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tdn" / "cuda-interpreter"


def _machine_flags() -> tuple[str, ...]:
    """Fused multiply-add instructions where the CPU has them: fmaf() is then one instruction
    (it is always the exactly rounded fma, with or without them)."""
    try:
        cpu = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    return ("-mfma",) if " fma " in cpu else ()


def header_text() -> str:
    here = resources.files("tdn.backends.cuda.interpreter")
    return here.joinpath("execution.h").read_text() + here.joinpath("ptx.h").read_text()


def compile_source(source: str, name: str, entries: tuple[str, ...], defines: dict[str, int]) -> Path:
    """The shared library of `source` (a kernel's text as NVRTC gets it) with one launch function
    per entry point; built once per content."""
    program = shared.register(ptx.rewrite(source, name)) + "".join(f"\nTDN_ENTRY({entry})" for entry in entries) + "\n"
    flags = (*FLAGS, *_machine_flags(), *(f"-D{key}={value}" for key, value in sorted(defines.items())))
    key = hashlib.sha256("\0".join((program, header_text(), *flags)).encode()).hexdigest()[:24]
    folder = cache_dir()
    library = folder / f"{Path(name).stem}-{key}.so"
    if library.is_file():
        return library
    folder.mkdir(parents=True, exist_ok=True)
    compiler = os.environ.get("CXX", "g++")
    header = resources.files("tdn.backends.cuda.interpreter").joinpath("execution.h")
    with tempfile.TemporaryDirectory(dir=folder) as work:
        source_file = Path(work) / name.replace(".cu", ".cpp")
        source_file.write_text(program)
        built = Path(work) / "kernel.so"
        with resources.as_file(header) as header_path:
            result = subprocess.run([compiler, *flags, "-include", str(header_path), "-o", str(built),
                                     str(source_file)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{name}: the CPU build failed:\n{result.stderr.strip()}")
        os.replace(built, library)  # atomic: a reader sees no library or a whole one
    return library
