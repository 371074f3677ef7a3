// Darknet's [connected] layer: y[b, o] = act(bias[o] + sum_i w[o, i] * x[b, i]), with
// batch-norm already folded into w and bias by tdn. Sums are float32 FMAs.
//
// Layouts: x (batch, inputs), w (outputs, inputs), bias (outputs,), y (batch, outputs); all
// C-contiguous. x, y and w are float, or fp16 in an fp16 network (storage.cuh: w rounded once at
// upload, as the fp16 conv's operands are); bias float; sums float32. An NHWC input is read flat in HWC order: the host permuted w's input axis from
// Darknet's CHW order to match when it uploaded w (tdn.backends.cuda.layout.connected_weights).
//
// Tiling, for batch 1 (a matrix-vector product, bound by reading w once) up to a few hundred:
// a block is 8 warps, one output row of w per warp, and a tile of up to BATCH_TILE images.
// The images' inputs are staged CHUNK at a time in shared memory and read by all 8 warps;
// each warp streams its row of w with coalesced loads, one value per lane per step, and
// keeps BATCH_TILE partial sums per lane, reduced across the warp at the end.
// blockIdx.x walks the image tiles so that the blocks reading the same rows of w run side
// by side and share them through L2: w comes from DRAM about once for any batch.
#include "activations.cuh"
#include "reduce.cuh"
#include "storage.cuh"

// WARPS, BATCH_TILE and CHUNK come from the host as -D definitions (tdn.backends.cuda.kernels.DEFINES).
#define THREADS (WARPS * 32)

template <class T>
__device__ __forceinline__ void connected_body(const T* __restrict__ x, const T* __restrict__ w,
                                               const float* __restrict__ bias, T* __restrict__ y, int batch,
                                               int inputs, int outputs, int activation) {
    __shared__ float staged[BATCH_TILE][CHUNK];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int b0 = blockIdx.x * BATCH_TILE;
    const int images = min(BATCH_TILE, batch - b0);
    const int o = blockIdx.y * WARPS + warp;
    // A warp past the last output still helps stage inputs, so it cannot leave early.
    const bool has_output = o < outputs;
    const T* row = w + (long long)(has_output ? o : 0) * inputs;
    const T* first = x + (long long)b0 * inputs;

    float acc[BATCH_TILE];
#pragma unroll
    for (int b = 0; b < BATCH_TILE; ++b) acc[b] = 0.f;

    for (int i0 = 0; i0 < inputs; i0 += CHUNK) {
        const int n = min(CHUNK, inputs - i0);
        for (int e = threadIdx.x; e < images * CHUNK; e += THREADS) {
            int b = e / CHUNK, i = e % CHUNK;
            if (i < n) staged[b][i] = load(first, (long long)b * inputs + i0 + i);
        }
        __syncthreads();
        if (has_output) {
#pragma unroll 4
            for (int i = lane; i < n; i += 32) {
                float wv = load(row, i0 + i);
#pragma unroll
                for (int b = 0; b < BATCH_TILE; ++b)
                    if (b < images) acc[b] = fmaf(wv, staged[b][i], acc[b]);
            }
        }
        __syncthreads();  // the next chunk overwrites `staged`
    }
    if (!has_output) return;
    // Lane b keeps image b's sum (every lane takes part in each reduction) and stores it.
    float mine = 0.f;
#pragma unroll
    for (int b = 0; b < BATCH_TILE; ++b) {
        float sum = warp_sum(acc[b]);
        if (lane == b) mine = sum;
    }
    if (lane < images) store(y, (long long)(b0 + lane) * outputs + o, activate(mine + bias[o], activation));
}

#define CONNECTED_PARAMS int batch, int inputs, int outputs, int activation

extern "C" __global__ void __launch_bounds__(THREADS)
connected_f32(const float* x, const float* w, const float* bias, float* y, CONNECTED_PARAMS) {
    connected_body(x, w, bias, y, batch, inputs, outputs, activation);
}

extern "C" __global__ void __launch_bounds__(THREADS)
connected_f16(const half16* x, const half16* w, const float* bias, half16* y, CONNECTED_PARAMS) {
    connected_body(x, w, bias, y, batch, inputs, outputs, activation);
}
