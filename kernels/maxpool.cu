// Darknet's max pool: window (oy*stride + offset, ox*stride + offset), size x size;
// cells outside the input are skipped, so they never win the max; a window holding none gives
// -FLT_MAX, Darknet's starting value.
extern "C" __global__ void maxpool(const float* __restrict__ x, float* __restrict__ y,
                                   int planes, int height, int width, int out_h, int out_w,
                                   int size, int stride, int offset) {
    long long total = (long long)planes * out_h * out_w;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int ox = (int)(i % out_w);
        int oy = (int)((i / out_w) % out_h);
        long long plane = i / ((long long)out_w * out_h);
        const float* src = x + plane * height * width;
        float best = -3.402823466e+38f;  // -FLT_MAX
        for (int ky = 0; ky < size; ++ky) {
            int iy = oy * stride + offset + ky;
            if (iy < 0 || iy >= height) continue;
            for (int kx = 0; kx < size; ++kx) {
                int ix = ox * stride + offset + kx;
                if (ix < 0 || ix >= width) continue;
                best = fmaxf(best, src[iy * width + ix]);
            }
        }
        y[i] = best;
    }
}
