// Darknet's [upsample] (upsample_layer.c, blas.c upsample_cpu) over NHWC activations:
// a stride s > 0 repeats each input cell into an s x s block, times `scale`:
//     y[oy, ox, c] = scale * x[oy / s, ox / s, c]
// (Darknet's negative-stride, summing mode is refused by tdn's cfg parser.)
#include "storage.cuh"

// One thread per output value, channels fastest, in a grid-stride loop.
template <class T>
__device__ __forceinline__ void upsample_body(const T* __restrict__ x, T* __restrict__ y, int images, int channels,
                                              int height, int width, int stride, float scale) {
    const int out_h = height * stride, out_w = width * stride;
    long long total = (long long)images * out_h * out_w * channels;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int c = (int)(i % channels);
        long long cell = i / channels;
        int ox = (int)(cell % out_w), oy = (int)((cell / out_w) % out_h);
        long long image = cell / ((long long)out_w * out_h);
        long long from = ((image * height + oy / stride) * width + ox / stride) * channels + c;
        store(y, i, __fmul_rn(scale, load(x, from)));
    }
}

#define UPSAMPLE_PARAMS int images, int channels, int height, int width, int stride, float scale
#define UPSAMPLE_ARGS images, channels, height, width, stride, scale

extern "C" __global__ void upsample_f32(const float* x, float* y, UPSAMPLE_PARAMS) {
    upsample_body(x, y, UPSAMPLE_ARGS);
}

extern "C" __global__ void upsample_f16(const half16* x, half16* y, UPSAMPLE_PARAMS) {
    upsample_body(x, y, UPSAMPLE_ARGS);
}
