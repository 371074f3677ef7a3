"""Fine-tuning Tiny Darknet's trained weights on a few classes: `tdn train --weights tiny.weights
--classes 5 --freeze` on digits 0-4 (scikit-learn, four fifths), against the same network with its
new head as initialised, both measured on the held-out fifth by `tdn valid` (NumPy backend).

    python benchmarks/tiny_finetune.py [--size 64] [--max-batches 60] [--threads 1] [--out FILE]

The cfg is cfg/tiny.cfg's layers under a [net] section for this job (input size, a small
constant learning rate, mild augmentation): Tiny Darknet is fully convolutional.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import write_digits  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TDN_SHARED", REPO.parent / "shared")) / "darknet"
CLASSES = ("0", "1", "2", "3", "4")

NET = """[net]
batch=32
subdivisions=1
width={size}
height={size}
channels=3
learning_rate=0.01
momentum=0.9
decay=0.0005
policy=constant
max_batches={max_batches}
angle=5
min_crop={size}
max_crop={max_crop}
flip=0
"""


def untrained_head(cfg: Path, data: Path, out: Path) -> None:
    """The adapted network exactly as training starts it: tiny.weights plus a new 5-class head."""
    import torch
    from tdn_torch.train.data import Dataset
    from tdn_torch.train.setup import prepare

    from tdn.weights import Header, write_weights

    run = prepare(str(cfg), Dataset.load(str(data)), 0, torch.device("cpu"),
                  weights=str(SHARED / "weights" / "tiny.weights"), classes=len(CLASSES), freeze=True,
                  adapted_cfg=out.with_suffix(".cfg"))
    out.with_suffix(".cfg").write_text(run.cfg_text)
    write_weights(out, run.graph, run.params, Header())


def valid(cfg: Path, weights: Path, names: Path, test: Path) -> str:
    return subprocess.run(["tdn", "valid", "--backend", "numpy", str(cfg), str(weights), "--labels", str(names),
                           str(test)], check=True, capture_output=True, text=True).stdout.splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--max-batches", type=int, default=60)
    parser.add_argument("--threads", default="1")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        train_all, test_all = write_digits(tmp / "all")
        for part, source in (("train", train_all), ("test", test_all)):
            for digit in CLASSES:
                shutil.copytree(source / digit, tmp / part / digit)
        layers = (REPO / "cfg" / "tiny.cfg").read_text().split("\n[convolutional]", 1)[1]
        cfg = tmp / "tiny-digits.cfg"
        cfg.write_text(NET.format(size=args.size, max_batches=args.max_batches, max_crop=args.size * 9 // 8)
                       + "\n[convolutional]" + layers)
        names = tmp / "names.txt"
        names.write_text("\n".join(CLASSES) + "\n")
        untrained_head(cfg, tmp / "train", tmp / "head.weights")
        before = valid(tmp / "head.cfg", tmp / "head.weights", names, tmp / "test")
        out = tmp / "tuned.weights"
        command = ["tdn", "train", str(cfg), str(tmp / "train"), "--out", str(out), "--weights",
                   str(SHARED / "weights" / "tiny.weights"), "--classes", str(len(CLASSES)), "--freeze",
                   "--threads", args.threads]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        after = valid(out.with_suffix(".cfg"), out, out.with_suffix(".names"), tmp / "test")
    record = {"classes": CLASSES, "size": args.size, "max_batches": args.max_batches,
              "untrained_head": before, "fine_tuned": after,
              "top1_before": float(before.split()[3]), "top1_after": float(after.split()[3]),
              "train_wall_s": round(seconds, 1), "load_average": os.getloadavg()[0],
              "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    text = json.dumps(record, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
