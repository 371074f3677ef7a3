// Darknet's softmax of one image's `total` values in `groups` equal parts, done by one block:
// out = exp(x/t - max/t) / sum. blockDim.x must be a multiple of 32, at most 1024.
#pragma once

__device__ __forceinline__ float warp_max(float v) {
    for (int step = 16; step > 0; step /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, step));
    return v;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int step = 16; step > 0; step /= 2) v += __shfl_xor_sync(0xffffffffu, v, step);
    return v;
}

// Every thread gets the block-wide result; `scratch` holds one float per warp.
__device__ __forceinline__ float block_reduce(float v, bool is_max, float* scratch) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = is_max ? warp_max(v) : warp_sum(v);
    __syncthreads();  // scratch may still be read by the previous reduction
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float identity = is_max ? __int_as_float(0xff800000) : 0.f;
    v = lane < warps ? scratch[lane] : identity;
    return is_max ? warp_max(v) : warp_sum(v);
}

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
