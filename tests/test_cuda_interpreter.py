"""The CUDA interpreter (TDN_CUDA_INTERPRET) itself: that it catches kernel bugs, reports them as
launch errors naming the kernel, and emulates the inline PTX as the PTX ISA defines it.

Planted breakages: each applies one known bug to a copy of a kernel's source and runs examples of
the gpu suite (tests/test_cuda_gpu.py) on it, interpreted under every schedule; each must fail,
while the same examples pass on the unbroken source.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from tdn.backends.cuda import kernels
from tdn.backends.cuda.backend import interpreter_unavailable_reason
from tdn.backends.cuda.device import InterpretedDevice
from tdn.backends.cuda.interpreter import build, launcher, ptx
from tdn.backends.cuda.interpreter.launcher import KernelError

from tests import test_cuda_gpu as gpu

REASON = interpreter_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no interpreter: {REASON}")

# One example of a gpu test, run without hypothesis.
CONV_F32 = dict(cg=3, mg=5, groups=2, size=3, stride=1, padding=1, batch=2, height=7, width=9, activation="leaky",
                precision="fp32", seed=1)
CONV_TF32 = {**CONV_F32, "precision": "tf32"}
SOFTMAX = dict(batch=2, groups=1, shape=(30, 5, 6), seed=3)  # 900 values: every thread of the block works
MAXPOOL_F16 = dict(size=2, stride=2, padding=0, shape=(1, 3, 6, 6), storage=np.float16, seed=4)
CONNECTED = dict(batch=3, inputs=300, outputs=9, image=False, activation="linear", storage=np.float32, seed=2)


def _conv(example):
    gpu.test_conv_matches_numpy.hypothesis.inner_test(**example)


def _softmax(example):
    gpu.test_softmax_matches_numpy.hypothesis.inner_test(**example)


def _maxpool(example):
    gpu.test_maxpool_matches_numpy.hypothesis.inner_test(**example)


def _connected(example):
    gpu.test_connected_matches_formula.hypothesis.inner_test(**example)


def _swap(text: str, one: str, other: str) -> str:
    assert one in text and other in text
    return text.replace(one, "\0").replace(other, one).replace("\0", other)


# (name, file, the bug as a function of the source, the check, its example, what the failure says)
BREAKAGES = [
    ("a __syncthreads() removed: compute starts before the tile is loaded", "conv.cu",
     lambda s: s.replace("        __syncthreads();\n        if (MODE == MODE_F32)", "\n        if (MODE == MODE_F32)"),
     _conv, CONV_F32, "depend on the schedule|Not equal"),
    ("a __syncthreads() removed: a warp reuses the reduction scratch while others read it", "softmax.cu",
     lambda s: s.replace("    __syncthreads();  // scratch may still be read by the previous reduction\n", "\n"),
     _softmax, SOFTMAX, "depend on the schedule"),
    ("two tf32 A-fragment elements swapped (a1 and a2)", "conv.cu",
     lambda s: _swap(s, "tile_w[kk + tid][r + 8]", "tile_w[kk + tid + 4][r]"),
     _conv, CONV_TF32, "Not equal"),
    ("an off-by-one staging bound: the last chunk reads one value past the inputs", "connected.cu",
     lambda s: s.replace("if (i < n) staged[b][i]", "if (i <= n) staged[b][i]"),
     _connected, CONNECTED, "out-of-bounds read 0 bytes past the end"),
    ("the padding bounds check removed: the gather reads outside the image", "conv.cu",
     lambda s: s.replace("iy >= 0 && iy < a.height && ix >= 0 && ix < a.width)", "true)"),
     _conv, CONV_F32, "Not equal|out-of-bounds"),
    ("the gather's k order (ky, kx, c) taken as (c, ky, kx), the NCHW order", "conv.cu",
     lambda s: s.replace("c = kg % group_channels, cell = kg / group_channels",
                         "c = kg / (a.size * a.size), cell = kg % (a.size * a.size)"),
     _conv, CONV_F32, "Not equal"),
    ("softmax groups read in NHWC order instead of Darknet's CHW order", "softmax.cu",
     lambda s: s.replace("load(x, (long long)(j % plane) * channels + j / plane)", "load(x, j)"),
     _softmax, {**SOFTMAX, "groups": 3}, "Not equal"),
    ("an fp16 value read with the wrong exponent bias", "maxpool.cu",
     lambda s: s.replace("* 0x1p112f", "* 0x1p111f"),
     _maxpool, MAXPOOL_F16, "not equal"),
]


@pytest.fixture
def interpreted(monkeypatch, tmp_path):
    """Launch wrappers on an interpreter (every schedule) whose sources the test may replace."""
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path))

    def use(sources: dict[str, str]) -> None:
        device = InterpretedDevice(every_schedule=True, sources=sources)
        monkeypatch.setattr(kernels, "device", lambda: device)
        monkeypatch.setattr(gpu, "device", lambda: device)

    return use


@pytest.mark.parametrize("name, file, bug, check, example, failure", BREAKAGES, ids=[b[0][:40] for b in BREAKAGES])
def test_a_planted_breakage_fails_the_suite(interpreted, name, file, bug, check, example, failure):
    source = kernels.kernel_source(file)
    interpreted({})
    check(example)  # the unbroken kernel passes this example
    broken = bug(source)
    assert broken != source and broken.count("\n") == source.count("\n")
    interpreted({file: broken})
    with pytest.raises((KernelError, AssertionError), match=failure):
        check(example)


def _run(tmp_path, monkeypatch, body: str, grid=(1,), block=(64,), n=64, fill=0.0):
    """A test kernel `k(float* y, int n)` compiled and launched under every schedule; returns y."""
    from tdn.backends.cuda.interpreter.memory import DeviceArray

    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path))
    source = f'extern "C" __global__ void k(float* y, int n) {{\n{body}\n}}\n'
    library = build.compile_source(source, "test.cu", ("k",), {})
    y = DeviceArray((n,))
    y.view().fill(fill)
    launcher.launch(library, "k", grid, block, (y, np.int32(n)), every_schedule=True)
    return y.view().copy()


def test_a_correct_kernel_runs_every_thread(tmp_path, monkeypatch):
    body = "int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) y[i] = (float)i * 2.f;"
    assert (_run(tmp_path, monkeypatch, body, grid=(3,), block=(32,), n=90) == np.arange(90) * 2).all()


def test_warp_shuffles_exchange_registers(tmp_path, monkeypatch):
    body = ("float v = threadIdx.x; for (int s = 16; s > 0; s /= 2) v += __shfl_xor_sync(0xffffffffu, v, s);\n"
            "y[threadIdx.x] = v + __shfl_sync(0xffffffffu, (float)threadIdx.x, 3);")
    y = _run(tmp_path, monkeypatch, body)
    lanes = np.arange(64) % 32
    np.testing.assert_array_equal(y, np.where(np.arange(64) < 32, 496, 496 + 32 * 32) + (np.arange(64) - lanes + 3))


@pytest.mark.parametrize("body, message", [
    ("if (threadIdx.x < 32) __syncthreads();\nelse __syncthreads();",
     "different __syncthreads: .* line [23], .* line [23]"),
    ("if (threadIdx.x == 5) return; float v = __shfl_xor_sync(0xffffffffu, 1.f, 1); y[threadIdx.x] = v;",
     "(lane 5 of warp 0 has exited|thread 5 exited while lanes of its warp wait for it at __shfl_xor_sync)"),
    ("y[n] = 1.f;", "out-of-bounds write 0 bytes past the end"),
    ("if (threadIdx.x == 0) y[-1] = 1.f;", "wrote before the start"),
    ("__shared__ float s[64]; y[threadIdx.x] = s[threadIdx.x];", "depend on the schedule"),
    ("__shared__ float s[64]; s[threadIdx.x] = threadIdx.x; y[threadIdx.x] = s[63 - threadIdx.x];",
     "depend on the schedule"),
], ids=["barrier mismatch", "exited lane", "write past the end", "write before the start", "uninitialised shared",
        "missing __syncthreads"])
def test_a_kernel_bug_is_a_launch_error_naming_the_kernel(tmp_path, monkeypatch, body, message):
    with pytest.raises(KernelError, match=f"^k: .*{message}"):
        _run(tmp_path, monkeypatch, body)


def test_an_unknown_asm_statement_is_a_build_error_naming_it():
    source = 'extern "C" __global__ void k(float* y) {\n    asm volatile("add.f32 %0, %0, %0;" : "+f"(y[0]));\n}\n'
    with pytest.raises(ptx.UnknownAsm, match=r"test.cu line 2: asm statement 'add.f32 %0, %0, %0;' is not known"):
        ptx.rewrite(source, "test.cu")


def test_asm_rewrite_keeps_lines_and_orders_operands_as_the_template():
    source = kernels.kernel_source("conv.cu")
    rewritten = ptx.rewrite(source, "conv.cu")
    assert "asm" not in rewritten and rewritten.count("\n") == source.count("\n")
    assert "tdn_ptx::cvt_rn_f16x2_f32((r), (hi), (lo))" in rewritten


def _tf32_rna(x: np.ndarray) -> np.ndarray:
    """Normal float32 values rounded to 11 significant bits, ties away from zero (in float64)."""
    mantissa, exponent = np.frexp(np.abs(x.astype(np.float64)))
    rounded = np.floor(mantissa * 2**11 + 0.5) * np.exp2(exponent - 11.0)
    return (np.sign(x) * rounded).astype(np.float32)


def test_conversions_follow_the_ptx_isa(tmp_path, monkeypatch):
    """cvt.rna.tf32.f32 and cvt.rn.f16x2.f32 through asm statements in a kernel, against NumPy."""
    from tdn.backends.cuda.interpreter.memory import DeviceArray

    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    ties = (np.arange(1, 200, dtype=np.uint32) << 13 | 0x1000).view(np.float32)  # exactly halfway, tf32
    half_ties = np.float32(1.0) + np.float32(2.0**-11) * np.arange(-40, 40, dtype=np.float32)
    x = np.concatenate([rng.standard_normal(4000).astype(np.float32) * 10 ** rng.uniform(-6, 6, 4000),
                        ties, -ties, half_ties,
                        np.float32([65504, 65519.99, 65520, 1e5, -1e5, 6e-8, 3e-8, 1e-9, 0, -0.0, np.inf, -np.inf,
                                    5.96e-8, 6.1e-5])]).astype(np.float32)
    source = ('extern "C" __global__ void k(const float* x, float* tf32, float* halves, int n) {\n'
              '    int i = blockIdx.x * blockDim.x + threadIdx.x;\n'
              '    if (i >= n) return;\n'
              '    unsigned r;\n'
              '    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x[i]));\n'
              '    tf32[i] = __uint_as_float(r);\n'
              '    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(x[i]), "f"(-x[i] * 0.5f));\n'
              '    halves[i] = __uint_as_float(r);\n'
              '}\n')
    library = build.compile_source(source, "cvt.cu", ("k",), {})
    arrays = [DeviceArray((len(x),)) for _ in range(3)]
    arrays[0].view()[:] = x
    launcher.launch(library, "k", (-(-len(x) // 128),), (128,), (*arrays, np.int32(len(x))), every_schedule=False)
    tf32 = arrays[1].view().copy()
    normal = np.isfinite(x) & (np.abs(x) >= np.finfo(np.float32).tiny)
    np.testing.assert_array_equal(tf32[normal], _tf32_rna(x[normal]))
    assert (tf32.view(np.uint32) & 0x1FFF == 0).all()
    np.testing.assert_array_equal(tf32[~np.isfinite(x)], x[~np.isfinite(x)])
    halves = arrays[2].view().view(np.uint32)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(halves >> 16, x.astype(np.float16).view(np.uint16))
        np.testing.assert_array_equal(halves & 0xFFFF, (-x * np.float32(0.5)).astype(np.float16).view(np.uint16))


def test_interpreted_cuda_is_available_and_never_picked_by_auto(monkeypatch):
    from tests.conftest import hermetic_backends

    monkeypatch.setenv("TDN_CUDA_INTERPRET", "1")
    backends = hermetic_backends()
    cuda = backends.instance("cuda")
    assert cuda.unavailable_reason() is None
    assert cuda.description.endswith("interpreted on the CPU: for testing, slow")
    assert backends.get("auto").name == "numpy"


def test_a_barrier_mismatch_names_the_kernel_files_and_lines(interpreted):
    source = kernels.kernel_source("avgpool_softmax.cu")
    sync = "    __syncthreads();  // makes this block's logits visible to all its threads"
    line = source.splitlines().index(sync) + 1
    assert kernels.source_line("avgpool_softmax.cu", line).startswith("avgpool_softmax.cu:")
    interpreted({"avgpool_softmax.cu": source.replace(sync, "    if (threadIdx.x < 32) __syncthreads();")})
    with pytest.raises(KernelError, match="^avgpool_softmax_f32: threads wait at different __syncthreads") as error:
        gpu.test_avgpool_softmax_matches_numpy.hypothesis.inner_test(
            batch=1, groups=1, per_group=40, plane=(3, 3), fused=True, temperature=1.0, seed=0)
    assert kernels.source_line("avgpool_softmax.cu", line) in str(error.value)
    assert re.search(r"reduce\.cuh:\d+", str(error.value))


# One warp's mma, its fragments loaded as the PTX ISA's tables place them ("Matrix Fragments for
# mma.m16n8k8" and "for mma.m16n8k16 with floating point type"; groupID = lane >> 2,
# threadID_in_group = lane % 4), written here apart from conv.cu and from ptx.h.
MMA_KERNEL = r'''
__device__ unsigned tf32(float v) { unsigned r; asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v)); return r; }
__device__ unsigned half2(float lo, float hi) {
    unsigned r; asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r;
}
extern "C" __global__ void k(const float* A, const float* B, const float* C, float* D, int f16) {
    int g = threadIdx.x >> 2, t = threadIdx.x % 4, K = f16 ? 16 : 8;
    float d0 = C[g * 8 + 2 * t], d1 = C[g * 8 + 2 * t + 1];
    float d2 = C[(g + 8) * 8 + 2 * t], d3 = C[(g + 8) * 8 + 2 * t + 1];
    if (!f16) {
        unsigned a0 = tf32(A[g * K + t]), a1 = tf32(A[(g + 8) * K + t]);
        unsigned a2 = tf32(A[g * K + t + 4]), a3 = tf32(A[(g + 8) * K + t + 4]);
        unsigned b0 = tf32(B[t * 8 + g]), b1 = tf32(B[(t + 4) * 8 + g]);
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};" : "+f"(d0), "+f"(d1), "+f"(d2), "+f"(d3)
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    } else {
        int c = 2 * t;
        unsigned a0 = half2(A[g * K + c], A[g * K + c + 1]), a1 = half2(A[(g + 8) * K + c], A[(g + 8) * K + c + 1]);
        unsigned a2 = half2(A[g * K + c + 8], A[g * K + c + 9]);
        unsigned a3 = half2(A[(g + 8) * K + c + 8], A[(g + 8) * K + c + 9]);
        unsigned b0 = half2(B[c * 8 + g], B[(c + 1) * 8 + g]), b1 = half2(B[(c + 8) * 8 + g], B[(c + 9) * 8 + g]);
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};" : "+f"(d0), "+f"(d1), "+f"(d2), "+f"(d3)
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    }
    D[g * 8 + 2 * t] = d0; D[g * 8 + 2 * t + 1] = d1; D[(g + 8) * 8 + 2 * t] = d2; D[(g + 8) * 8 + 2 * t + 1] = d3;
}
'''


@pytest.mark.parametrize("f16", [False, True], ids=["m16n8k8 tf32", "m16n8k16 f16"])
def test_mma_fragments_follow_the_isa_tables(tmp_path, monkeypatch, f16):
    """Small integers, exact in tf32, f16 and float32: D must equal A @ B + C exactly."""
    from tdn.backends.cuda.interpreter.memory import DeviceArray

    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path))
    k = 16 if f16 else 8
    rng = np.random.default_rng(k)
    a, b, c = (rng.integers(-8, 9, shape).astype(np.float32) for shape in ((16, k), (k, 8), (16, 8)))
    arrays = [DeviceArray(m.shape) for m in (a, b, c, c)]
    for array, values in zip(arrays, (a, b, c), strict=False):
        array.view()[:] = values
    library = build.compile_source(MMA_KERNEL, "mma.cu", ("k",), {})
    launcher.launch(library, "k", (1,), (32,), (*arrays, np.int32(f16)), every_schedule=True)
    np.testing.assert_array_equal(arrays[3].view(), a @ b + c)


def test_cpu_builds_are_cached_by_their_content(tmp_path, monkeypatch):
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path))
    source = 'extern "C" __global__ void k(float* y) { y[threadIdx.x] = 1.f; }\n'
    first = build.compile_source(source, "cached.cu", ("k",), {})
    built = first.stat().st_mtime_ns
    assert build.compile_source(source, "cached.cu", ("k",), {}) == first and first.stat().st_mtime_ns == built
    assert build.compile_source(source.replace("1.f", "2.f"), "cached.cu", ("k",), {}) != first
    assert build.compile_source(source, "cached.cu", ("k",), {"TILE": 8}) != first
    assert sorted(path.name for path in (tmp_path / "cuda-interpreter").iterdir()) == sorted(
        path.name for path in (tmp_path / "cuda-interpreter").glob("cached-*.so"))  # no temporary left behind


def test_libraries_of_one_source_with_different_definitions_keep_their_own_shared_memory():
    """Two builds of one templated kernel (as conv.cu's variants are), loaded in one process: each
    uses its own __shared__ arrays, sized by its own definitions (g++ would otherwise make the
    template's statics one object per process)."""
    from tdn.backends.cuda.interpreter.memory import DeviceArray

    source = ('template <int V> __device__ void body(float* y) {\n'
              '    __shared__ float a[BLOCK];\n'
              '    __shared__ float b[BLOCK];\n'
              '    a[threadIdx.x] = VALUE * threadIdx.x;\n'
              '    b[threadIdx.x] = -1.0f;\n'
              '    __syncthreads();\n'
              '    y[blockIdx.x * blockDim.x + threadIdx.x] = a[BLOCK - 1 - threadIdx.x] + b[threadIdx.x];\n'
              '}\n'
              'extern "C" __global__ void k(float* y) { body<0>(y); }\n')
    cases = ((1, 32), (2, 128))
    libraries = [build.compile_source(source, "two.cu", ("k",), {"VALUE": value, "BLOCK": block})
                 for value, block in cases]
    for (value, block), library in zip(cases, libraries, strict=True):
        y = DeviceArray((256,))
        launcher.launch(library, "k", (256 // block,), (block,), (y,), every_schedule=True)
        expected = np.tile(value * np.arange(block - 1, -1, -1, dtype=np.float32) - 1, 256 // block)
        np.testing.assert_array_equal(y.view(), expected)
