// Global average pool of NHWC activations, optionally fused with the softmax that follows it:
// one launch writes the pooled logits and, when with_softmax, the probabilities.
#include "softmax.cuh"

// grid: one block per image; each thread averages whole channels, summing the plane in order
// (consecutive threads read consecutive channels of a cell: coalesced). Without the softmax the
// host passes `pooled` again as `probs` (never touched then), so probs is not __restrict__.
template <class T>
__device__ __forceinline__ void avgpool_softmax_body(const T* __restrict__ x, T* __restrict__ pooled, T* probs,
                                                     int channels, int plane, int with_softmax, int groups,
                                                     float temperature) {
    long long image = blockIdx.x;
    const T* src = x + image * channels * (long long)plane;
    T* logits = pooled + image * channels;
    for (int c = threadIdx.x; c < channels; c += blockDim.x) {
        float sum = 0.f;
        for (int i = 0; i < plane; ++i) sum += load(src, (long long)i * channels + c);
        store(logits, c, sum / (float)plane);
    }
    if (!with_softmax) return;
    __syncthreads();  // makes this block's logits visible to all its threads
    softmax_block(logits, probs + image * channels, channels, 1, groups, temperature);
}

#define AVGPOOL_PARAMS int channels, int plane, int with_softmax, int groups, float temperature
#define AVGPOOL_ARGS channels, plane, with_softmax, groups, temperature

extern "C" __global__ void avgpool_softmax_f32(const float* x, float* pooled, float* probs, AVGPOOL_PARAMS) {
    avgpool_softmax_body(x, pooled, probs, AVGPOOL_ARGS);
}

extern "C" __global__ void avgpool_softmax_f16(const half16* x, half16* pooled, half16* probs, AVGPOOL_PARAMS) {
    avgpool_softmax_body(x, pooled, probs, AVGPOOL_ARGS);
}
