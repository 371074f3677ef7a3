// Darknet's softmax of one image's `total` values in `groups` equal parts, done by one block:
// out = exp(x/t - max/t) / sum. blockDim.x must be a multiple of 32, at most 1024.
#pragma once
#include "reduce.cuh"

__device__ void softmax_block(const float* x, float* y, int total, int groups, float temperature) {
    __shared__ float scratch[32];
    int size = total / groups;
    for (int g = 0; g < groups; ++g) {
        const float* in = x + g * size;
        float* out = y + g * size;
        float largest = __int_as_float(0xff800000);
        for (int i = threadIdx.x; i < size; i += blockDim.x) largest = fmaxf(largest, in[i]);
        largest = block_reduce(largest, true, scratch);
        float sum = 0.f;
        for (int i = threadIdx.x; i < size; i += blockDim.x) {
            float e = expf(in[i] / temperature - largest / temperature);
            out[i] = e;
            sum += e;
        }
        sum = block_reduce(sum, false, scratch);
        for (int i = threadIdx.x; i < size; i += blockDim.x) out[i] /= sum;
    }
}
