// Darknet's [upsample] (upsample_layer.c, blas.c upsample_cpu), per (image, channel) plane:
// a stride s > 0 repeats each input cell into an s x s block, times `scale`:
//     y[oy, ox] = scale * x[oy / s, ox / s]
// (Darknet's negative-stride, summing mode is refused by tdn's cfg parser.)

// One thread per output value, in a grid-stride loop.
extern "C" __global__ void upsample(const float* __restrict__ x, float* __restrict__ y, int planes,
                                    int height, int width, int out_h, int out_w, int stride, float scale) {
    long long total = (long long)planes * out_h * out_w;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int ox = (int)(i % out_w), oy = (int)((i / out_w) % out_h);
        const float* src = x + (i / ((long long)out_w * out_h)) * height * width;
        y[i] = __fmul_rn(scale, src[(oy / stride) * width + ox / stride]);
    }
}
