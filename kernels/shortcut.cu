// Darknet's [shortcut] (pjreddie's forward_shortcut_layer and shortcut_cpu): the output
// starts as the layer's input x; where the `from` layer's output f overlaps it, the value
// becomes alpha * x + beta * f (cfg alpha and beta, both 1 by default: a plain sum); then the
// activation applies to every value, overlapped or not.
//
// Shapes may differ. With x (C, H, W) and f (Cf, Hf, Wf) per image, stride = max(Wf / W, 1)
// and sample = max(W / Wf, 1): f is read every `stride` cells, x written every `sample`
// cells, over the first min(C, Cf) channels and min(H, Hf) x min(W, Wf) positions.
// The host (tdn.backends.cuda.kernels.shortcut_geometry) computes these numbers.
#include "activations.cuh"

// One thread per output value, in a grid-stride loop.
extern "C" __global__ void shortcut(const float* __restrict__ x, const float* __restrict__ f,
                                    float* __restrict__ y, int images, int channels, int height,
                                    int width, int f_channels, int f_height, int f_width,
                                    int stride, int sample, int min_c, int min_h, int min_w,
                                    float alpha, float beta, int activation) {
    long long plane = (long long)height * width, total = images * (long long)channels * plane;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int ox = (int)(i % width), oy = (int)((i / width) % height);
        int c = (int)((i / plane) % channels);
        long long image = i / (plane * channels);
        float v = x[i];
        int fy = oy / sample, fx = ox / sample;
        if (c < min_c && oy % sample == 0 && ox % sample == 0 && fy < min_h && fx < min_w) {
            long long from = ((image * f_channels + c) * f_height + (long long)fy * stride) * f_width
                             + (long long)fx * stride;
            // Rounded as Darknet's C does: two products, one sum (no fused multiply-add).
            v = __fadd_rn(__fmul_rn(alpha, v), __fmul_rn(beta, f[from]));
        }
        y[i] = activate(v, activation);
    }
}
