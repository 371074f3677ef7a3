// Darknet's [crop] layer at inference (crop_layer.c forward_crop_layer with train = 0): the
// centred out_h x out_w window of each image, at offsets dy = (H - out_h) / 2 and
// dx = (W - out_w) / 2, mapped to y = x * scale + trans (2 and -1, or 1 and 0 with noadjust).
// NHWC: the window's cells keep all their channels.
#include "storage.cuh"

// One thread per output value, channels fastest, in a grid-stride loop.
template <class T>
__device__ __forceinline__ void crop_body(const T* __restrict__ x, T* __restrict__ y, int images, int channels,
                                          int height, int width, int out_h, int out_w, float scale, float trans) {
    long long total = (long long)images * out_h * out_w * channels;
    const int dy = (height - out_h) / 2, dx = (width - out_w) / 2;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int c = (int)(i % channels);
        long long cell = i / channels;
        int ox = (int)(cell % out_w), oy = (int)((cell / out_w) % out_h);
        long long image = cell / ((long long)out_w * out_h);
        float v = load(x, ((image * height + oy + dy) * width + ox + dx) * channels + c);
        store(y, i, __fadd_rn(__fmul_rn(v, scale), trans));  // rounded twice, as Darknet's C
    }
}

#define CROP_PARAMS int images, int channels, int height, int width, int out_h, int out_w, float scale, \
    float trans
#define CROP_ARGS images, channels, height, width, out_h, out_w, scale, trans

extern "C" __global__ void crop_f32(const float* x, float* y, CROP_PARAMS) { crop_body(x, y, CROP_ARGS); }

extern "C" __global__ void crop_f16(const half16* x, half16* y, CROP_PARAMS) { crop_body(x, y, CROP_ARGS); }
