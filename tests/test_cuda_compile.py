"""Every kernels/*.cu compiles for sm_80 and sm_90 without register spills or local-memory
stack frames (no GPU needed).

Compiles exactly the text and options cupy.RawModule gets (kernels.kernel_source,
kernels.COMPILE_OPTIONS) with nvcc to a cubin, and reads ptxas's -v report. nvcc is part
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
@pytest.mark.parametrize("name", SOURCES)
def test_kernel_compiles_without_spills(name, arch, tmp_path):
    source = tmp_path / name
    source.write_text(kernels.kernel_source(name))
    result = subprocess.run(
        [find_nvcc(), "-cubin", f"-arch={arch}", *kernels.COMPILE_OPTIONS, "-Xptxas", "-v",
         "-Werror", "all-warnings", "-o", str(tmp_path / "out.cubin"), str(source)],
        capture_output=True, text=True)
    assert result.returncode == 0, f"{name} for {arch}:\n{result.stderr}"
    compiled = {entry for entry, target in _ENTRY.findall(result.stderr) if target == arch}
    assert compiled == set(kernels.KERNELS.get(name, ())), f"{name}: entry points differ from kernels.KERNELS"
    assert spilling_functions(result.stderr) == [], result.stderr
