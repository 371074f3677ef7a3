"""conv_pipelined.cu on a GPU: every variant against the NumPy backend's convolution of the same
fp16-rounded inputs and weights, then timed against conv.cu's fp16 path (its rule-chosen variant)
on layers like the performance model's rows (tdn/perf_model.py). Writes a JSON report; exits
non-zero when a result is off by more than the tolerance.

    python benchmarks/pipelined_check.py --out benchmarks/results/pipelined_check.json
    TDN_CUDA_INTERPRET=1 python benchmarks/pipelined_check.py --quick --out /tmp/check.json  # no GPU

--quick checks the small shapes only and times nothing (what the interpreter can do).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# (batch, channels, height, width, filters, size, stride, padding, groups, activation)
CHECK_SHAPES = [(2, 16, 9, 7, 70, 3, 1, 1, 1, "leaky"), (1, 32, 8, 8, 36, 3, 2, 1, 2, "linear"),
                (3, 64, 5, 5, 40, 1, 1, 0, 1, "relu")]
# (what it stands for, shape): a perf-model row each.
TIMED_SHAPES = [
    ("small map, many filters, batch 1", (1, 1024, 7, 7, 1024, 3, 1, 1, 1, "leaky")),
    ("14x14 map, batch 1", (1, 512, 14, 14, 512, 3, 1, 1, 1, "leaky")),
    ("1x1 layer, batch 8", (8, 256, 28, 28, 512, 1, 1, 0, 1, "leaky")),
    ("large compute-bound layer, batch 64", (64, 128, 56, 56, 128, 3, 1, 1, 1, "leaky")),
    ("large compute-bound layer, batch 256", (256, 64, 56, 56, 128, 3, 1, 1, 1, "leaky")),
]
TOLERANCE = 1e-2  # max |result - reference| / max |reference|
REPEATS = 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON report to write")
    parser.add_argument("--quick", action="store_true", help="small shapes only, no timing")
    return parser.parse_args(argv)


class Case:
    """One convolution with random fp16-exact data, on the device in both layouts."""

    def __init__(self, dev, shape: tuple, seed: int):
        from tdn.backends.cuda import tiling

        from tdn.layers.convolutional import Convolutional

        batch, channels, height, width, filters, size, stride, padding, groups, activation = shape
        rng = np.random.default_rng(seed)
        self.layer = Convolutional(filters, size, stride, padding, groups, False, activation)
        in_shape = (channels, height, width)
        self.conv = tiling.ConvGeometry.of(self.layer, in_shape, self.layer.output_shape(in_shape), batch)
        self.x = rng.standard_normal((batch, height, width, channels)).astype(np.float16)
        weights = rng.standard_normal((filters, channels // groups, size, size)) / np.sqrt(channels // groups * size**2)
        self.weights = weights.astype(np.float16).astype(np.float32)
        self.bias = rng.standard_normal(filters).astype(np.float32)
        self.dev = dev
        self.x_device, self.bias_device = dev.upload(self.x, np.float16), dev.upload(self.bias)

    def reference(self) -> np.ndarray:
        from tdn.backends.numpy.convolution import convolve

        c = self.conv
        nchw = np.ascontiguousarray(self.x.astype(np.float32).transpose(0, 3, 1, 2))
        return convolve(nchw, self.layer, self.weights, self.bias, c.out_h, c.out_w).transpose(0, 2, 3, 1)

    def pipelined(self, variant) -> tuple[np.ndarray, object]:
        """The output of one variant, and a function that launches it again."""
        from tdn.backends.cuda import kernels, pipelined

        geo = pipelined.PipelinedGeometry(self.conv, variant)
        packed = self.dev.upload(geo.pack_weights(self.weights), np.float16)
        y = self.dev.empty(geo.y_shape, np.float16)

        def launch() -> None:
            kernels.conv_pipelined(self.x_device, packed, self.bias_device, y, geo)

        launch()
        return self.dev.download(y).astype(np.float32), launch

    def conv_cu(self):
        """A function launching conv.cu's fp16 entry (NHWC fp16, as the plan runs it) with its rule's variant."""
        from dataclasses import replace

        from tdn.backends.cuda import kernels, tuning

        geo = replace(self.conv, variant=tuning.conv_rule_choice(self.conv))
        packed = self.dev.upload(geo.pack_weights(self.weights), np.float16)
        y = self.dev.empty((geo.batch, geo.out_h, geo.out_w, geo.filters), np.float16)
        return lambda: kernels.conv(self.x_device, packed, self.bias_device, y, geo, "fp16")


def check(dev) -> list[dict]:
    from tdn.backends.cuda import pipelined

    rows = []
    for index, shape in enumerate(CHECK_SHAPES):
        case = Case(dev, shape, index)
        expected = case.reference()
        scale = float(np.abs(expected).max()) or 1.0
        for name, variant in pipelined.VARIANTS.items():
            got, _ = case.pipelined(variant)
            error = float(np.abs(got - expected).max()) / scale
            rows.append({"variant": name, "shape": shape, "relative_error": error, "ok": error <= TOLERANCE})
    return rows


def time_all(dev) -> list[dict]:
    from tdn.backends.cuda import pipelined

    rows = []
    for index, (what, shape) in enumerate(TIMED_SHAPES):
        case = Case(dev, shape, 100 + index)
        c = case.conv
        flops = 2 * c.pixels * c.filters * c.k_group
        baseline = dev.seconds_per_run(case.conv_cu(), REPEATS)
        row = {"layer": what, "shape": shape, "rule": pipelined.rule_choice(c).name,
               "conv.cu fp16 us": baseline * 1e6, "variants": {}}
        for name, variant in pipelined.VARIANTS.items():
            _, launch = case.pipelined(variant)
            seconds = dev.seconds_per_run(launch, REPEATS)
            row["variants"][name] = {"us": seconds * 1e6, "TFLOPS": flops / seconds / 1e12,
                                     "speedup over conv.cu": baseline / seconds}
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tdn.backends.cuda.device import device

    dev = device()
    rows = check(dev)
    timings = [] if args.quick else time_all(dev)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"gpu": dev.name(), "checks": rows, "timings": timings}, indent=1) + "\n")
    failed = [row for row in rows if not row["ok"]]
    for row in failed:
        print(f"MISMATCH {row}", file=sys.stderr)
    print(f"{dev.name()}: {len(rows) - len(failed)} of {len(rows)} checks within {TOLERANCE} of NumPy")
    for row in timings:
        best = min(row["variants"].items(), key=lambda item: item[1]["us"])
        print(f"{row['layer']}: conv.cu fp16 {row['conv.cu fp16 us']:.1f} us; best {best[0]} "
              f"{best[1]['us']:.1f} us ({best[1]['TFLOPS']:.0f} TFLOPS); rule picks {row['rule']}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
