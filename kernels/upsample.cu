// Darknet's [upsample] (upsample_layer.c, blas.c upsample_cpu), per (image, channel) plane:
// stride s > 0 repeats each input cell into an s x s block, times `scale`:
//     y[oy, ox] = scale * x[oy / s, ox / s]
// and a negative stride in the cfg (here reverse = 1, stride = its magnitude) sums each
// s x s block instead, each term scaled, in Darknet's row-major order:
//     y[oy, ox] = sum over dy, dx < s of scale * x[oy * s + dy, ox * s + dx]

// One thread per output value, in a grid-stride loop.
extern "C" __global__ void upsample(const float* __restrict__ x, float* __restrict__ y, int planes,
                                    int height, int width, int out_h, int out_w, int stride,
                                    int reverse, float scale) {
    long long total = (long long)planes * out_h * out_w;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int ox = (int)(i % out_w), oy = (int)((i / out_w) % out_h);
        const float* src = x + (i / ((long long)out_w * out_h)) * height * width;
        float v;
        if (!reverse) {
            v = __fmul_rn(scale, src[(oy / stride) * width + ox / stride]);
        } else {
            v = 0.f;
            for (int dy = 0; dy < stride; ++dy)
                for (int dx = 0; dx < stride; ++dx)
                    v = __fadd_rn(v, __fmul_rn(scale, src[(oy * stride + dy) * width + ox * stride + dx]));
        }
        y[i] = v;
    }
}
