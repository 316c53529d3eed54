/*
 * Chorus and flanger: a fractional delay line (linear interpolation) whose delay
 * an LFO sweeps between delay_ms and delay_ms + depth_ms, with feedback and an
 * equal-power dry/wet mix.  The LFO is a parabolic sine (a smooth, exactly
 * reproducible curve); the right channel runs a quarter period ahead.
 * Twin: dsp_core/reference_modulation.py.
 */
#include "internal.h"

/* A sine-like LFO of phase p in [0, 1): two parabolas, peaks at +-1. */
static inline float lfo_shape(float p) {
    const float t = 2.0f * p - 1.0f;
    return (4.0f * t) * (1.0f - fabsf(t));
}

INTERNAL void modulation_coefficients(float *slots, double sr) {
    const float *v = slots + DAW_SLOT_VALUE;
    float *c = slots + DAW_SLOT_COEF;
    const double mix = v[3];
    c[0] = (float)((double)v[0] / sr);
    c[1] = (float)((double)v[4] * 1e-3 * sr);
    c[2] = (float)((double)v[1] * 1e-3 * sr * 0.5);
    c[3] = v[2];
    c[4] = (float)cos(mix * M_PI / 2.0);
    c[5] = (float)sin(mix * M_PI / 2.0);
}

/* One channel from write index w and LFO phase p; returns the phase after n frames. */
static float modulation_channel(daw_effect *fx, float *restrict x, int32_t channel, int32_t n,
                                int64_t w, float p) {
    const float *c = fx->slots + DAW_SLOT_COEF;
    const float inc = c[0], base = c[1], depth = c[2], feedback = c[3], dry = c[4], wetg = c[5];
    const int64_t len = fx->memory_len;
    float *restrict ring = fx->memory + channel * len;
    const float most = (float)(len - 2);
    for (int32_t i = 0; i < n; i++) {
        float d = base + depth * (1.0f + lfo_shape(p));
        d = d < 1.0f ? 1.0f : (d > most ? most : d);
        const int64_t whole = (int64_t)d;
        const float frac = d - (float)whole;
        int64_t r0 = w - whole;
        if (r0 < 0) r0 += len;
        int64_t r1 = r0 - 1;
        if (r1 < 0) r1 += len;
        const float wet = ring[r0] * (1.0f - frac) + ring[r1] * frac;
        const float in = x[i];
        ring[w] = in + feedback * wet;
        x[i] = in * dry + wet * wetg;
        w = w + 1 == len ? 0 : w + 1;
        p += inc;
        if (p >= 1.0f) p -= 1.0f;
    }
    return p;
}

INTERNAL void modulation_run(daw_effect *fx, float *x0, float *x1, int32_t n) {
    float *mem = fx->slots + DAW_SLOT_MEM;
    const int64_t w = (int64_t)mem[0];
    const float p = mem[1];
    const float p_next = modulation_channel(fx, x0, 0, n, w, p);
    if (x1) {
        float p1 = p + MOD_LFO_STEREO_OFFSET;
        if (p1 >= 1.0f) p1 -= 1.0f;
        modulation_channel(fx, x1, 1, n, w, p1);
    }
    mem[0] = (float)((w + n) % fx->memory_len);
    mem[1] = p_next;
}
