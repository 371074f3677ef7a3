// Darknet's 14 activations (activations.h), applied in kernel epilogues.
// The ids are the positions in tdn.activations.ACTIVATIONS; a CPU test checks the two agree.
#pragma once

enum Activation {
    ACT_LINEAR = 0,
    ACT_LEAKY = 1,
    ACT_RELU = 2,
    ACT_LOGISTIC = 3,
    ACT_TANH = 4,
    ACT_ELU = 5,
    ACT_SELU = 6,
    ACT_RELIE = 7,
    ACT_RAMP = 8,
    ACT_PLSE = 9,
    ACT_STAIR = 10,
    ACT_HARDTAN = 11,
    ACT_LHTAN = 12,
    ACT_LOGGY = 13,
};

__device__ __forceinline__ float activate(float x, int act) {
    switch (act) {
    case ACT_LEAKY: return x > 0.f ? x : 0.1f * x;
    case ACT_RELU: return fmaxf(x, 0.f);
    case ACT_LOGISTIC: return 1.f / (1.f + expf(-x));
    case ACT_TANH: return tanhf(x);
    case ACT_ELU: return x >= 0.f ? x : expm1f(x);
    case ACT_SELU: return x >= 0.f ? 1.0507f * x : 1.0507f * 1.6732f * expm1f(x);
    case ACT_RELIE: return x > 0.f ? x : 0.01f * x;
    case ACT_RAMP: return fmaxf(x, 0.f) + 0.1f * x;
    case ACT_PLSE:
        if (x < -4.f) return 0.01f * (x + 4.f);
        if (x > 4.f) return 0.01f * (x - 4.f) + 1.f;
        return 0.125f * x + 0.5f;
    case ACT_STAIR: {
        float n = floorf(x), half = floorf(x / 2.f);
        return fmodf(n, 2.f) == 0.f ? half : (x - n) + half;
    }
    case ACT_HARDTAN: return fminf(fmaxf(x, -1.f), 1.f);
    case ACT_LHTAN:
        if (x < 0.f) return 0.001f * x;
        if (x > 1.f) return 0.001f * (x - 1.f) + 1.f;
        return x;
    case ACT_LOGGY: return 2.f / (1.f + expf(-x)) - 1.f;
    default: return x;  // ACT_LINEAR
    }
}
