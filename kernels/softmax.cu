// Softmax over each image's flattened input (a softmax not fed by a global average pool).
#include "softmax.cuh"

// grid: one block per image.
extern "C" __global__ void softmax(const float* __restrict__ x, float* __restrict__ y,
                                   int total, int groups, float temperature) {
    long long image = blockIdx.x;
    softmax_block(x + image * total, y + image * total, total, groups, temperature);
}
