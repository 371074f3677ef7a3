// Darknet's max pool over NHWC activations: window (oy*stride + offset, ox*stride + offset),
// size x size; cells outside the input are skipped, so they never win the max; a window holding
// none gives -FLT_MAX, Darknet's starting value.
#include "storage.cuh"

// One thread per output value, channels fastest (consecutive threads read consecutive
// channels of a cell: coalesced), in a grid-stride loop.
template <class T>
__device__ __forceinline__ void maxpool_body(const T* __restrict__ x, T* __restrict__ y, int images,
                                             int channels, int height, int width, int out_h, int out_w,
                                             int size, int stride, int offset) {
    long long total = (long long)images * out_h * out_w * channels;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int c = (int)(i % channels);
        long long cell = i / channels;
        int ox = (int)(cell % out_w), oy = (int)((cell / out_w) % out_h);
        long long image = cell / ((long long)out_w * out_h);
        const T* src = x + image * height * width * channels + c;
        float best = -3.402823466e+38f;  // -FLT_MAX
        for (int ky = 0; ky < size; ++ky) {
            int iy = oy * stride + offset + ky;
            if (iy < 0 || iy >= height) continue;
            for (int kx = 0; kx < size; ++kx) {
                int ix = ox * stride + offset + kx;
                if (ix < 0 || ix >= width) continue;
                best = fmaxf(best, load(src, ((long long)iy * width + ix) * channels));
            }
        }
        store(y, i, best);
    }
}

#define MAXPOOL_PARAMS int images, int channels, int height, int width, int out_h, int out_w, int size, \
    int stride, int offset
#define MAXPOOL_ARGS images, channels, height, width, out_h, out_w, size, stride, offset

extern "C" __global__ void maxpool_f32(const float* x, float* y, MAXPOOL_PARAMS) {
    maxpool_body(x, y, MAXPOOL_ARGS);
}

extern "C" __global__ void maxpool_f16(const half16* x, half16* y, MAXPOOL_PARAMS) {
    maxpool_body(x, y, MAXPOOL_ARGS);
}
