// Darknet's standalone [batchnorm] layer at inference, folded by tdn into one scale and one
// shift per channel: y = x * scale[c] + shift[c], over NHWC values (channels fastest).
#include "storage.cuh"

// One thread per value, in a grid-stride loop.
template <class T>
__device__ __forceinline__ void batchnorm_body(const T* __restrict__ x, const float* __restrict__ scale,
                                               const float* __restrict__ shift, T* __restrict__ y,
                                               long long total, int channels) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int c = (int)(i % channels);
        // A product and a sum, each rounded, like NumPy's x * scale + shift.
        store(y, i, __fadd_rn(__fmul_rn(load(x, i), scale[c]), shift[c]));
    }
}

extern "C" __global__ void batchnorm_f32(const float* x, const float* scale, const float* shift, float* y,
                                         int cells, int channels) {
    batchnorm_body(x, scale, shift, y, (long long)cells * channels, channels);
}

extern "C" __global__ void batchnorm_f16(const half16* x, const float* scale, const float* shift, half16* y,
                                         int cells, int channels) {
    batchnorm_body(x, scale, shift, y, (long long)cells * channels, channels);
}
