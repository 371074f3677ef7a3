"""Start-up time of tdn's commands against `python -c pass`, for one or more installs of tdn.

Each command runs as a fresh process; the commands (and the installs) are timed in alternation,
round after round, so that a changing load shifts them all alike. Prints the median wall time and
CPU time (user + system, which competing processes inflate less) of each, their ratios to
`python -c pass` of the same install, and, with --importtime, the modules that take the longest to
import (python -X importtime, cumulative, two levels); writes JSON.

    python benchmarks/startup.py --venv new=/path/to/venv [--venv old=/other/venv] [--rounds 20]

The cfg, weights and image of the README's first command come from ../shared (or $TDN_SHARED).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TDN_SHARED", REPO.parent / "shared")) / "darknet"


def commands(venv: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (argv, extra environment) for one install."""
    python, tdn = str(venv / "bin" / "python"), str(venv / "bin" / "tdn")
    classify = [tdn, "classify", "--names", str(SHARED / "data/imagenet.shortnames.list"), str(REPO / "cfg/tiny.cfg"),
                str(SHARED / "weights/tiny.weights"), str(SHARED / "images/dog-stb.png")]
    return {
        "python -c pass": ([python, "-c", "pass"], {}),
        "python -c 'import tdn'": ([python, "-c", "import tdn"], {}),
        "tdn --version": ([tdn, "--version"], {}),
        "tdn backends": ([tdn, "backends"], {}),
        "TDN_LOAD_PLUGINS= tdn backends": ([tdn, "backends"], {"TDN_LOAD_PLUGINS": ""}),
        "tdn classify (1 image)": (classify, {}),
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv: list[str], extra: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    env = {key: value for key, value in os.environ.items() if key != "TDN_LOAD_PLUGINS"} | extra
    start, cpu = time.perf_counter(), cpu_seconds()
    subprocess.run(argv, env=env, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start, cpu_seconds() - cpu


def slowest_imports(argv: list[str], extra: dict[str, str], venv: Path, top: int) -> list[tuple[str, float]]:
    """The imports (top level and the one below) taking longest, cumulative ms, for one run."""
    python = str(venv / "bin" / "python")
    if argv[0].endswith("/tdn"):
        argv = [python, "-m", "tdn", *argv[1:]]
    env = {key: value for key, value in os.environ.items() if key != "TDN_LOAD_PLUGINS"} | extra
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, cwd="/", capture_output=True,
                          text=True, check=True)
    found = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if not name.startswith("    ") and cumulative.strip().isdigit():
                found.append((name.rstrip(), int(cumulative) / 1000))
    return sorted(found, key=lambda item: -item[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", action="append", required=True, metavar="LABEL=PATH",
                        help="an environment with tdn installed (repeat to compare installs)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--importtime", type=int, default=0, metavar="N",
                        help="also list the N slowest top-level imports of each command (first install)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    venvs = {label: Path(path) for label, path in (item.split("=", 1) for item in args.venv)}
    jobs = [(label, name, argv, extra) for label, venv in venvs.items()
            for name, (argv, extra) in commands(venv).items()]
    for _, _, argv, extra in jobs:  # warm the file cache; not timed
        run(argv, extra)
    times: dict[tuple[str, str], list[tuple[float, float]]] = {(label, name): [] for label, name, _, _ in jobs}
    for _ in range(args.rounds):
        for label, name, argv, extra in jobs:
            times[(label, name)].append(run(argv, extra))
    results = []
    for (label, name), samples in times.items():
        wall, cpu = (statistics.median(column) for column in zip(*samples))
        base_wall, base_cpu = (statistics.median(column) for column in zip(*times[(label, "python -c pass")]))
        results.append({"install": label, "command": name, "wall_ms": round(wall * 1000, 1),
                        "cpu_ms": round(cpu * 1000, 1), "wall_ratio": round(wall / base_wall, 2),
                        "cpu_ratio": round(cpu / base_cpu, 2)})
        print(f"{label:<8} {name:<32} wall {wall * 1000:7.0f} ms {wall / base_wall:6.1f}x   "
              f"cpu {cpu * 1000:7.0f} ms {cpu / base_cpu:6.1f}x python -c pass")
    imports = {}
    if args.importtime:
        label, venv = next(iter(venvs.items()))
        for name, (argv, extra) in commands(venv).items():
            imports[name] = slowest_imports(argv, extra, venv, args.importtime)
            print(f"\n{label} {name}:\n" + "\n".join(f"{ms:7.0f} ms {module}" for module, ms in imports[name]))
    if args.json:
        args.json.write_text(json.dumps({"python": platform.python_version(), "cpus": os.cpu_count(),
                                         "rounds": args.rounds, "results": results, "slowest_imports": imports},
                                        indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
