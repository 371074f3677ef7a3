// Softmax over each image's values in Darknet's CHW order (a softmax not fed by a global
// average pool); x (N, H, W, C), y (N, 1, 1, C*H*W).
#include "softmax.cuh"

// grid: one block per image.
#define SOFTMAX_PARAMS int channels, int plane, int groups, float temperature

extern "C" __global__ void softmax_f32(const float* __restrict__ x, float* __restrict__ y, SOFTMAX_PARAMS) {
    long long image = blockIdx.x, total = (long long)channels * plane;
    softmax_block(x + image * total, y + image * total, channels, plane, groups, temperature);
}

extern "C" __global__ void softmax_f16(const half16* __restrict__ x, half16* __restrict__ y, SOFTMAX_PARAMS) {
    long long image = blockIdx.x, total = (long long)channels * plane;
    softmax_block(x + image * total, y + image * total, channels, plane, groups, temperature);
}
