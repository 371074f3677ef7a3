// Darknet's [crop] layer at inference (crop_layer.c forward_crop_layer with train = 0): the
// centred out_h x out_w window of each plane, at offsets dy = (H - out_h) / 2 and
// dx = (W - out_w) / 2, mapped to y = x * scale + trans (2 and -1, or 1 and 0 with noadjust).

// One thread per output value, in a grid-stride loop.
extern "C" __global__ void crop(const float* __restrict__ x, float* __restrict__ y, int planes,
                                int height, int width, int out_h, int out_w, float scale, float trans) {
    long long total = (long long)planes * out_h * out_w;
    const int dy = (height - out_h) / 2, dx = (width - out_w) / 2;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int ox = (int)(i % out_w), oy = (int)((i / out_w) % out_h);
        long long plane = i / ((long long)out_w * out_h);
        float v = x[(plane * height + oy + dy) * width + ox + dx];
        y[i] = __fadd_rn(__fmul_rn(v, scale), trans);  // rounded twice, as Darknet's C
    }
}
