"""The whole GPU run of a lent machine in one command, under 10 minutes: install, check every
conv.cu variant on the hardware against the interpreter and every conv_pipelined.cu variant against
NumPy (timed against conv.cu), run the GPU tests on the hardware, tune
the variants on the zoo, and benchmark against PyTorch (eager, CUDA graph, torch.compile) and
TensorRT on our ONNX export; every log and result in one folder.

    python benchmarks/gpu_run.py --out gpu-run            # on the GPU machine
    python benchmarks/gpu_run.py --out gpu-run --dry-run  # prints the steps, runs nothing

Each step has a time limit, and all of them together stop at --budget seconds; a failed step is
recorded and the run goes on, except after a failed install. OUT/summary.json lists every step's
command, exit status and seconds, rewritten (atomically) after each step. The tuned table lands in
OUT/tuned/; ship it by copying it to backends/cuda/tuned/ (tables measured by the interpreter are
refused there).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Step:
    name: str
    command: str  # run by bash in the repository root
    limit_s: int
    required: bool = False  # a failure stops the run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder every result goes to")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared/darknet",
                        help="Darknet reference data: cfg/*.cfg (the zoo) and weights/tiny.weights "
                             "(default ../shared/darknet)")
    parser.add_argument("--budget", type=int, default=570, help="seconds for all steps (default 570)")
    parser.add_argument("--tune-batches", default="1,64,256")
    parser.add_argument("--tune-precisions", default="fp32,fp16")
    parser.add_argument("--skip", action="append", default=[], metavar="STEP", help="leave out a step")
    parser.add_argument("--dry-run", action="store_true", help="print the steps and run nothing")
    args = parser.parse_args(argv)
    if args.budget < 1:
        parser.error("--budget must be positive")
    unknown = set(args.skip) - {step.name for step in plan_steps(args)}
    if unknown:
        parser.error(f"unknown step(s) to skip: {', '.join(sorted(unknown))}")
    return args


def plan_steps(args: argparse.Namespace) -> list[Step]:
    out, shared, python = args.out.resolve(), args.shared.resolve(), sys.executable
    zoo = " ".join(sorted(str(path) for path in (shared / "cfg").glob("*.cfg"))) or f"{shared}/cfg/*.cfg"
    steps = [
        # Offline machines get the package alone, using what is installed already.
        Step("install", f"{python} -m pip install -q -e '.[cuda,test]' "
                        f"|| {python} -m pip install -q --no-deps --no-build-isolation -e .", 120, required=True),
        Step("environment", f"{python} -c 'import json, cupy; p = cupy.cuda.runtime.getDeviceProperties(0); "
                            f"print(json.dumps({{\"gpu\": p[\"name\"].decode(), \"driver\": "
                            f"cupy.cuda.runtime.driverGetVersion(), \"cupy\": cupy.__version__}}))' "
                            f"> {out}/environment.json", 30, required=True),
        Step("variant-check", f"{python} benchmarks/variant_check.py --out {out}/variant_check.json", 60),
        Step("pipelined-check", f"{python} benchmarks/pipelined_check.py --out {out}/pipelined_check.json", 60),
        Step("gpu-tests", f"TDN_SHARED={shared.parent} {python} -m pytest -q -x -m gpu -p no:cacheprovider "
                          f"tests/test_cuda_gpu.py tests/test_cuda_pipelined.py tests/test_cuda_tune.py "
                          f"--junitxml {out}/gpu_tests.xml",
             90),
        Step("tune", f"{python} -m tdn tune --backend cuda cfg/tiny.cfg {zoo} --batch {args.tune_batches} "
                     f"--precision {args.tune_precisions} --repeats 10 --output {out}/tuned/tuned.json", 150),
        Step("bench", f"TDN_TUNED_DIR={out}/tuned {python} benchmarks/gpu_bench.py --weights "
                      f"{shared}/weights/tiny.weights --repeats 30 --warmup 5 --compile-mode default "
                      f"--tensorrt --out {out}", 170),
    ]
    return steps


def write_summary(path: Path, records: list[dict]) -> None:
    """Atomically, so that a run cut short leaves the last whole summary."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".summary.", delete=False) as file:
        json.dump({"steps": records}, file, indent=1)
        file.write("\n")
    os.replace(file.name, path)


def run_steps(steps: list[Step], out: Path, budget: int) -> int:
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + budget
    records: list[dict] = []
    failed = False
    for step in steps:
        limit = min(step.limit_s, int(deadline - time.monotonic()))
        record = {**asdict(step), "limit_s": limit}
        if limit < 1:
            record.update(rc=None, seconds=0.0, note="no time left in the budget")
        else:
            start = time.monotonic()
            with open(out / f"{step.name}.log", "w") as log:
                try:
                    rc: int | None = subprocess.run(["bash", "-c", step.command], cwd=REPO, stdout=log,
                                                    stderr=subprocess.STDOUT, timeout=limit).returncode
                except subprocess.TimeoutExpired:
                    rc = None
                    log.write(f"\ngpu_run: stopped after its limit of {limit} s\n")
            record.update(rc=rc, seconds=round(time.monotonic() - start, 1))
        records.append(record)
        write_summary(out / "summary.json", records)
        print(f"{step.name}: rc {record['rc']} in {record['seconds']} s", flush=True)
        if record["rc"] != 0:
            failed = True
            if step.required:
                break
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    steps = [step for step in plan_steps(args) if step.name not in args.skip]
    if args.dry_run:
        for step in steps:
            print(f"{step.name} (at most {step.limit_s} s{', required' if step.required else ''}): {step.command}")
        print(f"all steps within {args.budget} s; results in {args.out.resolve()}")
        return 0
    return run_steps(steps, args.out.resolve(), args.budget)


if __name__ == "__main__":
    raise SystemExit(main())
