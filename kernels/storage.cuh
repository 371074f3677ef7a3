// How activations are stored between layers: float (fp32 and tf32 networks) or IEEE fp16 (fp16
// networks: half the bytes moved per layer). Arithmetic is float32 either way: kernels read
// through load() and write through store(), which convert.
//
// fp16 is kept as its raw 16-bit pattern in a struct of its own, not cuda_fp16.h's __half, so
// that every kernel compiles with no CUDA header (NVRTC and the CPU interpreter alike) and the
// overloads below cannot be confused with integer arithmetic.
#pragma once

struct half16 {
    unsigned short bits;
};

// f16 -> f32 is exact: the 15 magnitude bits moved into a float's exponent and mantissa fields
// give 2^-112 times the value for normal and subnormal halves alike (a float subnormal then,
// exact), so one multiplication by 2^112 restores it. Infinities and NaNs keep their payload.
__device__ __forceinline__ float half_to_float(unsigned short h) {
    unsigned magnitude = h & 0x7fffu, sign = (unsigned)(h & 0x8000u) << 16;
    float v = magnitude >= 0x7c00u ? __uint_as_float(0x7f800000u | (magnitude & 0x3ffu) << 13)
                                   : __uint_as_float(magnitude << 13) * 0x1p112f;
    return __uint_as_float(__float_as_uint(v) | sign);
}

// f32 -> f16 rounded to nearest even, by the PTX conversion (the low half of an f16x2 pair).
__device__ __forceinline__ unsigned short float_to_half(float v) {
    unsigned pair;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(pair) : "f"(0.f), "f"(v));
    return (unsigned short)(pair & 0xffffu);
}

__device__ __forceinline__ float load(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float load(const half16* p, long long i) { return half_to_float(p[i].bits); }
__device__ __forceinline__ void store(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ void store(half16* p, long long i, float v) { p[i].bits = float_to_half(v); }
