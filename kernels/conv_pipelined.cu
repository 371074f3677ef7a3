// Convolution as an implicit GEMM on fp16 tensor cores, fed by a multi-stage cp.async pipeline.
// Per group g: y[p, g * m_group + f] = act(bias + sum_k col[p, k] * w[f, k]), where p runs over
// (image, oy, ox) and k over (ky, kx, c) with the input channel c fastest; col is never stored.
//
// Layouts: x (N, H, W, C) fp16; w packed by the host as (groups, m_pad, k_pad) fp16, k in the
// same (ky, kx, c) order, zero-padded to whole tiles (tdn.backends.cuda.pipelined.pack_weights);
// bias (M,) float32; y (N, OH, OW, M) fp16. Sums and the epilogue in float32.
// Requirement (the host checks it): C / groups % 8 == 0, so that every 8 consecutive k of a
// pixel are 8 contiguous channels of one input cell: one 16-byte cp.async.
//
// A block of WARPS_P x WARPS_F warps computes TILE_P pixels x TILE_F filters of one group, each
// warp 32 x 32 (2 x 4 mma.m16n8k16 tiles). The k loop runs over TILE_K-deep slices of both
// operands, STAGES of them in flight: while the warps compute on one stage, the copies of the
// next STAGES - 1 are under way. Fragments come from shared memory by ldmatrix.x4.
#include "activations.cuh"

// WARPS_P, WARPS_F, TILE_K and STAGES come from the host as -D definitions, one set per variant
// (tdn.backends.cuda.pipelined.VARIANTS); the rest follows from them.
#define TILE_P (32 * WARPS_P)
#define TILE_F (32 * WARPS_F)
#define THREADS (32 * WARPS_P * WARPS_F)
// Shared rows padded by 16 bytes: the 8 rows one ldmatrix phase reads then start in 8 distinct
// 4-bank groups (row strides of 80 or 144 bytes), so fragment loads are free of bank conflicts.
#define ROW (TILE_K + 8)
#define CHUNKS (TILE_K / 8)  // 16-byte copies per tile row
#define X_COPIES (TILE_P * CHUNKS / THREADS)
#define W_COPIES (TILE_F * CHUNKS / THREADS)
static_assert(TILE_K % 16 == 0, "k steps by 16 (mma m16n8k16)");
static_assert(STAGES >= 2, "a pipeline has at least two stages");
static_assert(THREADS % CHUNKS == 0, "each thread copies one fixed chunk of its tile rows");
static_assert(TILE_P * CHUNKS % THREADS == 0 && TILE_F * CHUNKS % THREADS == 0, "whole tile copies");
static_assert(STAGES * (TILE_P + TILE_F) * ROW * 2 <= 48 * 1024, "static shared memory is 48 KiB at most");

typedef unsigned short half_bits;  // fp16 storage: only cp.async, ldmatrix, mma and cvt see the values

__device__ __forceinline__ unsigned shared_address(const void* pointer) {
    return static_cast<unsigned>(__cvta_generic_to_shared(pointer));
}

// 16 bytes from global to shared, the first `bytes` of them copied and the rest zero.
__device__ __forceinline__ void copy16(unsigned destination, const void* source, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(destination), "l"(source), "r"(bytes));
}

__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;\n" ::); }

// Waits until at most the PENDING newest groups of this thread's copies are still in flight.
template <int PENDING>
__device__ __forceinline__ void wait_copies() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(PENDING) : "memory");
}

__device__ __forceinline__ void load_matrices(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3,
                                              unsigned address) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(address));
}

__device__ __forceinline__ unsigned to_half2(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));  // hi -> upper half
    return r;
}

__device__ __forceinline__ void mma_f16(float* d, const unsigned* a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

extern "C" __global__ void __launch_bounds__(THREADS)
conv_pipelined(const half_bits* __restrict__ x, const half_bits* __restrict__ w, const float* __restrict__ bias,
               half_bits* __restrict__ y,  // then the scalars of tdn.backends.cuda.pipelined.PipelinedGeometry
               int channels, int height, int width, int filters, int out_h, int out_w,
               int size, int stride, int padding, int groups, int k_group, int m_group, int k_pad, int m_pad,
               int pixels, int activation) {
    __shared__ __align__(16) half_bits tile_x[STAGES][TILE_P][ROW];  // [stage][pixel][k]
    __shared__ __align__(16) half_bits tile_w[STAGES][TILE_F][ROW];  // [stage][filter][k]
    const int t = threadIdx.x, g = blockIdx.z;
    const int p0 = blockIdx.x * TILE_P, f0 = blockIdx.y * TILE_F;
    const int plane = out_h * out_w, group_channels = channels / groups;

    // This thread copies chunk `chunk` (k offset 8 * chunk in the slice) of tile rows
    // t / CHUNKS + i * (THREADS / CHUNKS): for its pixel rows, where each window starts.
    const int chunk = t % CHUNKS;
    const half_bits* pixel_base[X_COPIES];  // the pixel's image, at the group's first channel; null: no pixel
    int window_y[X_COPIES], window_x[X_COPIES];
#pragma unroll
    for (int i = 0; i < X_COPIES; ++i) {
        const int p = p0 + t / CHUNKS + i * (THREADS / CHUNKS), rem = p % plane;
        pixel_base[i] = p < pixels ? x + (long long)(p / plane) * height * width * channels + g * group_channels
                                   : nullptr;
        window_y[i] = (rem / out_w) * stride - padding;
        window_x[i] = (rem % out_w) * stride - padding;
    }
    const half_bits* w_rows = w + ((long long)g * m_pad + f0) * k_pad + 8 * chunk;

    // Issues the copies of k slice k0 into stage `stage` (not committed).
    auto load_slice = [&](int stage, int k0) {
        const int k = k0 + 8 * chunk;
        int c = 0, ky = 0, kx = 0;
        if (k < k_group) {
            const int cell = k / group_channels;
            c = k - cell * group_channels;
            ky = cell / size;
            kx = cell - ky * size;
        }
#pragma unroll
        for (int i = 0; i < X_COPIES; ++i) {
            const int iy = window_y[i] + ky, ix = window_x[i] + kx;
            const bool inside = pixel_base[i] && k < k_group && iy >= 0 && iy < height && ix >= 0 && ix < width;
            // Outside the image or past k_group: zeros (src-size 0 reads nothing; x is a valid, aligned address).
            const half_bits* source = inside ? pixel_base[i] + ((long long)iy * width + ix) * channels + c : x;
            copy16(shared_address(&tile_x[stage][t / CHUNKS + i * (THREADS / CHUNKS)][8 * chunk]), source,
                   inside ? 16 : 0);
        }
#pragma unroll
        for (int i = 0; i < W_COPIES; ++i) {
            const int row = t / CHUNKS + i * (THREADS / CHUNKS);
            copy16(shared_address(&tile_w[stage][row][8 * chunk]), w_rows + (long long)row * k_pad + k0, 16);
        }
    };

    float acc[2][4][4];
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.f;
    const int warp = t / 32, lane = t % 32;
    const int warp_p = (warp % WARPS_P) * 32, warp_f = (warp / WARPS_P) * 32;

    // The pipeline: one commit group per k slice (empty past the last), STAGES - 1 slices ahead.
    const int slices = k_pad / TILE_K;
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < slices) load_slice(s, s * TILE_K);
        commit_copies();
    }
    for (int slice = 0; slice < slices; ++slice) {
        wait_copies<STAGES - 2>();  // this thread's copies of `slice` have landed
        // Everyone's have; and everyone is done with slice - 1, whose stage is refilled next.
        __syncthreads();
        const int ahead = slice + STAGES - 1;
        if (ahead < slices) load_slice(ahead % STAGES, ahead * TILE_K);
        commit_copies();

        const int stage = slice % STAGES;
#pragma unroll
        for (int kk = 0; kk < TILE_K; kk += 16) {
            // A (pixels x k, row-major): matrices (rows 0-7 | 8-15) x (k 0-7 | 8-15) in mma's a0..a3
            // order; lane l addresses row l % 16 at k offset 8 (l / 16).
            unsigned a[2][4], b[4][2];
#pragma unroll
            for (int mi = 0; mi < 2; ++mi)
                load_matrices(a[mi][0], a[mi][1], a[mi][2], a[mi][3],
                              shared_address(&tile_x[stage][warp_p + mi * 16 + lane % 16][kk + (lane / 16) * 8]));
            // B (k x filters, column-major: a filter's k contiguous): matrices (filters 0-7, k 0-7),
            // (0-7, 8-15), (8-15, 0-7), (8-15, 8-15) give b0, b1 of two 8-filter tiles.
#pragma unroll
            for (int nj = 0; nj < 2; ++nj)
                load_matrices(b[2 * nj][0], b[2 * nj][1], b[2 * nj + 1][0], b[2 * nj + 1][1],
                              shared_address(&tile_w[stage][warp_f + nj * 16 + (lane / 16) * 8 + lane % 8]
                                                    [kk + (lane / 8 % 2) * 8]));
#pragma unroll
            for (int mi = 0; mi < 2; ++mi)
#pragma unroll
                for (int ni = 0; ni < 4; ++ni) mma_f16(acc[mi][ni], a[mi], b[ni][0], b[ni][1]);
        }
    }
    wait_copies<0>();  // only empty groups are left; a thread must not exit with copies pending

    // Epilogue: bias (batch norm folded into it), activation, fp16 NHWC stores. Lane (group
    // gid, tid) holds pixels gid and gid + 8 of each 16 x 8 tile, filters 2 tid and 2 tid + 1.
    const int gid = lane / 4, tid = lane % 4;
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int p = p0 + warp_p + mi * 16 + gid + 8 * h, f = f0 + warp_f + ni * 8 + 2 * tid;
                if (p >= pixels || f >= m_group) continue;
                const int filter = g * m_group + f;
                const bool pair = f + 1 < m_group;
                const float lo = activate(acc[mi][ni][2 * h] + bias[filter], activation);
                const float hi = pair ? activate(acc[mi][ni][2 * h + 1] + bias[filter + 1], activation) : 0.f;
                const unsigned both = to_half2(lo, hi);
                half_bits* out = y + (long long)p * filters + filter;
                if (pair && reinterpret_cast<size_t>(out) % 4 == 0) {  // both filters in one 32-bit store
                    *reinterpret_cast<unsigned*>(out) = both;
                } else {
                    out[0] = (half_bits)(both & 0xffffu);
                    if (pair) out[1] = (half_bits)(both >> 16);
                }
            }
}
