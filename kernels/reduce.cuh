// Warp- and block-wide reductions over float32, shared by the kernels that sum or take maxima.
#pragma once

__device__ __forceinline__ float warp_max(float v) {
    for (int step = 16; step > 0; step /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, step));
    return v;
}

// Every lane gets the sum of the 32 lanes' values.
__device__ __forceinline__ float warp_sum(float v) {
    for (int step = 16; step > 0; step /= 2) v += __shfl_xor_sync(0xffffffffu, v, step);
    return v;
}

// Every thread gets the block-wide result; `scratch` holds one float per warp.
// blockDim.x must be a multiple of 32, at most 1024.
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
