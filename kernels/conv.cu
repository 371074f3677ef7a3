// Convolution as an implicit GEMM, with the folded batch-norm bias and the activation in
// the epilogue. Per group g: out[m, p] = act(bias[m] + sum_k w[k, m] * col[k, p]), where
// p runs over (image, oy, ox) and k over (input channel, ky, kx); col is never stored,
// each tile of it is gathered from the NCHW input straight into shared memory.
//
// Layouts: x (N, C, H, W); w packed by the host as (groups, k_pad, m_pad), zero-padded to
// whole tiles (tdn.backends.cuda.tiling.pack_weights); bias (M,); y (N, M, OH, OW).
// A block of WARPS_M x WARPS_N warps computes a TILE_M x TILE_N tile of one group's output,
// each warp a 32 x 16 sub-tile and each thread 16 of its outputs, in every mode.
//
// Three entry points share the tiling: conv_f32 (FMA), conv_tf32 and conv_f16 (tensor
// cores through mma.sync; operands rounded to tf32 / fp16, sums kept in float32).
#include "activations.cuh"

// WARPS_M, WARPS_N and TILE_K come from the host as -D definitions, one set per variant
// (tdn.backends.cuda.tiling.CONV_VARIANTS); the rest follows from them.
#define TILE_M (32 * WARPS_M)
#define TILE_N (16 * WARPS_N)
#define THREADS (32 * WARPS_M * WARPS_N)
#define ROW_M (TILE_M + 4)  // padded shared rows: fragment reads hit distinct banks
#define ROW_N (TILE_N + 4)
// The f32 path: threads in a (THREADS / COLS_T) x COLS_T grid, each owning 4 rows strided by
// ROWS_T and 4 columns strided by COLS_T, so that a warp's stores are coalesced.
#define COLS_T (TILE_N / 4)
#define ROWS_T (THREADS / COLS_T)
static_assert(TILE_K % 16 == 0, "the f16 path steps k by 16 (mma m16n8k16)");
static_assert(TILE_K * TILE_M % THREADS == 0 && TILE_K * TILE_N % THREADS == 0, "whole tile loads");
static_assert(THREADS % TILE_N == 0, "each thread gathers one fixed column");
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

template <int MODE>
__device__ __forceinline__ void conv_body(const float* __restrict__ x, const float* __restrict__ w,
                                          const float* __restrict__ bias, float* __restrict__ y,
                                          const ConvArgs a) {
    __shared__ float tile_w[TILE_K][ROW_M];  // [k][m]
    __shared__ float tile_x[TILE_K][ROW_N];  // [k][p]
    const int t = threadIdx.x, g = blockIdx.z;
    const int m0 = blockIdx.y * TILE_M, p0 = blockIdx.x * TILE_N;
    const int plane = a.out_h * a.out_w, window = a.size * a.size;

    // This thread always gathers column p0 + t % TILE_N of the implicit im2col matrix.
    const int my_col = t % TILE_N, my_p = p0 + my_col;
    const bool col_valid = my_p < a.pixels;
    const int image = col_valid ? my_p / plane : 0, rem = col_valid ? my_p % plane : 0;
    const int in_y0 = (rem / a.out_w) * a.stride - a.padding;
    const int in_x0 = (rem % a.out_w) * a.stride - a.padding;
    const float* src = x + ((long long)image * a.channels + (long long)g * (a.channels / a.groups))
                               * a.height * a.width;
    const float* wg = w + (long long)g * a.k_pad * a.m_pad + m0;

    float acc[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) acc[i] = 0.f;
    const int warp = t / 32, lane = t % 32, gid = lane / 4, tid = lane % 4;
    const int warp_m = (warp % WARPS_M) * 32, warp_n = (warp / WARPS_M) * 16;

    for (int k0 = 0; k0 < a.k_pad; k0 += TILE_K) {
        for (int i = 0; i < TILE_K * TILE_M / THREADS; ++i) {
            int idx = t + i * THREADS, k = idx / TILE_M, m = idx % TILE_M;
            tile_w[k][m] = wg[(long long)(k0 + k) * a.m_pad + m];
        }
        for (int i = 0; i < TILE_K * TILE_N / THREADS; ++i) {
            int k = t / TILE_N + i * (THREADS / TILE_N), kg = k0 + k;
            float v = 0.f;
            if (col_valid && kg < a.k_group) {
                int c = kg / window, r = kg % window;
                int iy = in_y0 + r / a.size, ix = in_x0 + r % a.size;
                if (iy >= 0 && iy < a.height && ix >= 0 && ix < a.width)
                    v = src[((long long)c * a.height + iy) * a.width + ix];
            }
            tile_x[k][my_col] = v;
        }
        __syncthreads();
        if (MODE == MODE_F32) {
            // Thread (tm, tn) owns rows tm + ROWS_T i and columns tn + COLS_T j.
            const int tm = t / COLS_T, tn = t % COLS_T;
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

    // Epilogue: bias (batch-norm folded into it) and activation, stored as NCHW.
#pragma unroll  // acc indexed by constants only: it stays in registers
    for (int e = 0; e < 16; ++e) {
        int m, col;
        if (MODE == MODE_F32) {
            m = t / COLS_T + ROWS_T * (e / 4);
            col = t % COLS_T + COLS_T * (e % 4);
        } else {
            int tile = e / 4, c = e % 4;
            m = warp_m + (tile / 2) * 16 + gid + (c >= 2 ? 8 : 0);
            col = warp_n + (tile % 2) * 8 + 2 * tid + (c & 1);
        }
        int gm = m0 + m, p = p0 + col;
        if (gm >= a.m_group || p >= a.pixels) continue;
        int filter = g * a.m_group + gm;
        long long out = ((long long)(p / plane) * a.filters + filter) * plane + p % plane;
        y[out] = activate(acc[e] + bias[filter], a.activation);
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
    conv_body<MODE_F32>(x, w, bias, y, CONV_ARGS);
}

extern "C" __global__ void __launch_bounds__(THREADS)
conv_tf32(const float* x, const float* w, const float* bias, float* y, CONV_PARAMS) {
    conv_body<MODE_TF32>(x, w, bias, y, CONV_ARGS);
}

extern "C" __global__ void __launch_bounds__(THREADS)
conv_f16(const float* x, const float* w, const float* bias, float* y, CONV_PARAMS) {
    conv_body<MODE_F16>(x, w, bias, y, CONV_ARGS);
}
