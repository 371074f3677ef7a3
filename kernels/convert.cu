// The network's input and output at the edge of the device: the backend contract's float32
// NCHW arrays and the device's NHWC activations (float, or fp16 in an fp16 network), and
// decoded 8-bit pixels turned into the input the way tdn.image.to_float does.
#include "storage.cuh"

// One thread per value, in a grid-stride loop, walking the written array in order.

// x (images, channels, plane) float32 -> y (images, plane, channels).
template <class T>
__device__ __forceinline__ void to_nhwc_body(const float* __restrict__ x, T* __restrict__ y, int images,
                                             int channels, int plane) {
    long long total = (long long)images * plane * channels;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int c = (int)(i % channels);
        long long cell = i / channels, image = cell / plane;
        store(y, i, x[(image * channels + c) * plane + cell % plane]);
    }
}

// x (images, plane, channels) -> y (images, channels, plane) float32.
template <class T>
__device__ __forceinline__ void to_nchw_body(const T* __restrict__ x, float* __restrict__ y, int images,
                                             int channels, int plane) {
    long long total = (long long)images * channels * plane;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int cell = (int)(i % plane);
        long long rest = i / plane, image = rest / channels;
        y[i] = load(x, (image * plane + cell) * channels + rest % channels);
    }
}

// Pixels (images, height, width, channels) uint8, already NHWC: y[i] = table[x[i]], the table
// holding Darknet's byte / 255 (computed in double, rounded to float) for each byte value.
template <class T>
__device__ __forceinline__ void pixels_body(const unsigned char* __restrict__ x, const float* __restrict__ table,
                                            T* __restrict__ y, long long total) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x)
        store(y, i, table[x[i]]);
}

#define LAYOUT_PARAMS int images, int channels, int plane

extern "C" __global__ void to_nhwc_f32(const float* x, float* y, LAYOUT_PARAMS) {
    to_nhwc_body(x, y, images, channels, plane);
}

extern "C" __global__ void to_nhwc_f16(const float* x, half16* y, LAYOUT_PARAMS) {
    to_nhwc_body(x, y, images, channels, plane);
}

extern "C" __global__ void to_nchw_f32(const float* x, float* y, LAYOUT_PARAMS) {
    to_nchw_body(x, y, images, channels, plane);
}

extern "C" __global__ void to_nchw_f16(const half16* x, float* y, LAYOUT_PARAMS) {
    to_nchw_body(x, y, images, channels, plane);
}

extern "C" __global__ void pixels_f32(const unsigned char* x, const float* table, float* y, int cells,
                                      int channels) {
    pixels_body(x, table, y, (long long)cells * channels);
}

extern "C" __global__ void pixels_f16(const unsigned char* x, const float* table, half16* y, int cells,
                                      int channels) {
    pixels_body(x, table, y, (long long)cells * channels);
}
