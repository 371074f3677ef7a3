// Darknet's softmax of one image's `total` values in `groups` equal parts, done by one block:
// out = exp(x/t - max/t) / sum. blockDim.x must be a multiple of 32, at most 1024.
//
// Darknet numbers the values in CHW order; the input is stored NHWC, so value j (channel
// j / plane, cell j % plane) is read at (j % plane) * channels + j / plane. The output is
// (total, 1, 1): value j at j in either order.
#pragma once
#include "reduce.cuh"
#include "storage.cuh"

template <class In, class Out>
__device__ void softmax_block(const In* x, Out* y, int channels, int plane, int groups, float temperature) {
    __shared__ float scratch[32];
    int total = channels * plane, size = total / groups;
    for (int g = 0; g < groups; ++g) {
        float largest = __int_as_float(0xff800000);
        for (int j = g * size + threadIdx.x; j < (g + 1) * size; j += blockDim.x)
            largest = fmaxf(largest, load(x, (long long)(j % plane) * channels + j / plane));
        largest = block_reduce(largest, true, scratch);
        float sum = 0.f;
        for (int j = g * size + threadIdx.x; j < (g + 1) * size; j += blockDim.x)
            sum += expf(load(x, (long long)(j % plane) * channels + j / plane) / temperature
                        - largest / temperature);
        sum = block_reduce(sum, false, scratch);
        // The exponential again rather than a stored one: an fp16 output is then rounded once.
        for (int j = g * size + threadIdx.x; j < (g + 1) * size; j += blockDim.x)
            store(y, j, expf(load(x, (long long)(j % plane) * channels + j / plane) / temperature
                             - largest / temperature) / sum);
    }
}
