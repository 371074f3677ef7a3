"""The training proof: cfg/digits.cfg trained from scratch with `tdn train` on four fifths of
scikit-learn's digits, measured on the held-out fifth by `tdn valid` on the NumPy backend.

    python benchmarks/digits_train.py [--threads 1] [--max-batches N] [--out FILE]

Runs the installed `tdn` (the tdn-torch plugin provides `train`) as a user would, and writes
a JSON record: held-out top-1, training wall and CPU seconds, the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import write_digits  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1", help="torch threads for tdn train (default 1)")
    parser.add_argument("--max-batches", help="override the cfg's max_batches")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--out", type=Path, help="write the JSON record here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        train, test = write_digits(Path(tmp))
        weights = Path(tmp) / "digits.weights"
        command = ["tdn", "train", str(REPO / "cfg" / "digits.cfg"), str(train), "--out", str(weights),
                   "--threads", args.threads, "--seed", args.seed]
        if args.max_batches:
            command += ["--max-batches", args.max_batches]
        load_before = os.getloadavg()[0]
        start, cpu_start = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        valid = subprocess.run(["tdn", "valid", "--backend", "numpy", str(REPO / "cfg" / "digits.cfg"), str(weights),
                                "--labels", str(weights.with_suffix(".names")), str(test)],
                               check=True, capture_output=True, text=True).stdout.splitlines()[0]
    record = {
        "command": " ".join(command[:2] + ["cfg/digits.cfg", "TRAIN", "--out", "digits.weights"] + command[6:]),
        "held_out": valid,
        "top1": float(valid.split()[3]),
        "train_wall_s": round(seconds, 1),
        "train_cpu_s": round(cpu.ru_utime + cpu.ru_stime - cpu_start.ru_utime - cpu_start.ru_stime, 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    text = json.dumps(record, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
