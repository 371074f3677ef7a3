"""Tiny Darknet on one GPU: tdn's CUDA backend against PyTorch, in one run.

Times host-to-host forward passes (input array in, probabilities out) at each batch size
for tdn's cuda backend at each precision (entries cuda-fp32, cuda-tf32, cuda-fp16) and
PyTorch (cuDNN, channels_last: eager, CUDA graph, torch.compile), and writes ms/batch,
images/s and each entry's ratio to PyTorch's best at that batch to
benchmarks/results/<device>-<time>.json.

    python benchmarks/gpu_bench.py --weights ../shared/darknet/weights/tiny.weights
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PRECISIONS = ("fp32", "tf32", "fp16")  # the cuda backend's, as CudaBackend.precisions lists them
TORCH_MODES = ("torch-eager", "torch-cuda-graph", "torch-compile")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg", type=Path, default=REPO / "cfg/tiny.cfg")
    parser.add_argument("--weights", type=Path, default=REPO.parent / "shared/darknet/weights/tiny.weights")
    parser.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")], default=[1, 8, 64, 256])
    parser.add_argument("--precisions", type=lambda s: s.split(","), default=list(PRECISIONS),
                        help="comma-separated precisions of the cuda backend to time (default: all)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per entry (median reported)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    parser.add_argument("--skip-torch", action="store_true")
    args = parser.parse_args(argv)
    if any(b < 1 for b in args.batches) or args.repeats < 1:
        parser.error("batch sizes and --repeats must be positive")
    unknown = [p for p in args.precisions if p not in PRECISIONS]
    if unknown:
        parser.error(f"unknown precision(s) {', '.join(unknown)} (known: {', '.join(PRECISIONS)})")
    return args


def median_ms(run: Callable[[], object], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()  # every runner returns host data, so it has synchronised
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def summarise(timings: dict[int, dict[str, float]]) -> list[dict]:
    """{batch: {entry: ms}} -> rows with images/s and the ratio to PyTorch's best (>1: faster)."""
    rows = []
    for batch, entries in sorted(timings.items()):
        torch_best = min((ms for name, ms in entries.items() if name.startswith("torch")), default=None)
        for name, ms in entries.items():
            rows.append({"batch": batch, "entry": name, "ms_per_batch": ms,
                         "images_per_s": batch / ms * 1e3,
                         "speedup_vs_torch_best": None if torch_best is None else torch_best / ms})
    return rows


def write_result(out_dir: Path, device: str, environment: dict, rows: list[dict]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-") or "device"
    path = out_dir / f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"device": device, "environment": environment, "results": rows}, indent=2))
    return path


def tdn_runner(args, precision: str, batch: int):
    import tdn

    net = tdn.load(args.cfg, args.weights, "cuda", precision=precision)
    x = np.random.default_rng(0).random((batch, 3, args.size, args.size), np.float32)
    return lambda: net.predict(x)


def torch_model(args):
    """Tiny Darknet in PyTorch from tdn's graph and folded weights (cuDNN convolutions)."""
    import torch
    from torch import nn

    import tdn

    net = tdn.load(args.cfg, args.weights, "numpy")
    layers: list[nn.Module] = []
    for node, params in zip(net.graph.nodes, net.params, strict=True):
        layer = node.layer
        if node.kind == "convolutional":
            conv = nn.Conv2d(node.in_shape[0], layer.filters, layer.size, layer.stride, layer.padding,
                             groups=layer.groups)
            conv.weight.data = torch.from_numpy(params["weights"])
            conv.bias.data = torch.from_numpy(params["biases"])
            layers.append(conv)
            if layer.activation == "leaky":
                layers.append(nn.LeakyReLU(0.1))
            elif layer.activation != "linear":
                raise SystemExit(f"benchmark model: activation {layer.activation} not mapped")
        elif node.kind == "maxpool":
            before, after = layer.pads
            if before or after:
                layers.append(nn.ConstantPad2d((before, after) * 2, float("-inf")))
            layers.append(nn.MaxPool2d(layer.size, layer.stride))
        elif node.kind == "avgpool":
            layers.append(nn.AdaptiveAvgPool2d(1))
        elif node.kind == "softmax":
            layers += [nn.Flatten(), nn.Softmax(dim=1)]
    return nn.Sequential(*layers).cuda().eval().to(memory_format=torch.channels_last)


def torch_runners(args, batch: int) -> dict[str, Callable[[], object]]:
    import torch

    torch.backends.cudnn.benchmark = True
    model = torch_model(args)
    host = torch.rand(batch, 3, args.size, args.size).pin_memory()
    static = host.cuda().to(memory_format=torch.channels_last)

    def eager():
        with torch.inference_mode():
            return model(host.cuda(non_blocking=True).to(memory_format=torch.channels_last)).cpu()

    with torch.inference_mode():
        for _ in range(3):
            model(static)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = model(static)

    def graphed():
        static.copy_(host, non_blocking=True)
        graph.replay()
        return static_out.cpu()

    compiled = torch.compile(model, mode="max-autotune")

    def compiled_run():
        with torch.inference_mode():
            return compiled(host.cuda(non_blocking=True).to(memory_format=torch.channels_last)).cpu()

    return dict(zip(TORCH_MODES, (eager, graphed, compiled_run), strict=True))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import cupy

    device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    environment = {"driver": cupy.cuda.runtime.driverGetVersion(), "cupy": cupy.__version__,
                   "python": platform.python_version(), "size": args.size, "repeats": args.repeats}
    timings: dict[int, dict[str, float]] = {}
    for batch in args.batches:
        runners = {f"cuda-{precision}": tdn_runner(args, precision, batch) for precision in args.precisions}
        if not args.skip_torch:
            import torch

            environment["torch"] = torch.__version__
            runners.update(torch_runners(args, batch))
        timings[batch] = {name: median_ms(run, args.repeats, args.warmup) for name, run in runners.items()}
        print(batch, {name: round(ms, 4) for name, ms in timings[batch].items()}, flush=True)
    path = write_result(args.out, device, environment, summarise(timings))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
