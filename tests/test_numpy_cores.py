"""The cores the numpy backend keeps busy: affinity, and a cgroup CPU quota (fake /sys trees)."""

from __future__ import annotations

import os

import pytest
from tdn.backends.numpy.cores import available_cores, cpu_quota

AFFINITY = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _tree(tmp_path, proc_line: str, files: dict[str, str]):
    tmp_path.mkdir(parents=True, exist_ok=True)
    proc = tmp_path / "proc_cgroup"
    proc.write_text(proc_line + "\n")
    for name, text in files.items():
        path = tmp_path / "cgroup" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return tmp_path / "cgroup", proc


@pytest.mark.parametrize(("proc_line", "files", "quota"), [
    ("0::/user.slice/job", {"user.slice/job/cpu.max": "150000 100000"}, 1.5),  # v2, own cgroup
    ("0::/", {"cpu.max": "50000 100000"}, 0.5),  # v2 inside a container: the root
    ("0::/job", {"job/cpu.max": "max 100000"}, None),  # v2 without a quota
    ("4:cpu,cpuacct:/docker/abc", {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000",
                                   "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"}, 2.0),  # v1
    ("1:cpu:/", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),  # v1, no quota
    ("3:memory:/x", {}, None),  # no cpu controller
])
def test_cpu_quota_reads_cgroup_v1_and_v2(tmp_path, proc_line, files, quota):
    root, proc = _tree(tmp_path, proc_line, files)
    assert cpu_quota(root, proc) == quota


def test_a_quota_below_the_affinity_caps_the_cores(tmp_path):
    root, proc = _tree(tmp_path, "0::/", {"cpu.max": "50000 100000"})
    assert available_cores(root, proc) == 1  # half a CPU: one core, never zero
    root, proc = _tree(tmp_path / "big", "0::/", {"cpu.max": f"{100000 * (AFFINITY + 3)} 100000"})
    assert available_cores(root, proc) == AFFINITY  # a quota above the affinity changes nothing


def test_no_cgroup_information_means_the_affinity(tmp_path):
    assert available_cores(tmp_path, tmp_path / "missing") == AFFINITY
