"""The interpreter's cp.async and ldmatrix (backends/cuda/interpreter/ptx.h), against the PTX ISA's
definitions written here apart in NumPy, the errors they raise, and planted breakages of
kernels/conv_pipelined.cu that the suite must catch."""

from __future__ import annotations

import re

import numpy as np
import pytest
from tdn.backends.cuda import kernels
from tdn.backends.cuda.backend import interpreter_unavailable_reason
from tdn.backends.cuda.device import InterpretedDevice
from tdn.backends.cuda.interpreter import build, launcher, ptx
from tdn.backends.cuda.interpreter.launcher import KernelError
from tdn.backends.cuda.interpreter.memory import DeviceArray

from tests import test_cuda_pipelined as pipelined_tests

REASON = interpreter_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no interpreter: {REASON}")
POISON = 0xFFFFFFFF  # a cp.async destination's bits until the copy lands


def _launch(tmp_path, monkeypatch, source: str, arrays: list[DeviceArray], block: int = 32, ints=()) -> None:
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path))
    library = build.compile_source(source, "async.cu", ("k",), {})
    launcher.launch(library, "k", (1,), (block,), (*arrays, *(np.int32(i) for i in ints)), every_schedule=True)


def _floats(values) -> DeviceArray:
    host = np.asarray(values, np.float32)
    array = DeviceArray(host.shape)
    array.view()[...] = host
    return array


# ---- ldmatrix -------------------------------------------------------------------------------------

LDMATRIX_KERNEL = r'''
extern "C" __global__ void k(const unsigned short* data, const float* row_of_lane, float* out, int form) {
    __shared__ __align__(16) unsigned short rows[64 * 8];
    for (int i = threadIdx.x; i < 64 * 8; i += 32) rows[i] = data[i];
    __syncthreads();
    unsigned address = (unsigned)__cvta_generic_to_shared(&rows[8 * (int)row_of_lane[threadIdx.x]]);
    unsigned r[4] = {0, 0, 0, 0};
    switch (form) {
    case 0: asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(r[0]) : "r"(address)); break;
    case 1: asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];"
                         : "=r"(r[0]), "=r"(r[1]) : "r"(address)); break;
    case 2: asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                         : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(address)); break;
    case 3: asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];" : "=r"(r[0]) : "r"(address));
            break;
    case 4: asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];"
                         : "=r"(r[0]), "=r"(r[1]) : "r"(address)); break;
    default: asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                          : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(address));
    }
    for (int i = 0; i < 4; ++i) out[4 * threadIdx.x + i] = __uint_as_float(r[i]);
}
'''
FORMS = [(1, False), (2, False), (4, False), (1, True), (2, True), (4, True)]


def ldmatrix_expected(rows: np.ndarray, row_of_lane: np.ndarray, count: int, trans: bool) -> np.ndarray:
    """(32, 4) uint32 registers per the ISA's ldmatrix fragment: lanes 8i..8i+7 address the rows of
    matrix i; lane l gets of matrix i the elements (l // 4, 2 (l % 4) + j), j = 0, 1, low half first,
    or with .trans those at (2 (l % 4) + j, l // 4)."""
    registers = np.zeros((32, 4), np.uint32)
    for i in range(count):
        matrix = rows[row_of_lane[8 * i:8 * i + 8]]  # 8 x 8 uint16
        if trans:
            matrix = matrix.T
        for lane in range(32):
            low, high = matrix[lane // 4, 2 * (lane % 4):2 * (lane % 4) + 2]
            registers[lane, i] = int(high) << 16 | int(low)
    return registers


@pytest.mark.parametrize("form", range(6), ids=[f"x{c}{'.trans' if t else ''}" for c, t in FORMS])
def test_ldmatrix_gives_each_lane_its_fragment_per_the_isa(tmp_path, monkeypatch, form):
    rng = np.random.default_rng(form)
    rows = rng.integers(0, 2**16, (64, 8), dtype=np.uint16)
    row_of_lane = rng.permutation(64)[:32]  # scattered rows: each lane's address counts
    data = DeviceArray((64 * 8,), np.float16)
    data.view()[...] = rows.ravel().view(np.float16)
    out = DeviceArray((32 * 4,))
    _launch(tmp_path, monkeypatch, LDMATRIX_KERNEL, [data, _floats(row_of_lane), out], ints=(form,))
    count, trans = FORMS[form]
    np.testing.assert_array_equal(out.view().view(np.uint32).reshape(32, 4),
                                  ldmatrix_expected(rows, row_of_lane, count, trans))


# ---- cp.async ------------------------------------------------------------------------------------

ASYNC_KERNEL = r'''
__device__ void copy(int size, unsigned dst, const float* src) {  // cp-size 4, 8, 16 by .ca, full
    if (size == 4) asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" :: "r"(dst), "l"(src));
    if (size == 8) asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" :: "r"(dst), "l"(src));
    if (size == 16) asm volatile("cp.async.ca.shared.global [%0], [%1], 16;" :: "r"(dst), "l"(src));
}
extern "C" __global__ void k(const float* src, float* out) {
    __shared__ __align__(16) float s[30];  // 120 bytes: a 16-byte copy at 112 overruns it
    if (threadIdx.x == 0)
        for (int i = 0; i < 30; ++i) s[i] = -1.f;
    unsigned base = (unsigned)__cvta_generic_to_shared(s);
    BODY
}
'''
SIZES_BODY = r'''
    copy(4, base, src);
    copy(8, base + 16, src + 4);
    copy(16, base + 32, src + 8);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;" :: "r"(base + 48), "l"(src + 12), "r"(4));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;" :: "r"(base + 64), "l"(src + 16), "r"(12));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(base + 80), "l"(src + 20));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(base + 96), "l"(src + 24), "r"(0));
    asm volatile("cp.async.wait_all;" ::);
    for (int i = 0; i < 28; ++i) out[i] = s[i];
'''


def test_cp_async_copies_cp_size_bytes_and_zero_fills_past_src_size(tmp_path, monkeypatch):
    src = np.arange(1, 33, dtype=np.float32)
    out = DeviceArray((28,))
    _launch(tmp_path, monkeypatch, ASYNC_KERNEL.replace("BODY", SIZES_BODY), [_floats(src), out], block=1)
    expected = np.full(28, -1, np.float32)
    expected[0] = src[0]  # 4 bytes
    expected[4:6] = src[4:6]  # 8 bytes
    expected[8:12] = src[8:12]  # 16 bytes
    expected[12:14] = [src[12], 0]  # 8 bytes, src-size 4
    expected[16:20] = [*src[16:19], 0]  # 16 bytes, src-size 12
    expected[20:24] = src[20:24]  # .cg, 16 bytes
    expected[24:28] = 0  # src-size 0: zeros only
    np.testing.assert_array_equal(out.view(), expected)


GROUPS_BODY = r'''
    for (int slot = 0; slot < 4; ++slot) {
        copy(16, base + 16 * slot, src + 4 * slot);
        if (slot < 3) asm volatile("cp.async.commit_group;" ::);  // groups 0, 1, 2; slot 3 uncommitted
    }
    for (int i = 0; i < 16; ++i) out[i] = s[i];
    asm volatile("cp.async.wait_group 2;" ::);
    for (int i = 0; i < 16; ++i) out[16 + i] = s[i];
    asm volatile("cp.async.wait_group %0;" :: "n"(1));
    for (int i = 0; i < 16; ++i) out[32 + i] = s[i];
    asm volatile("cp.async.wait_group 0;" ::);
    for (int i = 0; i < 16; ++i) out[48 + i] = s[i];
    asm volatile("cp.async.wait_all;" ::);
    for (int i = 0; i < 16; ++i) out[64 + i] = s[i];
'''


def test_copies_land_only_when_a_wait_of_their_thread_covers_their_group(tmp_path, monkeypatch):
    """Until then the destination holds poison; wait_group N lands all but the N newest committed
    groups; copies not committed wait for wait_all."""
    src = np.arange(1, 17, dtype=np.float32)
    out = DeviceArray((5, 4, 4))
    _launch(tmp_path, monkeypatch, ASYNC_KERNEL.replace("BODY", GROUPS_BODY), [_floats(src), out], block=1)
    bits = out.view().view(np.uint32)
    landed = [[False] * 4, [True, False, False, False], [True, True, False, False], [True, True, True, False],
              [True] * 4]
    for step, slots in enumerate(landed):
        for slot, has_landed in enumerate(slots):
            expected = src[4 * slot:4 * slot + 4].view(np.uint32) if has_landed else np.full(4, POISON, np.uint32)
            np.testing.assert_array_equal(bits[step, slot], expected, err_msg=f"step {step}, slot {slot}")


@pytest.mark.parametrize("body, message", [
    ('asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(base + 8), "l"(src));',
     r"line 12: cp.async.cg.shared.global to shared address 0x\w+, not aligned to 16 bytes"),
    ('asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" :: "r"(base), "l"(src + 1));',
     r"line 12: cp.async.ca.shared.global from 0x\w+, not aligned to 8 bytes"),
    ('asm volatile("cp.async.cg.shared.global [%0], [%1], 8;" :: "r"(base), "l"(src));',
     r"cp-size 8 \(.cg copies 16 bytes\)"),
    ('asm volatile("cp.async.ca.shared.global [%0], [%1], 2;" :: "r"(base), "l"(src));',
     r"cp-size 2 \(4, 8 or 16\)"),
    ('asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;" :: "r"(base), "l"(src), "r"(20));',
     "src-size 20 > cp-size 16"),
    ('copy(16, base + 112, src); asm volatile("cp.async.wait_all;" ::);',
     "of 16 bytes at shared address 0x\\w+ runs 8 bytes past the end of its __shared__ variable"),
    ('copy(16, base, src + 64); asm volatile("cp.async.wait_all;" ::);', "out-of-bounds read 0 bytes past the end"),
    ("copy(16, base, src);", r"thread \d exited with 1 cp.async copies pending, the first issued at line 5"),
    ('copy(16, (unsigned)__cvta_generic_to_shared(out), src);', "line 12: __cvta_generic_to_shared of 0x\\w+, "
     "which is not in a __shared__ variable"),
    ("if (threadIdx.x == 0) { copy(16, base, src); asm volatile(\"cp.async.wait_all;\" ::); }\n"
     "    out[threadIdx.x] = s[threadIdx.x % 4];", "depend on the schedule"),
    ("copy(16, base, src); out[threadIdx.x] = s[0]; asm volatile(\"cp.async.wait_all;\" ::);",
     "depend on the schedule|not equal"),
], ids=["misaligned destination", "misaligned source", ".cg of 8 bytes", "cp-size 2", "src-size > cp-size",
        "past a shared variable", "source past its buffer", "pending at exit", "cvta of global memory",
        "no barrier after the wait", "read before the wait"])
def test_a_cp_async_misuse_is_a_launch_error(tmp_path, monkeypatch, body, message):
    src, out = _floats(np.arange(64)), DeviceArray((64,))
    out.view().fill(0)
    try:
        _launch(tmp_path, monkeypatch, ASYNC_KERNEL.replace("BODY", body), [src, out], block=4)
    except KernelError as error:
        assert re.search(f"^k: .*{message}", str(error)), str(error)
        return
    # A read before the wait sees poison in every schedule alike: the values say it.
    assert message.endswith("not equal") and (out.view()[:4].view(np.uint32) == POISON).all()


@pytest.mark.parametrize("body, message", [
    ('unsigned r; asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(r) : '
     '"r"(base + 8 * (threadIdx.x == 5))); out[threadIdx.x] = r;', "lane 5 gives row address 0x\\w+, not 16-byte"),
    ('if (threadIdx.x == 3) return; unsigned r; asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];"'
     ' : "=r"(r) : "r"(base)); out[threadIdx.x] = r;', "(lane 3 of warp 0 has exited|thread 3 exited while lanes)"),
    ('unsigned r; asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%0,%0,%0}, [%1];" : "=r"(r) : '
     '"r"(base + 16 * threadIdx.x)); out[threadIdx.x] = r;', "runs 8 bytes past the end"),
], ids=["misaligned row", "exited lane", "row past the shared variable"])
def test_an_ldmatrix_misuse_is_a_launch_error(tmp_path, monkeypatch, body, message):
    src, out = _floats(np.arange(64)), DeviceArray((64,))
    with pytest.raises(KernelError, match=f"^k: .*{message}"):
        _launch(tmp_path, monkeypatch, ASYNC_KERNEL.replace("BODY", body), [src, out], block=32)


def test_asm_operands_may_be_literals_and_optional():
    source = ('void f(unsigned d, const void* s) {\n'
              '    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" :: "r"(d), "l"(s));\n'
              '    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(d), "l"(s), "r"(4));\n'
              '    asm volatile("cp.async.wait_group %0;" :: "n"(2));\n'
              '}\n')
    rewritten = ptx.rewrite(source, "t.cu")
    assert "tdn_ptx::cp_async_ca_shared_global(__LINE__, (d), (s), 8)" in rewritten
    assert "tdn_ptx::cp_async_cg_shared_global(__LINE__, (d), (s), 16, (4))" in rewritten
    assert "tdn_ptx::cp_async_wait_group((2))" in rewritten
    with pytest.raises(ptx.UnknownAsm, match=r"expects 3 operands \(and 1 optional\)"):
        ptx.rewrite('asm volatile("cp.async.ca.shared.global [%0], [%1];" :: "r"(d), "l"(s));', "t.cu")
    with pytest.raises(ptx.UnknownAsm, match="is the literal 4, expected a 'l' operand"):
        ptx.rewrite('asm volatile("cp.async.ca.shared.global [%0], 4, 4;" :: "r"(d));', "t.cu")


# ---- planted breakages of the pipelined convolution ---------------------------------------------

EXAMPLE = (1, 16, 5, 6, 20, 3, 1, 1, 1, "leaky")  # k_pad 160: five k slices through four stages


def _conv(variant: str = "p64f64k32s4") -> None:
    pipelined_tests.check(*pipelined_tests.run(*EXAMPLE, variant, seed=5), variant)


# (name, the bug as a function of the source, what the failure says)
BREAKAGES = [
    ("the wait_group removed: compute reads copies in flight",
     lambda s: s.replace("        wait_copies<STAGES - 2>();", ""), "depend on the schedule|Not equal"),
    ("a read before the wait: one slice fewer waited for",
     lambda s: s.replace("wait_copies<STAGES - 2>();", "wait_copies<STAGES - 1>();"),
     "depend on the schedule|Not equal"),
    ("the __syncthreads after the wait removed: other threads' copies may not have landed",
     lambda s: s.replace("        __syncthreads();\n        const int ahead", "\n        const int ahead"),
     "depend on the schedule|Not equal"),
    ("the refill issued before the barrier: it overwrites a stage other warps still read",
     lambda s: s.replace("        __syncthreads();\n        const int ahead = slice + STAGES - 1;\n"
                         "        if (ahead < slices) load_slice(ahead % STAGES, ahead * TILE_K);\n",
                         "        const int ahead = slice + STAGES - 1;\n"
                         "        if (ahead < slices) load_slice(ahead % STAGES, ahead * TILE_K);\n"
                         "        __syncthreads();\n"), "depend on the schedule|Not equal"),
    ("a wrong ldmatrix row address: A rows 8-15 read as rows 0-7",
     lambda s: s.replace("[warp_p + mi * 16 + lane % 16]", "[warp_p + mi * 16 + lane % 8]"), "Not equal"),
    ("a misaligned cp.async: input chunks 8 bytes off",
     lambda s: s.replace("[stage][t / CHUNKS + i * (THREADS / CHUNKS)][8 * chunk]",
                         "[stage][t / CHUNKS + i * (THREADS / CHUNKS)][8 * chunk + 4]"),
     r"conv_pipelined\.cu:\d+: cp\.async\.cg\.shared\.global to shared address 0x\w+, not aligned to 16 bytes"),
]


@pytest.fixture
def interpreted(monkeypatch, tmp_path):
    """Launches on an interpreter (every schedule) whose sources the test may replace."""
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TDN_CUDA_INTERPRET", "check")

    def use(sources: dict[str, str]) -> None:
        device = InterpretedDevice(every_schedule=True, sources=sources)
        monkeypatch.setattr(kernels, "device", lambda: device)
        monkeypatch.setattr(pipelined_tests, "device", lambda: device)

    return use


@pytest.mark.parametrize("name, bug, failure", BREAKAGES, ids=[b[0][:40] for b in BREAKAGES])
def test_a_planted_breakage_of_the_pipeline_fails(interpreted, name, bug, failure):
    source = kernels.kernel_source("conv_pipelined.cu")
    interpreted({})
    _conv()  # the unbroken kernel passes this example
    broken = bug(source)
    assert broken != source and broken.count("\n") == source.count("\n")
    interpreted({"conv_pipelined.cu": broken})
    with pytest.raises((KernelError, AssertionError), match=failure):
        _conv()
