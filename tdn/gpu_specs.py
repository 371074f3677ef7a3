"""Published figures the performance model (tdn/perf_model.py) reads: GPU peaks and launch costs.

Every number below is a vendor figure or a public measurement, cited where it is set. Peaks are
dense (no 2:4 sparsity): the data sheets print the tensor-core figures with sparsity, which is
twice the dense rate; the model divides by the dense rate because tdn's weights are not pruned.
"""

from __future__ import annotations

from dataclasses import dataclass

TERA = 1e12
GIGA = 1e9
MICRO = 1e-6


@dataclass(frozen=True)
class GpuSpec:
    name: str
    peak_flops: dict[str, float]
    """FLOP/s of a convolution's or connected layer's arithmetic, per --precision."""
    memory_bandwidth: float  # bytes/s, device memory (HBM)
    host_link_bandwidth: float  # bytes/s, one direction, between pinned host memory and the GPU
    host_link: str


# H100 SXM5, dense peaks: FP32 (CUDA cores, FMA) 66.9, TF32 tensor 494.7, FP16 tensor with FP32
# accumulate 989.4 TFLOPS; the data sheet prints 67 / 989* / 1,979* (*with sparsity).
#   https://glennklockwood.com/garden/processors/h100 ("H100 SXM5": VFMA / Matrix / Sparse table)
#   https://hmc-tech.com/gpu/nvidia-gb200-vs-nvidia-h100-sxm ("FP16 ... 989.43 TFLOPS Tensor
#   (FP32 Accumulate), 1.98 PFLOPS ... Sparse"; "TF32 494.72 TFLOPS Tensor")
# HBM3 3.35 TB/s: https://www.codesota.com/hardware/h100 ("Dense FP16 from the NVIDIA datasheet",
#   "3,350 GB/s"); PCIe Gen5 128 GB/s in both directions together: glennklockwood (above,
#   "128 GB/s PCIe Gen5 (H2D)"), i.e. 64 GB/s each way for a Gen5 x16 link:
#   https://gigagpu.com/pcie-gen4-vs-gen5-ai-inference/ ("Gen5 ... ~64 GB/s x16 (unidirectional)").
_HOPPER_PEAKS = {"fp32": 66.9 * TERA, "tf32": 494.7 * TERA, "fp16": 989.4 * TERA}
_PCIE_GEN5_X16_ONE_WAY = 64 * GIGA

# H200 SXM: the same GH100 die and clocks as the H100 SXM, so the same compute peaks; only the
# memory differs, 141 GB HBM3e at 4.8 TB/s; PCIe Gen5 128 GB/s.
#   https://www.aiminingco.com/gpu/h200/specs ("uses the same GH100 GPU die as the H100",
#   "4.8 TB/s of memory bandwidth - ... 43% increase in bandwidth compared to the H100 SXM")
#   https://openmetal.io/resources/blog/how-the-h200-is-built-for-memory-bound-ai-workloads/
#   ("FP8 compute throughput is identical between H100 and H200"; "3.35 TB/s on the H100 SXM5
#   to 4.8 TB/s on the H200")
#   https://www.saulelectric.com/nvidia-h200.html ("PCIe Gen5: 128GB/s bandwidth")
# A GH200 would instead reach its GPU over NVLink-C2C, 450 GB/s each way (900 GB/s both):
#   https://glennklockwood.com/garden/NVLink ("450 GB/s/direction or 900 GB/s bidirectional").
GPUS: dict[str, GpuSpec] = {
    "h100": GpuSpec("H100 SXM", _HOPPER_PEAKS, 3.35 * TERA, _PCIE_GEN5_X16_ONE_WAY, "PCIe Gen5 x16"),
    "h200": GpuSpec("H200 SXM", _HOPPER_PEAKS, 4.8 * TERA, _PCIE_GEN5_X16_ONE_WAY, "PCIe Gen5 x16"),
}

# Launch costs (driver and GPU front end, not the data sheet's):
# Replaying an instantiated straight-line CUDA graph costs the CPU about 2.5 us whatever its
# length (CUDA 12.6 on Ampere, "~2.5 us + ~1 ns/node"): NVIDIA Technical Blog, "Constant Time
# Launch for Straight-Line CUDA Graphs and Other Performance Enhancements",
#   https://developer.nvidia.com/blog/constant-time-launch-for-straight-line-cuda-graphs-and-other-performance-enhancements/
# (the figure as public engineering notes quote that post; the post itself was not at hand).
GRAPH_LAUNCH_S = 2.5 * MICRO
# Each further node of a replayed chain of dependent no-op kernels added 0.58 us (a graph of N
# no-op kernels took ~15 us + 0.58 us x N, host launch and sync included; RTX 5070 Ti, CUDA 13.3):
#   https://github.com/ahrefs/ocannl/issues/488 ("Measured: what graph replay is actually worth")
# The model charges it to every kernel and every copy the graph holds.
GRAPH_NODE_S = 0.58 * MICRO
# Without a graph, a null kernel's launch overhead is about 3 us on recent hardware and software:
#   https://forums.developer.nvidia.com/t/too-much-time-for-kernel-launch-latency/233645/3
STREAM_LAUNCH_S = 3.0 * MICRO
