"""How many cores the numpy backend may keep busy: the CPUs this process may run on, fewer when a
cgroup CPU quota (a container's `--cpus`) allows less time than that.

The quota matters because the helper processes of a team wait by spinning: more members than the
quota allows would spend it waiting for each other.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cores(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """min(CPUs in the affinity mask, the cgroup CPU quota rounded up), at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota(cgroup_root, proc_cgroup)
    return max(1, min(cores, math.ceil(quota))) if quota is not None else cores


def cpu_quota(cgroup_root: Path, proc_cgroup: Path) -> float | None:
    """CPUs' worth of time per period the cgroup allows (cgroup v2 cpu.max, or v1 cfs_quota_us /
    cfs_period_us), in this process's own cgroup or, inside a container, at the root; None: no quota."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":  # cgroup v2
            for folder in (cgroup_root / relative, cgroup_root):
                fields = _read(folder / "cpu.max")
                if fields and fields[0] != "max":
                    return int(fields[0]) / int(fields[1])
        elif "cpu" in controllers.split(","):  # cgroup v1
            for base in (cgroup_root / "cpu", cgroup_root / controllers):
                for folder in (base / relative, base):
                    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
                    if quota and period and int(quota[0]) > 0:
                        return int(quota[0]) / int(period[0])
    return None


def _read(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []
