"""Every kernels/*.cu compiles for sm_80 and sm_90 without register spills or local-memory
stack frames, and compiles with NVRTC (no GPU needed).

Compiles exactly the text and options cupy.RawModule gets (kernels.kernel_source,
kernels.compile_options) with nvcc to a cubin, and reads ptxas's -v report; and with NVRTC. nvcc is part
of the machine image CI runs on; its absence fails the test rather than skipping it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest
from tdn.backends.cuda import kernels

pytestmark = pytest.mark.kernels

ARCHES = ("sm_80", "sm_90")
_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_ENTRY = re.compile(r"Compiling entry function '(\w+)' for '(sm_\d+)'")


def find_nvcc() -> str:
    nvcc = os.environ.get("NVCC") or shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    assert Path(nvcc).is_file(), "nvcc not found: set NVCC or put CUDA's bin directory on PATH"
    return nvcc


# Every .cu in the package, whether or not kernels.KERNELS lists it.
SOURCES = sorted(entry.name for entry in resources.files("tdn.kernels").iterdir() if entry.name.endswith(".cu"))
# Each source once per compile-time variant (conv.cu's tilings); "" the only one of the others.
BUILDS = [(name, variant) for name in SOURCES for variant in kernels.VARIANTS.get(name, ("",))]


def spilling_functions(report: str) -> list[str]:
    """The entry functions ptxas reports as spilling registers or using a stack frame (local
    memory: a spill, or an array the compiler could not keep in registers), from its -v output."""
    spilling, current = [], None
    for line in report.splitlines():
        if entry := _ENTRY.search(line):
            current = entry.group(1)
        elif (spill := _SPILL.search(line)) and any(int(group) for group in spill.groups()):
            spilling.append(current or "?")
    return spilling


def test_spill_report_parser():
    report = """ptxas info    : Compiling entry function 'conv_f32' for 'sm_80'
ptxas info    : Function properties for conv_f32
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Compiling entry function 'conv_f16' for 'sm_80'
ptxas info    : Function properties for conv_f16
    24 bytes stack frame, 24 bytes spill stores, 16 bytes spill loads
ptxas info    : Compiling entry function 'connected' for 'sm_80'
    64 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
"""
    assert spilling_functions(report) == ["conv_f16", "connected"]


def test_every_source_is_listed_with_its_entry_points():
    assert SOURCES == sorted(kernels.KERNELS)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name, variant", BUILDS)
def test_kernel_compiles_without_spills(name, variant, arch, tmp_path):
    source = tmp_path / name
    source.write_text(kernels.kernel_source(name))
    result = subprocess.run(
        [find_nvcc(), "-cubin", f"-arch={arch}", *kernels.compile_options(name, variant), "-Xptxas", "-v",
         "-Werror", "all-warnings", "-o", str(tmp_path / "out.cubin"), str(source)],
        capture_output=True, text=True)
    assert result.returncode == 0, f"{name} for {arch}:\n{result.stderr}"
    compiled = {entry for entry, target in _ENTRY.findall(result.stderr) if target == arch}
    assert compiled == set(kernels.KERNELS.get(name, ())), f"{name}: entry points differ from kernels.KERNELS"
    assert spilling_functions(result.stderr) == [], result.stderr


def _nvrtc_failure(source: str, name: str, options: tuple[str, ...]) -> str | None:
    """None when NVRTC compiles `source`, else its log."""
    from cuda.bindings import nvrtc

    error, program = nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], [])
    assert error == nvrtc.nvrtcResult.NVRTC_SUCCESS, error
    try:
        flags = [option.encode() for option in options]
        (result,) = nvrtc.nvrtcCompileProgram(program, len(flags), flags)
        if result == nvrtc.nvrtcResult.NVRTC_SUCCESS:
            return None
        _, size = nvrtc.nvrtcGetProgramLogSize(program)
        log = b" " * size
        nvrtc.nvrtcGetProgramLog(program, log)
        return log.decode(errors="replace")
    finally:
        nvrtc.nvrtcDestroyProgram(program)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name, variant", BUILDS)
def test_kernel_compiles_with_nvrtc(name, variant, arch):
    """What cupy.RawModule does on a GPU: NVRTC (the nvidia-cuda-nvrtc wheel, no GPU needed) with
    the backend's options and the device's -arch=sm_XX."""
    options = (*kernels.compile_options(name, variant), f"-arch={arch}")
    assert _nvrtc_failure(kernels.kernel_source(name), name, options) is None


def test_nvrtc_reports_a_broken_kernel():
    log = _nvrtc_failure('extern "C" __global__ void k(float* x) { x[0] = undefined_name; }', "k.cu",
                         ("--std=c++17", "-arch=sm_80"))
    assert log is not None and "undefined_name" in log
