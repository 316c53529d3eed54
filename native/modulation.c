/*
 * Chorus and flanger: a fractional delay line (linear interpolation) whose delay
 * an LFO sweeps between delay_ms and delay_ms + depth_ms, with feedback and an
 * equal-power dry/wet mix.  The LFO is a parabolic sine (a smooth, exactly
 * reproducible curve); the right channel runs a quarter period ahead.
 *
 * Phaser: PHASER_STAGES first-order allpasses in series with feedback around them,
 * mixed with the dry signal.  Their break frequency, center_hz * 2^(2 depth lfo),
 * follows the same LFO, updated once per control tick (in double precision).
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

/* Allpass coefficient of break frequency center * 2^(octaves * lfo(p)). */
static float phaser_allpass(float p, double center, double octaves, double sr) {
    double f = center * pow(2.0, octaves * (double)lfo_shape(p));
    if (f > 0.45 * sr) f = 0.45 * sr;
    const double t = tan(M_PI * f / sr);
    return (float)((t - 1.0) / (t + 1.0));
}

static void phaser_sweep(float *slots, double sr) {
    const float *v = slots + DAW_SLOT_VALUE;
    float *c = slots + DAW_SLOT_COEF;
    const float p = slots[DAW_SLOT_MEM + 2 * (PHASER_STAGES + 1)];
    float p1 = p + MOD_LFO_STEREO_OFFSET;
    if (p1 >= 1.0f) p1 -= 1.0f;
    const double octaves = PHASER_SWEEP_OCTAVES * (double)v[1];
    c[4] = phaser_allpass(p, v[2], octaves, sr);
    c[5] = phaser_allpass(p1, v[2], octaves, sr);
}

INTERNAL void phaser_coefficients(float *slots, double sr) {
    const float *v = slots + DAW_SLOT_VALUE;
    float *c = slots + DAW_SLOT_COEF;
    c[0] = (float)((double)v[0] * DAW_TICK / sr);
    c[1] = v[3];
    c[2] = 1.0f - v[4];
    c[3] = v[4];
    phaser_sweep(slots, sr);
}

/* Memory: per channel PHASER_STAGES allpass states and the last output (for the
 * feedback), then the LFO phase. */
INTERNAL void phaser_run(float *slots, float *restrict x0, float *restrict x1, int32_t n,
                         double sr, int32_t ph) {
    float *mem = slots + DAW_SLOT_MEM;
    const float *c = slots + DAW_SLOT_COEF;
    const float inc = c[0], feedback = c[1], dry = c[2], wet = c[3];
    float *phase = mem + 2 * (PHASER_STAGES + 1);
    int32_t i = 0;
    while (i < n) {
        if (((ph + i) & (DAW_TICK - 1)) == 0) {
            float p = *phase + inc;
            if (p >= 1.0f) p -= 1.0f;
            *phase = p;
            phaser_sweep(slots, sr);
        }
        const int32_t end = min_i32(n, i + DAW_TICK - ((ph + i) & (DAW_TICK - 1)));
        for (int ch = 0; ch < (x1 ? 2 : 1); ch++) {
            float *restrict x = ch ? x1 : x0;
            float *st = mem + ch * (PHASER_STAGES + 1);
            const float a = c[4 + ch];
            float last = st[PHASER_STAGES];
            for (int32_t k = i; k < end; k++) {
                float v = x[k] + feedback * last;
                for (int s = 0; s < PHASER_STAGES; s++) {
                    const float y = a * v + st[s];
                    st[s] = v - a * y;
                    v = y;
                }
                last = v;
                x[k] = x[k] * dry + v * wet;
            }
            st[PHASER_STAGES] = last;
        }
        i = end;
    }
}
