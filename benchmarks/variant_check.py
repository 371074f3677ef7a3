"""Every conv.cu variant at every precision on the GPU against the same kernel interpreted on the
CPU (TDN_CUDA_INTERPRET), on a few small shapes: what interpret mode proves holds on the hardware.

fp32 (FMA, the same sums in the same order; activations without libm calls) must be identical to
the bit; tf32 and fp16 go through mma.sync, whose order of adding inside one instruction the
hardware does not document, so they must agree within the suite's tolerance. Writes a JSON
report and exits non-zero on any mismatch.

    python benchmarks/variant_check.py --out results/variant_check.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

# (batch, channels, height, width, filters, size, stride, padding, groups, activation): partial
# tiles in filters and pixels, groups, stride, several k tiles, and a zoo-like 1x1 layer.
SHAPES = [(2, 5, 9, 7, 70, 3, 1, 1, 1, "leaky"), (1, 6, 8, 8, 36, 3, 2, 1, 2, "linear"),
          (3, 40, 5, 5, 40, 1, 1, 0, 1, "relu"), (1, 64, 14, 14, 128, 1, 1, 0, 1, "leaky")]
TOLERANCE = {"fp32": 0.0, "tf32": 1e-2, "fp16": 1e-2}  # max |gpu - interpreted| / max |interpreted|


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON report to write")
    return parser.parse_args(argv)


def run_all(interpreted: bool) -> dict[tuple[str, str, int], np.ndarray]:
    """(variant, precision, shape index) -> output, on the GPU or interpreted."""
    from tdn.backends.cuda import device, kernels, tiling
    from tdn.backends.cuda.layout import STORAGE, nhwc

    from tdn.layers.convolutional import Convolutional

    if interpreted:
        os.environ["TDN_CUDA_INTERPRET"] = "1"
    else:
        os.environ.pop("TDN_CUDA_INTERPRET", None)
    device.device.cache_clear()
    dev = device.device()
    results = {}
    for index, (batch, channels, height, width, filters, size, stride, padding, groups, activation) \
            in enumerate(SHAPES):
        rng = np.random.default_rng(index)
        layer = Convolutional(filters, size, stride, padding, groups, False, activation)
        out_shape = layer.output_shape((channels, height, width))
        x = rng.standard_normal((batch, height, width, channels), np.float32)  # NHWC, as on the device
        weights = rng.standard_normal((filters, channels // groups, size, size), np.float32) / 4
        bias = dev.upload(rng.standard_normal(filters, np.float32))
        for name, variant in tiling.CONV_VARIANTS.items():
            geo = tiling.ConvGeometry.of(layer, (channels, height, width), out_shape, batch, variant)
            for precision in kernels.CONV_ENTRY:
                storage = STORAGE[precision]
                packed = dev.upload(geo.pack_weights(weights), storage)
                y = dev.empty(nhwc(batch, out_shape), storage)
                kernels.conv(dev.upload(x, storage), packed, bias, y, geo, precision)
                results[(name, precision, index)] = dev.download(y).astype(np.float32)
    return results


def compare(gpu: dict, interpreted: dict) -> list[dict]:
    rows = []
    for key, expected in interpreted.items():
        name, precision, index = key
        got = gpu[key]
        scale = float(np.abs(expected).max()) or 1.0
        error = float(np.abs(got - expected).max()) / scale
        identical = bool(np.array_equal(got, expected))
        ok = identical if TOLERANCE[precision] == 0 else error <= TOLERANCE[precision]
        rows.append({"variant": name, "precision": precision, "shape": SHAPES[index],
                     "identical": identical, "relative_error": error, "ok": ok})
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tdn.backends.cuda.device import device

    gpu = run_all(interpreted=False)
    name = device().name()
    rows = compare(gpu, run_all(interpreted=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"gpu": name, "checks": rows}, indent=1) + "\n")
    failed = [row for row in rows if not row["ok"]]
    for row in failed:
        print(f"MISMATCH {row}", file=sys.stderr)
    print(f"{name}: {len(rows) - len(failed)} of {len(rows)} variant checks agree with the interpreter")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
