// Convolution as an implicit GEMM, with the folded batch-norm bias and the activation in
// the epilogue. Per group g: out[m, p] = act(bias[m] + sum_k w[k, m] * col[k, p]), where
// p runs over (image, oy, ox) and k over (ky, kx, input channel), the channel fastest: col is
// never stored, each tile of it is gathered from the NHWC input straight into shared memory,
// and a tile's consecutive k are consecutive channels of one input cell, contiguous in memory.
//
// Layouts: x (N, H, W, C); w packed by the host as (groups, k_pad, m_pad) in the same k order,
// zero-padded to whole tiles (tdn.backends.cuda.tiling.pack_weights); bias (M,) float32;
// y (N, OH, OW, M). x, w and y are float in the f32 and tf32 modes and fp16 in the f16 mode
// (storage.cuh: the f16 mode's operands are fp16 anyway, so storing w as fp16 rounds it once, as
// the kernel would); sums are float32 in every mode.
// A block of WARPS_M x WARPS_N warps computes a TILE_M x TILE_N tile of one group's output,
// each warp a 32 x 16 sub-tile and each thread 16 of its outputs, in every mode.
//
// Three entry points share the tiling: conv_f32 (FMA), conv_tf32 and conv_f16 (tensor
// cores through mma.sync; operands rounded to tf32 / fp16, sums kept in float32).
#include "activations.cuh"
#include "storage.cuh"

// WARPS_M, WARPS_N and TILE_K come from the host as -D definitions, one set per variant
// (tdn.backends.cuda.tiling.CONV_VARIANTS); the rest follows from them.
#define TILE_M (32 * WARPS_M)
#define TILE_N (16 * WARPS_N)
#define THREADS (32 * WARPS_M * WARPS_N)
#define ROW_M (TILE_M + 4)  // padded shared rows: fragment reads hit distinct banks
#define ROW_N (TILE_N + 4)
// The f32 path: threads in a ROWS_T x COLS_T grid, rows fastest, each owning 4 rows strided by
// ROWS_T and 4 columns strided by COLS_T, so that a warp's NHWC stores (filters fastest) are
// coalesced.
#define COLS_T (TILE_N / 4)
#define ROWS_T (THREADS / COLS_T)
static_assert(TILE_K % 16 == 0, "the f16 path steps k by 16 (mma m16n8k16)");
static_assert(TILE_K * TILE_M % THREADS == 0 && TILE_K * TILE_N % THREADS == 0, "whole tile loads");
static_assert(THREADS % TILE_K == 0 && TILE_N % (THREADS / TILE_K) == 0, "each thread gathers one fixed k");
static_assert(4 * ROWS_T == TILE_M, "4 rows per thread in the f32 path");

struct ConvArgs {
    int channels, height, width;      // input, per image
    int filters, out_h, out_w;        // output, per image
    int size, stride, padding, groups;
    int k_group, m_group, k_pad, m_pad;
    int pixels;                       // batch * out_h * out_w
    int activation;
};

enum Mode { MODE_F32 = 0, MODE_TF32 = 1, MODE_F16 = 2 };

__device__ __forceinline__ unsigned to_tf32(float v) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return r;
}

__device__ __forceinline__ unsigned to_half2(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));  // hi -> upper half
    return r;
}

template <int MODE, class T>
__device__ __forceinline__ void conv_body(const T* __restrict__ x, const T* __restrict__ w,
                                          const float* __restrict__ bias, T* __restrict__ y,
                                          const ConvArgs a) {
    __shared__ float tile_w[TILE_K][ROW_M];  // [k][m]
    __shared__ float tile_x[TILE_K][ROW_N];  // [k][p]
    // Where each column of the block's tile starts in x: its image's first value (-1: past the
    // last pixel) and the top-left input cell of its window. Decoded once per block.
    __shared__ long long col_image[TILE_N];
    __shared__ int col_y0[TILE_N];
    __shared__ int col_x0[TILE_N];
    const int t = threadIdx.x, g = blockIdx.z;
    const int m0 = blockIdx.y * TILE_M, p0 = blockIdx.x * TILE_N;
    const int plane = a.out_h * a.out_w, group_channels = a.channels / a.groups;
    for (int col = t; col < TILE_N; col += THREADS) {
        const int p = p0 + col, rem = p % plane;
        col_image[col] = p < a.pixels ? (long long)(p / plane) * a.height * a.width * a.channels : -1;
        col_y0[col] = (rem / a.out_w) * a.stride - a.padding;
        col_x0[col] = (rem % a.out_w) * a.stride - a.padding;
    }
    __syncthreads();
    // This thread always gathers row t % TILE_K of the implicit im2col tile: consecutive threads
    // read consecutive channels of a cell.
    const int my_k = t % TILE_K, first_col = t / TILE_K;
    const T* src = x + (long long)g * group_channels;
    const T* wg = w + (long long)g * a.k_pad * a.m_pad + m0;

    float acc[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) acc[i] = 0.f;
    const int warp = t / 32, lane = t % 32, gid = lane / 4, tid = lane % 4;
    const int warp_m = (warp % WARPS_M) * 32, warp_n = (warp / WARPS_M) * 16;

    for (int k0 = 0; k0 < a.k_pad; k0 += TILE_K) {
        for (int i = 0; i < TILE_K * TILE_M / THREADS; ++i) {
            int idx = t + i * THREADS, k = idx / TILE_M, m = idx % TILE_M;
            tile_w[k][m] = load(wg, (long long)(k0 + k) * a.m_pad + m);
        }
        const int kg = k0 + my_k, c = kg % group_channels, cell = kg / group_channels;
        const int ky = cell / a.size, kx = cell % a.size;
        // Not unrolled: unrolled, the gathers' addresses stay live together and the f32 and f16
        // paths spill registers in some variants (tests/test_cuda_compile.py).
#pragma unroll 1
        for (int i = 0; i < TILE_K * TILE_N / THREADS; ++i) {
            const int col = first_col + i * (THREADS / TILE_K);
            const int iy = col_y0[col] + ky, ix = col_x0[col] + kx;
            float v = 0.f;
            if (col_image[col] >= 0 && kg < a.k_group && iy >= 0 && iy < a.height && ix >= 0 && ix < a.width)
                v = load(src, col_image[col] + ((long long)iy * a.width + ix) * a.channels + c);
            tile_x[my_k][col] = v;
        }
        __syncthreads();
        if (MODE == MODE_F32) {
            // Thread (tm, tn) owns rows tm + ROWS_T i and columns tn + COLS_T j.
            const int tm = t % ROWS_T, tn = t / ROWS_T;
#pragma unroll
            for (int k = 0; k < TILE_K; ++k) {
                float wv[4], xv[4];
                // Unrolled whatever TILE_K is, so that acc stays in registers (no local memory).
#pragma unroll
                for (int i = 0; i < 4; ++i) wv[i] = tile_w[k][tm + ROWS_T * i];
#pragma unroll
                for (int j = 0; j < 4; ++j) xv[j] = tile_x[k][tn + COLS_T * j];
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) acc[i * 4 + j] = fmaf(wv[i], xv[j], acc[i * 4 + j]);
            }
        } else {
            // Each warp owns a 32 x 16 sub-tile: 2 x 2 mma tiles of 16 x 8; acc[(mi*2+ni)*4 + e].
#pragma unroll
            for (int kk = 0; kk < TILE_K; kk += (MODE == MODE_TF32 ? 8 : 16)) {
                unsigned fa[2][4], fb[2][2];
                for (int mi = 0; mi < 2; ++mi) {
                    int r = warp_m + mi * 16 + gid;
                    if (MODE == MODE_TF32) {
                        fa[mi][0] = to_tf32(tile_w[kk + tid][r]);
                        fa[mi][1] = to_tf32(tile_w[kk + tid][r + 8]);
                        fa[mi][2] = to_tf32(tile_w[kk + tid + 4][r]);
                        fa[mi][3] = to_tf32(tile_w[kk + tid + 4][r + 8]);
                    } else {
                        const int k = kk + 2 * tid;
                        fa[mi][0] = to_half2(tile_w[k][r], tile_w[k + 1][r]);
                        fa[mi][1] = to_half2(tile_w[k][r + 8], tile_w[k + 1][r + 8]);
                        fa[mi][2] = to_half2(tile_w[k + 8][r], tile_w[k + 9][r]);
                        fa[mi][3] = to_half2(tile_w[k + 8][r + 8], tile_w[k + 9][r + 8]);
                    }
                }
                for (int ni = 0; ni < 2; ++ni) {
                    int n = warp_n + ni * 8 + gid;
                    if (MODE == MODE_TF32) {
                        fb[ni][0] = to_tf32(tile_x[kk + tid][n]);
                        fb[ni][1] = to_tf32(tile_x[kk + tid + 4][n]);
                    } else {
                        const int k = kk + 2 * tid;
                        fb[ni][0] = to_half2(tile_x[k][n], tile_x[k + 1][n]);
                        fb[ni][1] = to_half2(tile_x[k + 8][n], tile_x[k + 9][n]);
                    }
                }
                for (int mi = 0; mi < 2; ++mi)
                    for (int ni = 0; ni < 2; ++ni) {
                        float* d = acc + (mi * 2 + ni) * 4;
                        if (MODE == MODE_TF32)
                            asm volatile(
                                "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                                "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                                : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                                : "r"(fa[mi][0]), "r"(fa[mi][1]), "r"(fa[mi][2]), "r"(fa[mi][3]),
                                  "r"(fb[ni][0]), "r"(fb[ni][1]));
                        else
                            asm volatile(
                                "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                                "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                                : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                                : "r"(fa[mi][0]), "r"(fa[mi][1]), "r"(fa[mi][2]), "r"(fa[mi][3]),
                                  "r"(fb[ni][0]), "r"(fb[ni][1]));
                    }
            }
        }
        __syncthreads();
    }

    // Epilogue: bias (batch-norm folded into it) and activation, stored as NHWC.
#pragma unroll  // acc indexed by constants only: it stays in registers
    for (int e = 0; e < 16; ++e) {
        int m, col;
        if (MODE == MODE_F32) {
            m = t % ROWS_T + ROWS_T * (e / 4);
            col = t / ROWS_T + COLS_T * (e % 4);
        } else {
            int tile = e / 4, c = e % 4;
            m = warp_m + (tile / 2) * 16 + gid + (c >= 2 ? 8 : 0);
            col = warp_n + (tile % 2) * 8 + 2 * tid + (c & 1);
        }
        int gm = m0 + m, p = p0 + col;
        if (gm >= a.m_group || p >= a.pixels) continue;
        int filter = g * a.m_group + gm;
        store(y, (long long)p * a.filters + filter, activate(acc[e] + bias[filter], a.activation));
    }
}

// Scalars are passed one by one as int32, in ConvArgs order;
// tdn.backends.cuda.tiling.ConvGeometry.scalars() builds them.
#define CONV_PARAMS int channels, int height, int width, int filters, int out_h, int out_w, \
    int size, int stride, int padding, int groups, int k_group, int m_group, int k_pad, int m_pad, \
    int pixels, int activation
#define CONV_ARGS ConvArgs{channels, height, width, filters, out_h, out_w, size, stride, padding, \
    groups, k_group, m_group, k_pad, m_pad, pixels, activation}

extern "C" __global__ void __launch_bounds__(THREADS)
conv_f32(const float* x, const float* w, const float* bias, float* y, CONV_PARAMS) {
    conv_body<MODE_F32, float>(x, w, bias, y, CONV_ARGS);
}

extern "C" __global__ void __launch_bounds__(THREADS)
conv_tf32(const float* x, const float* w, const float* bias, float* y, CONV_PARAMS) {
    conv_body<MODE_TF32, float>(x, w, bias, y, CONV_ARGS);
}

extern "C" __global__ void __launch_bounds__(THREADS)
conv_f16(const half16* x, const half16* w, const float* bias, half16* y, CONV_PARAMS) {
    conv_body<MODE_F16, half16>(x, w, bias, y, CONV_ARGS);
}
