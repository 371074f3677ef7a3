// Global average pool, optionally fused with the softmax that follows it: one launch
// writes the pooled logits and, when with_softmax, the probabilities.
#include "softmax.cuh"

// grid: one block per image; each warp averages whole channels. Without the softmax the host
// passes `pooled` again as `probs` (never touched then), so probs is not __restrict__.
extern "C" __global__ void avgpool_softmax(const float* __restrict__ x, float* __restrict__ pooled,
                                           float* probs, int channels, int plane,
                                           int with_softmax, int groups, float temperature) {
    long long image = blockIdx.x;
    int lane = threadIdx.x % 32, warps = blockDim.x / 32;
    const float* src = x + image * channels * (long long)plane;
    float* logits = pooled + image * channels;
    for (int c = threadIdx.x / 32; c < channels; c += warps) {
        float sum = 0.f;
        for (int i = lane; i < plane; i += 32) sum += src[(long long)c * plane + i];
        sum = warp_sum(sum);
        if (lane == 0) logits[c] = sum / (float)plane;
    }
    if (!with_softmax) return;
    __syncthreads();  // makes this block's logits visible to all its threads
    softmax_block(logits, probs + image * channels, channels, groups, temperature);
}
