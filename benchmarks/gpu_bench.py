"""Tiny Darknet on one GPU: tdn's CUDA backend against PyTorch, in one run.

Times host-to-host forward passes (input array in, probabilities out) at each batch size
for tdn's cuda backend at each precision (entries cuda-fp32, cuda-tf32, cuda-fp16; and
cuda-fp32-u8 ... with the images uploaded as uint8 pixels, Network.predict_pixels),
PyTorch (cuDNN, channels_last: eager, CUDA graph, torch.compile) and, with --tensorrt where it is
installed, TensorRT engines built from our ONNX export (tensorrt-fp32, tensorrt-fp16), and writes ms/batch,
images/s and each entry's ratio to PyTorch's best at that batch to
benchmarks/results/<device>-<time>.json.

    python benchmarks/gpu_bench.py --weights ../shared/darknet/weights/tiny.weights
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import tempfile
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
    parser.add_argument("--compile-mode", default="max-autotune", help="torch.compile's mode (default max-autotune)")
    parser.add_argument("--tensorrt", action="store_true",
                        help="also time TensorRT on `tdn export onnx`'s model, where tensorrt imports")
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


def tdn_runners(args, precision: str, batch: int) -> dict:
    """cuda-<precision>: float32 NCHW input; cuda-<precision>-u8: the same images as uint8 pixels
    (a quarter of the bytes to upload, normalised on the GPU)."""
    import tdn
    from tdn.image import pixels_to_input

    net = tdn.load(args.cfg, args.weights, "cuda", precision=precision)
    pixels = np.random.default_rng(0).integers(0, 256, (batch, args.size, args.size, 3), dtype=np.uint8)
    x = pixels_to_input(pixels)
    return {f"cuda-{precision}": lambda: net.predict(x), f"cuda-{precision}-u8": lambda: net.predict_pixels(pixels)}


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

    compiled = torch.compile(model, mode=args.compile_mode)

    def compiled_run():
        with torch.inference_mode():
            return compiled(host.cuda(non_blocking=True).to(memory_format=torch.channels_last)).cpu()

    return dict(zip(TORCH_MODES, (eager, graphed, compiled_run), strict=True))


def tensorrt_runners(args, batch: int, onnx_path: Path) -> dict[str, Callable[[], object]]:
    """One engine per precision (fp32; fp16 with fp32 fallback) for this batch, host to host on
    pinned buffers like the other entries."""
    import cupy
    import cupyx
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    shape = (batch, 3, args.size, args.size)
    runners = {}
    for precision in [p for p in args.precisions if p in ("fp32", "fp16")]:
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(onnx_path.read_bytes()):
            raise SystemExit(f"TensorRT cannot parse {onnx_path}: {parser.get_error(0)}")
        config = builder.create_builder_config()
        if precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        profile.set_shape("input", shape, shape, shape)
        config.add_optimization_profile(profile)
        engine = trt.Runtime(logger).deserialize_cuda_engine(builder.build_serialized_network(network, config))
        context = engine.create_execution_context()
        context.set_input_shape("input", shape)
        x = cupy.empty(shape, np.float32)
        y = cupy.empty(tuple(context.get_tensor_shape("output")), np.float32)
        context.set_tensor_address("input", x.data.ptr)
        context.set_tensor_address("output", y.data.ptr)
        host_in = cupyx.empty_pinned(shape, np.float32)
        host_in[...] = np.random.default_rng(0).random(shape, np.float32)
        host_out = cupyx.empty_pinned(y.shape, np.float32)
        stream = cupy.cuda.Stream(non_blocking=True)

        def run(context=context, x=x, y=y, host_in=host_in, host_out=host_out, stream=stream):
            x.set(host_in, stream=stream)
            context.execute_async_v3(stream.ptr)
            y.get(stream=stream, out=host_out)
            stream.synchronize()
            return host_out

        runners[f"tensorrt-{precision}"] = run
    return runners


def export_onnx(args, folder: Path) -> Path:
    from tdn.graph import load_graph
    from tdn.onnx_export import export_onnx as write_onnx
    from tdn.weights import fold_params, read_weights

    graph = load_graph(args.cfg)
    path = folder / "model.onnx"
    write_onnx(graph, fold_params(graph, read_weights(args.weights, graph)[1]), path)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import cupy

    device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    environment = {"driver": cupy.cuda.runtime.driverGetVersion(), "cupy": cupy.__version__,
                   "python": platform.python_version(), "size": args.size, "repeats": args.repeats}
    timings: dict[int, dict[str, float]] = {}
    onnx_path = None
    if args.tensorrt:
        try:
            import tensorrt

            environment["tensorrt"] = tensorrt.__version__
            onnx_path = export_onnx(args, Path(tempfile.mkdtemp()))
        except ImportError as error:
            environment["tensorrt"] = f"not installed: {error}"
            print(f"TensorRT skipped: {error}", flush=True)
    for batch in args.batches:
        runners = {name: run for precision in args.precisions
                   for name, run in tdn_runners(args, precision, batch).items()}
        if not args.skip_torch:
            import torch

            environment["torch"] = torch.__version__
            runners.update(torch_runners(args, batch))
        if onnx_path is not None:
            runners.update(tensorrt_runners(args, batch, onnx_path))
        timings[batch] = {name: median_ms(run, args.repeats, args.warmup) for name, run in runners.items()}
        print(batch, {name: round(ms, 4) for name, ms in timings[batch].items()}, flush=True)
    path = write_result(args.out, device, environment, summarise(timings))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
