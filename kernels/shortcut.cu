// Darknet's [shortcut] (pjreddie's forward_shortcut_layer and shortcut_cpu): the output
// starts as the layer's input x; where the `from` layer's output f overlaps it, the value
// becomes alpha * x + beta * f (cfg alpha and beta, both 1 by default: a plain sum); then the
// activation applies to every value, overlapped or not.
//
// Shapes may differ. With x (H, W, C) and f (Hf, Wf, Cf) per image (NHWC), stride = max(Wf / W, 1)
// and sample = max(W / Wf, 1): f is read every `stride` cells, x written every `sample`
// cells, over the first min(C, Cf) channels and min(H, Hf) x min(W, Wf) positions.
// The host (tdn.layers.shortcut.Shortcut.overlap) computes these numbers.
#include "activations.cuh"
#include "storage.cuh"

// One thread per output value, channels fastest, in a grid-stride loop.
template <class T>
__device__ __forceinline__ void shortcut_body(const T* __restrict__ x, const T* __restrict__ f, T* __restrict__ y,
                                              int images, int channels, int height, int width, int f_channels,
                                              int f_height, int f_width, int stride, int sample, int min_c,
                                              int min_h, int min_w, float alpha, float beta, int activation) {
    long long total = (long long)images * height * width * channels;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int c = (int)(i % channels);
        long long cell = i / channels;
        int ox = (int)(cell % width), oy = (int)((cell / width) % height);
        long long image = cell / ((long long)width * height);
        float v = load(x, i);
        int fy = oy / sample, fx = ox / sample;
        if (c < min_c && oy % sample == 0 && ox % sample == 0 && fy < min_h && fx < min_w) {
            long long from = ((image * f_height + (long long)fy * stride) * f_width + (long long)fx * stride)
                             * f_channels + c;
            // Rounded as Darknet's C does: two products, one sum (no fused multiply-add).
            v = __fadd_rn(__fmul_rn(alpha, v), __fmul_rn(beta, load(f, from)));
        }
        store(y, i, activate(v, activation));
    }
}

#define SHORTCUT_PARAMS int images, int channels, int height, int width, int f_channels, int f_height, \
    int f_width, int stride, int sample, int min_c, int min_h, int min_w, float alpha, float beta, int activation
#define SHORTCUT_ARGS images, channels, height, width, f_channels, f_height, f_width, stride, sample, min_c, \
    min_h, min_w, alpha, beta, activation

extern "C" __global__ void shortcut_f32(const float* x, const float* f, float* y, SHORTCUT_PARAMS) {
    shortcut_body(x, f, y, SHORTCUT_ARGS);
}

extern "C" __global__ void shortcut_f16(const half16* x, const half16* f, half16* y, SHORTCUT_PARAMS) {
    shortcut_body(x, f, y, SHORTCUT_ARGS);
}
