/*
 * Max Booster Studio mixing engine (float32).  See engine.h for the API and
 * dsp_core/reference.py for the numpy twin of every function here: the two
 * must stay operation-for-operation alike.
 */
#include "engine.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FTZ_BEGIN                          \
    unsigned int saved_csr = _mm_getcsr(); \
    _mm_setcsr(saved_csr | 0x8040u)
#define FTZ_END _mm_setcsr(saved_csr)
#else
#define FTZ_BEGIN \
    do {          \
    } while (0)
#define FTZ_END \
    do {        \
    } while (0)
#endif

#define SMOOTH_SECONDS 0.01
#define GAIN_EPS 1e-6f
#define LOG2_TO_DB 6.020599913f   /* 20 * log10(2) */
#define DB_TO_LOG2 0.166096405f   /* log2(10) / 20 */

static inline int32_t min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---------------------------------------------------------------- math */

typedef union {
    float f;
    int32_t i;
} float_bits;

static inline float fast_log2(float x) {
    /* x > 0.  Split into exponent and mantissa in [1, 2), polynomial on m - 1
     * (least-squares fit, |error| < 3e-6). */
    float_bits b;
    b.f = x;
    float e = (float)(((b.i >> 23) & 255) - 127);
    b.i = (b.i & 0x007FFFFF) | 0x3F800000;
    float m = b.f - 1.0f;
    float p = -0.025790712f;
    p = p * m + 0.121468526f;
    p = p * m + -0.277337223f;
    p = p * m + 0.457156131f;
    p = p * m + -0.718033203f;
    p = p * m + 1.44253476f;
    return e + p * m;
}

static inline float fast_exp2(float x) {
    /* 2**floor(x) through the exponent bits times a polynomial of the
     * fraction (relative error < 1e-7 on [0, 1)). */
    if (x < -126.0f) x = -126.0f;
    if (x > 126.0f) x = 126.0f;
    float fl = floorf(x);
    float f = x - fl;
    float p = 0.00187623429f;
    p = p * f + 0.00899259431f;
    p = p * f + 0.0558235814f;
    p = p * f + 0.240154545f;
    p = p * f + 0.693152965f;
    p = p * f + 0.999999927f;
    float_bits b;
    b.f = p;
    b.i += ((int32_t)fl) << 23;
    return b.f;
}

float daw_log2(float x) { return fast_log2(x); }

float daw_exp2(float x) { return fast_exp2(x); }

static inline float smooth_toward(float value, float target, float alpha, float eps) {
    float next = value + (target - value) * alpha;
    if (fabsf(target - next) <= eps) next = target;
    return next;
}

static inline float tick_alpha(double sample_rate) {
    return (float)(1.0 - exp(-(double)DAW_TICK / (SMOOTH_SECONDS * sample_rate)));
}

static inline float param_eps(float target) {
    float a = fabsf(target);
    return 1e-4f * (a > 1.0f ? a : 1.0f);
}

/* ---------------------------------------------------------------- plain mix */

int daw_mix(const float *tracks, int64_t n_tracks, int64_t n_frames,
            const float *gains, const float *pans, float *out_l, float *out_r) {
    if (!tracks || !gains || !pans || !out_l || !out_r) return DAW_ERR_NULL;
    if (n_tracks < 0 || n_frames < 0) return DAW_ERR_FRAMES;
    FTZ_BEGIN;
    enum { CHUNK = 2048 };
    memset(out_l, 0, (size_t)n_frames * sizeof(float));
    memset(out_r, 0, (size_t)n_frames * sizeof(float));
    for (int64_t f0 = 0; f0 < n_frames; f0 += CHUNK) {
        const int64_t n = min_i64(CHUNK, n_frames - f0);
        float *restrict l = out_l + f0;
        float *restrict r = out_r + f0;
        int64_t t = 0;
        for (; t + 4 <= n_tracks; t += 4) {
            float gl[4], gr[4];
            for (int k = 0; k < 4; k++) {
                double p = pans[t + k] < -1.0f ? -1.0 : (pans[t + k] > 1.0f ? 1.0 : pans[t + k]);
                double angle = (p + 1.0) * M_PI / 4.0;
                gl[k] = (float)((double)gains[t + k] * cos(angle));
                gr[k] = (float)((double)gains[t + k] * sin(angle));
            }
            const float *restrict x0 = tracks + (t + 0) * n_frames + f0;
            const float *restrict x1 = tracks + (t + 1) * n_frames + f0;
            const float *restrict x2 = tracks + (t + 2) * n_frames + f0;
            const float *restrict x3 = tracks + (t + 3) * n_frames + f0;
            for (int64_t i = 0; i < n; i++) {
                l[i] += gl[0] * x0[i] + gl[1] * x1[i] + gl[2] * x2[i] + gl[3] * x3[i];
                r[i] += gr[0] * x0[i] + gr[1] * x1[i] + gr[2] * x2[i] + gr[3] * x3[i];
            }
        }
        for (; t < n_tracks; t++) {
            double p = pans[t] < -1.0f ? -1.0 : (pans[t] > 1.0f ? 1.0 : pans[t]);
            double angle = (p + 1.0) * M_PI / 4.0;
            const float g0 = (float)((double)gains[t] * cos(angle));
            const float g1 = (float)((double)gains[t] * sin(angle));
            const float *restrict x = tracks + t * n_frames + f0;
            for (int64_t i = 0; i < n; i++) {
                l[i] += g0 * x[i];
                r[i] += g1 * x[i];
            }
        }
    }
    FTZ_END;
    return DAW_OK;
}

/* ---------------------------------------------------------------- faders */

/* dst_l += gain_l(t) * src_l, dst_r += gain_r(t) * src_r, gains smoothed per
 * tick and interpolated linearly inside a tick. */
static void fader_apply(float *fader, const float *src_l, const float *src_r,
                        float *restrict dst_l, float *restrict dst_r, int32_t frames,
                        int32_t phase, float alpha) {
    float *start = fader + DAW_FADER_START;
    float *end = fader + DAW_FADER_END;
    const float *target = fader + DAW_FADER_TARGET;
    if (start[0] == end[0] && start[1] == end[1] && end[0] == target[0] &&
        end[1] == target[1]) {
        const float gl = end[0], gr = end[1];
        if (gl != 0.0f)
            for (int32_t i = 0; i < frames; i++) dst_l[i] += gl * src_l[i];
        if (gr != 0.0f)
            for (int32_t i = 0; i < frames; i++) dst_r[i] += gr * src_r[i];
        return;
    }
    int32_t pos = 0, ph = phase;
    while (pos < frames) {
        if (ph == 0) {
            for (int c = 0; c < 2; c++) {
                start[c] = end[c];
                end[c] = smooth_toward(end[c], target[c], alpha, GAIN_EPS);
            }
        }
        const int32_t n = min_i32(frames - pos, DAW_TICK - ph);
        const float sl = start[0], dl = end[0] - start[0];
        const float sr = start[1], dr = end[1] - start[1];
        for (int32_t i = 0; i < n; i++) {
            const float t = (float)(ph + i + 1) * (1.0f / DAW_TICK);
            dst_l[pos + i] += (sl + dl * t) * src_l[pos + i];
            dst_r[pos + i] += (sr + dr * t) * src_r[pos + i];
        }
        pos += n;
        ph = (ph + n) & (DAW_TICK - 1);
    }
}

/* ---------------------------------------------------------------- effects */

static void biquad_coefficients(float *slots, double sr) {
    const int shape = (int)slots[DAW_SLOT_TARGET + 0];
    double freq = slots[DAW_SLOT_VALUE + 1];
    const double q = slots[DAW_SLOT_VALUE + 2] > 1e-3f ? slots[DAW_SLOT_VALUE + 2] : 1e-3;
    const double gain_db = slots[DAW_SLOT_VALUE + 3];
    if (freq < 1.0) freq = 1.0;
    if (freq > 0.49 * sr) freq = 0.49 * sr;
    const double w0 = 2.0 * M_PI * freq / sr;
    const double cw = cos(w0), sw = sin(w0);
    const double alpha = sw / (2.0 * q);
    const double a = pow(10.0, gain_db / 40.0);
    double b0, b1, b2, a0, a1, a2;
    switch (shape) {
    case DAW_BQ_LOWPASS:
        b0 = (1.0 - cw) / 2.0; b1 = 1.0 - cw; b2 = b0;
        a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
        break;
    case DAW_BQ_HIGHPASS:
        b0 = (1.0 + cw) / 2.0; b1 = -(1.0 + cw); b2 = b0;
        a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
        break;
    case DAW_BQ_PEAKING:
        b0 = 1.0 + alpha * a; b1 = -2.0 * cw; b2 = 1.0 - alpha * a;
        a0 = 1.0 + alpha / a; a1 = -2.0 * cw; a2 = 1.0 - alpha / a;
        break;
    case DAW_BQ_LOWSHELF: {
        const double k = 2.0 * sqrt(a) * alpha;
        b0 = a * ((a + 1.0) - (a - 1.0) * cw + k);
        b1 = 2.0 * a * ((a - 1.0) - (a + 1.0) * cw);
        b2 = a * ((a + 1.0) - (a - 1.0) * cw - k);
        a0 = (a + 1.0) + (a - 1.0) * cw + k;
        a1 = -2.0 * ((a - 1.0) + (a + 1.0) * cw);
        a2 = (a + 1.0) + (a - 1.0) * cw - k;
        break;
    }
    default: { /* DAW_BQ_HIGHSHELF */
        const double k = 2.0 * sqrt(a) * alpha;
        b0 = a * ((a + 1.0) + (a - 1.0) * cw + k);
        b1 = -2.0 * a * ((a - 1.0) + (a + 1.0) * cw);
        b2 = a * ((a + 1.0) + (a - 1.0) * cw - k);
        a0 = (a + 1.0) - (a - 1.0) * cw + k;
        a1 = 2.0 * ((a - 1.0) - (a + 1.0) * cw);
        a2 = (a + 1.0) - (a - 1.0) * cw - k;
        break;
    }
    }
    float *c = slots + DAW_SLOT_COEF;
    c[0] = (float)(b0 / a0);
    c[1] = (float)(b1 / a0);
    c[2] = (float)(b2 / a0);
    c[3] = (float)(a1 / a0);
    c[4] = (float)(a2 / a0);
}

/* Transposed direct form II, the same operation order as scipy's lfilter. */
static void biquad_run(const float *c, float *mem, float *restrict x, int32_t n) {
    const float b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[3], a2 = c[4];
    float z0 = mem[0], z1 = mem[1];
    for (int32_t i = 0; i < n; i++) {
        const float in = x[i];
        const float y = b0 * in + z0;
        z0 = b1 * in + z1 - a1 * y;
        z1 = b2 * in - a2 * y;
        x[i] = y;
    }
    mem[0] = z0;
    mem[1] = z1;
}

/* Up to four settled biquads on one channel in a single pass: the stages'
 * recursions are independent from sample to sample, so the CPU overlaps them.
 * Each stage does exactly what biquad_run does, in the same order. */
static inline void biquad_cascade(daw_effect *const *fx, const int count, int mem_offset,
                                  float *restrict x, int32_t n) {
    float b0[4], b1[4], b2[4], a1[4], a2[4], z0[4], z1[4];
    for (int s = 0; s < count; s++) {
        const float *c = fx[s]->slots + DAW_SLOT_COEF;
        b0[s] = c[0]; b1[s] = c[1]; b2[s] = c[2]; a1[s] = c[3]; a2[s] = c[4];
        z0[s] = fx[s]->slots[DAW_SLOT_MEM + mem_offset];
        z1[s] = fx[s]->slots[DAW_SLOT_MEM + mem_offset + 1];
    }
    for (int32_t i = 0; i < n; i++) {
        float v = x[i];
        for (int s = 0; s < count; s++) {
            const float y = b0[s] * v + z0[s];
            z0[s] = b1[s] * v + z1[s] - a1[s] * y;
            z1[s] = b2[s] * v - a2[s] * y;
            v = y;
        }
        x[i] = v;
    }
    for (int s = 0; s < count; s++) {
        fx[s]->slots[DAW_SLOT_MEM + mem_offset] = z0[s];
        fx[s]->slots[DAW_SLOT_MEM + mem_offset + 1] = z1[s];
    }
}

static void biquad_cascade_any(daw_effect *const *fx, int count, int mem_offset, float *x,
                               int32_t n) {
    switch (count) {
    case 2: biquad_cascade(fx, 2, mem_offset, x, n); break;
    case 3: biquad_cascade(fx, 3, mem_offset, x, n); break;
    default: biquad_cascade(fx, 4, mem_offset, x, n); break;
    }
}

static void compressor_coefficients(float *slots, double sr) {
    const double attack = slots[DAW_SLOT_TARGET + 3] * 1e-3;
    const double release = slots[DAW_SLOT_TARGET + 4] * 1e-3;
    slots[DAW_SLOT_COEF + 0] = (float)exp(-1.0 / (attack > 1e-5 ? attack * sr : 1e-5 * sr));
    slots[DAW_SLOT_COEF + 1] = (float)exp(-1.0 / (release > 1e-5 ? release * sr : 1e-5 * sr));
}

static void compressor_run(float *slots, float *restrict x0, float *restrict x1, int32_t n,
                           float *restrict work) {
    const float *v = slots + DAW_SLOT_VALUE;
    const float threshold = v[0], knee = v[2], makeup = v[5];
    const float slope = 1.0f - 1.0f / (v[1] > 1.0f ? v[1] : 1.0f);
    const float half_knee = 0.5f * knee;
    const float inv_2knee = knee > 0.0f ? 1.0f / (2.0f * knee) : 0.0f;
    /* pass 1: gain computer (reduction in dB), vectorisable */
    for (int32_t i = 0; i < n; i++) {
        float level = fabsf(x0[i]);
        if (x1) {
            const float other = fabsf(x1[i]);
            level = level > other ? level : other;
        }
        level = level > 1e-10f ? level : 1e-10f;
        const float over = LOG2_TO_DB * fast_log2(level) - threshold;
        const float in_knee = over + half_knee;
        float red = slope * over;
        if (knee > 0.0f && over > -half_knee && over < half_knee)
            red = slope * in_knee * in_knee * inv_2knee;
        if (over <= -half_knee) red = 0.0f;
        work[i] = red;
    }
    /* pass 2: attack/release smoothing of the reduction, serial */
    const float att = slots[DAW_SLOT_COEF + 0], rel = slots[DAW_SLOT_COEF + 1];
    float y = slots[DAW_SLOT_MEM + 0];
    for (int32_t i = 0; i < n; i++) {
        const float c = work[i];
        const float d = y - c;
        y = c + (d < 0.0f ? att : rel) * d;
        work[i] = y;
    }
    slots[DAW_SLOT_MEM + 0] = y;
    /* pass 3: apply gain, vectorisable */
    for (int32_t i = 0; i < n; i++) {
        const float g = fast_exp2((makeup - work[i]) * DB_TO_LOG2);
        x0[i] *= g;
        if (x1) x1[i] *= g;
    }
}

static void limiter_coefficients(float *slots, double sr) {
    const double release = slots[DAW_SLOT_VALUE + 1] * 1e-3;
    slots[DAW_SLOT_COEF + 0] = (float)pow(10.0, slots[DAW_SLOT_VALUE + 0] / 20.0);
    slots[DAW_SLOT_COEF + 1] = (float)exp(-1.0 / (release > 1e-4 ? release * sr : 1e-4 * sr));
}

static void limiter_run(float *slots, float *restrict x0, float *restrict x1, int32_t n) {
    const float ceiling = slots[DAW_SLOT_COEF + 0], rel = slots[DAW_SLOT_COEF + 1];
    float g = slots[DAW_SLOT_MEM + 0];
    for (int32_t i = 0; i < n; i++) {
        float peak = fabsf(x0[i]);
        if (x1) {
            const float other = fabsf(x1[i]);
            peak = peak > other ? peak : other;
        }
        const float needed = peak > ceiling ? ceiling / peak : 1.0f;
        g = 1.0f - rel * (1.0f - g);
        g = g < needed ? g : needed;
        float a = x0[i] * g;
        x0[i] = a > ceiling ? ceiling : (a < -ceiling ? -ceiling : a);
        if (x1) {
            float b = x1[i] * g;
            x1[i] = b > ceiling ? ceiling : (b < -ceiling ? -ceiling : b);
        }
    }
    slots[DAW_SLOT_MEM + 0] = g;
}

static void gain_coefficients(float *slots) {
    slots[DAW_SLOT_COEF + 0] = slots[DAW_SLOT_COEF + 1];
    slots[DAW_SLOT_COEF + 1] = (float)pow(10.0, slots[DAW_SLOT_VALUE + 0] / 20.0);
}

static void gain_run(const float *slots, float *restrict x, int32_t n, int32_t ph) {
    const float s = slots[DAW_SLOT_COEF + 0], d = slots[DAW_SLOT_COEF + 1] - s;
    for (int32_t i = 0; i < n; i++)
        x[i] *= s + d * ((float)(ph + i + 1) * (1.0f / DAW_TICK));
}

static int64_t delay_run(daw_effect *fx, float *restrict x, int32_t channel, int32_t n,
                         double sr, int64_t w) {
    const float *v = fx->slots + DAW_SLOT_VALUE;
    const int64_t len = fx->memory_len;
    float *restrict ring = fx->memory + channel * len;
    float d = (float)((double)v[0] * 1e-3 * sr);
    if (d < 1.0f) d = 1.0f;
    if (d > (float)(len - 2)) d = (float)(len - 2);
    const float feedback = v[1], mix = v[2];
    const int64_t whole = (int64_t)d;
    const float frac = d - (float)whole;
    for (int32_t i = 0; i < n; i++) {
        int64_t r0 = w - whole;
        if (r0 < 0) r0 += len;
        int64_t r1 = r0 - 1;
        if (r1 < 0) r1 += len;
        const float wet = ring[r0] * (1.0f - frac) + ring[r1] * frac;
        const float in = x[i];
        ring[w] = in + feedback * wet;
        x[i] = in * (1.0f - mix) + wet * mix;
        w = w + 1 == len ? 0 : w + 1;
    }
    return w;
}

/* Advance smoothed parameters by one tick and refresh derived coefficients. */
static void effect_tick(daw_effect *fx, double sr, float alpha) {
    float *s = fx->slots;
    int changed = s[DAW_SLOT_READY] == 0.0f;
    for (int k = 0; k < 8; k++) {
        const float before = s[DAW_SLOT_VALUE + k];
        const float target = s[DAW_SLOT_TARGET + k];
        const float after = s[DAW_SLOT_READY] == 0.0f
                                ? target
                                : smooth_toward(before, target, alpha, param_eps(target));
        if (after != before) changed = 1;
        s[DAW_SLOT_VALUE + k] = after;
    }
    const int first = s[DAW_SLOT_READY] == 0.0f;
    s[DAW_SLOT_READY] = 1.0f;
    switch (fx->kind) {
    case DAW_FX_BIQUAD:
        if (changed) biquad_coefficients(s, sr);
        break;
    case DAW_FX_COMPRESSOR:
        compressor_coefficients(s, sr);
        break;
    case DAW_FX_LIMITER:
        if (changed) limiter_coefficients(s, sr);
        if (first) s[DAW_SLOT_MEM + 0] = 1.0f;
        break;
    case DAW_FX_GAIN:
        if (first) s[DAW_SLOT_COEF + 1] = (float)pow(10.0, s[DAW_SLOT_VALUE + 0] / 20.0);
        gain_coefficients(s);
        break;
    default:
        break;
    }
}

static int effect_settled(const daw_effect *fx) {
    const float *s = fx->slots;
    if (s[DAW_SLOT_READY] == 0.0f) return 0;
    for (int k = 0; k < 8; k++)
        if (s[DAW_SLOT_VALUE + k] != s[DAW_SLOT_TARGET + k]) return 0;
    if (fx->kind == DAW_FX_GAIN && s[DAW_SLOT_COEF + 0] != s[DAW_SLOT_COEF + 1]) return 0;
    return 1;
}

static void effect_segment(daw_effect *fx, float *ch0, float *ch1, int32_t n, double sr,
                           int32_t ph, float *scratch) {
    switch (fx->kind) {
    case DAW_FX_BIQUAD:
        biquad_run(fx->slots + DAW_SLOT_COEF, fx->slots + DAW_SLOT_MEM, ch0, n);
        if (ch1) biquad_run(fx->slots + DAW_SLOT_COEF, fx->slots + DAW_SLOT_MEM + 2, ch1, n);
        break;
    case DAW_FX_COMPRESSOR:
        compressor_run(fx->slots, ch0, ch1, n, scratch);
        break;
    case DAW_FX_LIMITER:
        limiter_run(fx->slots, ch0, ch1, n);
        break;
    case DAW_FX_GAIN:
        gain_run(fx->slots, ch0, n, ph);
        if (ch1) gain_run(fx->slots, ch1, n, ph);
        break;
    case DAW_FX_DELAY: {
        const int64_t w = (int64_t)fx->slots[DAW_SLOT_MEM + 0];
        const int64_t next = delay_run(fx, ch0, 0, n, sr, w);
        if (ch1) delay_run(fx, ch1, 1, n, sr, w);
        fx->slots[DAW_SLOT_MEM + 0] = (float)next;
        break;
    }
    default:
        break;
    }
}

int daw_effect_process(daw_effect *fx, float *ch0, float *ch1, int32_t channels,
                       int32_t frames, double sample_rate, int32_t phase, float *scratch) {
    if (!fx || !fx->slots || !ch0 || !scratch) return DAW_ERR_NULL;
    if (channels != 1 && channels != 2) return DAW_ERR_CHANNELS;
    if (channels == 2 && !ch1) return DAW_ERR_NULL;
    if (fx->kind < DAW_FX_GAIN || fx->kind > DAW_FX_LIMITER) return DAW_ERR_KIND;
    if (fx->kind == DAW_FX_DELAY && (!fx->memory || fx->memory_len < 4)) return DAW_ERR_NULL;
    if (frames < 0 || phase < 0 || phase >= DAW_TICK) return DAW_ERR_FRAMES;
    if (!fx->enabled || frames == 0) return DAW_OK;
    if (channels == 1) ch1 = NULL;
    FTZ_BEGIN;
    const float alpha = tick_alpha(sample_rate);
    if (effect_settled(fx)) {
        effect_segment(fx, ch0, ch1, frames, sample_rate, phase, scratch);
    } else {
        int32_t pos = 0, ph = phase;
        while (pos < frames) {
            if (ph == 0 || fx->slots[DAW_SLOT_READY] == 0.0f) effect_tick(fx, sample_rate, alpha);
            const int32_t n = min_i32(frames - pos, DAW_TICK - ph);
            effect_segment(fx, ch0 + pos, ch1 ? ch1 + pos : NULL, n, sample_rate, ph, scratch);
            pos += n;
            ph = (ph + n) & (DAW_TICK - 1);
        }
    }
    FTZ_END;
    return DAW_OK;
}

/* ---------------------------------------------------------------- graph */

/* Where the clip's frames land in a block: the overlap [s, e) split into the
 * fade-in part, the plain middle and the fade-out part. */
typedef struct {
    int64_t s, in_end, out_start, e;
} clip_span;

static int clip_overlap(const daw_clip *clip, int64_t start, int32_t frames, clip_span *span) {
    span->s = max_i64(start, clip->position);
    span->e = min_i64(start + frames, clip->position + clip->length);
    if (span->s >= span->e) return 0;
    span->in_end = min_i64(max_i64(span->s, clip->position + clip->fade_in), span->e);
    span->out_start =
        max_i64(min_i64(span->e, clip->position + clip->length - clip->fade_out), span->in_end);
    return 1;
}

static inline float clip_envelope(const daw_clip *clip, int64_t k) {
    const int64_t left = clip->length - 1 - k;
    float env = clip->gain;
    if (k < clip->fade_in) env = env * ((float)k / (float)clip->fade_in);
    if (left < clip->fade_out) env = env * ((float)left / (float)clip->fade_out);
    return env;
}

/* dst0 += g0 * (env * x0), dst1 += g1 * (env * x1) over timeline frames [a, b).
 * With g0 = g1 = 1 this is a plain clip read into a track buffer; the order of
 * operations is the same either way, so both paths round identically. */
static void clip_add(const daw_clip *clip, int32_t track_channels, int64_t start, int64_t a,
                     int64_t b, int faded, float g0, float g1, float *restrict dst0,
                     float *restrict dst1) {
    const float *src0 = clip->data + clip->offset;
    const float *src1 = clip->channels == 2 ? src0 + clip->stride : src0;
    const int64_t k0 = a - clip->position, n = b - a;
    float *restrict d0 = dst0 + (a - start);
    float *restrict d1 = dst1 ? dst1 + (a - start) : NULL;
    const float *restrict x0 = src0 + k0;
    const float *restrict x1 = src1 + k0;
    const int down = track_channels == 1 && clip->channels == 2;
    if (!faded) {
        const float env = clip->gain;
        if (down) {
            for (int64_t i = 0; i < n; i++) {
                const float x = (x0[i] + x1[i]) * 0.5f;
                d0[i] += g0 * (env * x);
                if (d1) d1[i] += g1 * (env * x);
            }
        } else if (d1) {
            for (int64_t i = 0; i < n; i++) {
                d0[i] += g0 * (env * x0[i]);
                d1[i] += g1 * (env * x1[i]);
            }
        } else {
            for (int64_t i = 0; i < n; i++) d0[i] += g0 * (env * x0[i]);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const float env = clip_envelope(clip, k0 + i);
        const float a0 = down ? (x0[i] + x1[i]) * 0.5f : x0[i];
        const float a1 = down ? a0 : x1[i];
        d0[i] += g0 * (env * a0);
        if (d1) d1[i] += g1 * (env * a1);
    }
}

static void clip_mix(const daw_clip *clip, int32_t track_channels, int64_t start,
                     int32_t frames, float g0, float g1, float *dst0, float *dst1) {
    clip_span sp;
    if (!clip_overlap(clip, start, frames, &sp)) return;
    if (sp.s < sp.in_end)
        clip_add(clip, track_channels, start, sp.s, sp.in_end, 1, g0, g1, dst0, dst1);
    if (sp.in_end < sp.out_start)
        clip_add(clip, track_channels, start, sp.in_end, sp.out_start, 0, g0, g1, dst0, dst1);
    if (sp.out_start < sp.e)
        clip_add(clip, track_channels, start, sp.out_start, sp.e, 1, g0, g1, dst0, dst1);
}

static void clip_read(const daw_clip *clip, int32_t track_channels, int64_t start,
                      int32_t frames, float *buf0, float *buf1) {
    clip_mix(clip, track_channels, start, frames, 1.0f, 1.0f, buf0,
             track_channels == 2 ? buf1 : NULL);
}

static int cascadable(const daw_effect *fx) {
    return fx->kind == DAW_FX_BIQUAD && fx->enabled && effect_settled(fx);
}

static int run_chain(daw_effect *effects, int32_t n, float *ch0, float *ch1, int32_t channels,
                     int32_t frames, double sr, int32_t phase, float *scratch) {
    int32_t k = 0;
    while (k < n) {
        int32_t run = 0;
        while (k + run < n && run < 4 && cascadable(&effects[k + run])) run++;
        if (run >= 2) {
            daw_effect *group[4];
            for (int32_t j = 0; j < run; j++) group[j] = &effects[k + j];
            FTZ_BEGIN;
            biquad_cascade_any(group, run, 0, ch0, frames);
            if (channels == 2) biquad_cascade_any(group, run, 2, ch1, frames);
            FTZ_END;
            k += run;
            continue;
        }
        const int rc = daw_effect_process(&effects[k], ch0, ch1, channels, frames, sr, phase,
                                          scratch);
        if (rc != DAW_OK) return rc;
        k++;
    }
    return DAW_OK;
}

static int render_track(daw_graph *g, daw_track *tr, int64_t start, int32_t frames,
                        int32_t phase, float alpha, float *post_l, float *post_r) {
    const int32_t mb = g->max_block;
    const float *f = tr->fader;
    if (tr->n_effects == 0 && tr->n_sends == 0 && f[DAW_FADER_START] == f[DAW_FADER_END] &&
        f[DAW_FADER_START + 1] == f[DAW_FADER_END + 1] &&
        f[DAW_FADER_END] == f[DAW_FADER_TARGET] && f[DAW_FADER_END + 1] == f[DAW_FADER_TARGET + 1]) {
        /* plain track with a settled fader: clips straight into the master bus */
        const float gl = f[DAW_FADER_END], gr = f[DAW_FADER_END + 1];
        if (gl == 0.0f && gr == 0.0f) return DAW_OK;
        for (int32_t c = 0; c < tr->n_clips; c++) {
            const daw_clip *clip = &tr->clips[c];
            if (clip->position >= start + frames) break;
            clip_mix(clip, tr->channels, start, frames, gl, gr, g->master->buffer,
                     g->master->buffer + mb);
        }
        return DAW_OK;
    }
    float *b0 = tr->buffer;
    float *b1 = tr->channels == 2 ? tr->buffer + mb : tr->buffer;
    memset(b0, 0, (size_t)frames * sizeof(float));
    if (tr->channels == 2) memset(b1, 0, (size_t)frames * sizeof(float));
    for (int32_t c = 0; c < tr->n_clips; c++) {
        const daw_clip *clip = &tr->clips[c];
        if (clip->position >= start + frames) break;
        clip_read(clip, tr->channels, start, frames, b0, b1);
    }
    int rc = run_chain(tr->effects, tr->n_effects, b0, tr->channels == 2 ? b1 : NULL,
                       tr->channels, frames, g->sample_rate, phase, g->scratch);
    if (rc != DAW_OK) return rc;
    int has_post = 0;
    for (int32_t s = 0; s < tr->n_sends; s++) {
        daw_send *send = &tr->sends[s];
        if (send->bus < 0 || send->bus >= g->n_buses) return DAW_ERR_BUS;
        if (send->pre_fader) {
            daw_bus *bus = &g->buses[send->bus];
            fader_apply(send->fader, b0, b1, bus->buffer, bus->buffer + mb, frames, phase, alpha);
        } else {
            has_post = 1;
        }
    }
    float *master_l = g->master->buffer, *master_r = g->master->buffer + mb;
    if (!has_post) {
        fader_apply(tr->fader, b0, b1, master_l, master_r, frames, phase, alpha);
        return DAW_OK;
    }
    memset(post_l, 0, (size_t)frames * sizeof(float));
    memset(post_r, 0, (size_t)frames * sizeof(float));
    fader_apply(tr->fader, b0, b1, post_l, post_r, frames, phase, alpha);
    for (int32_t i = 0; i < frames; i++) {
        master_l[i] += post_l[i];
        master_r[i] += post_r[i];
    }
    for (int32_t s = 0; s < tr->n_sends; s++) {
        daw_send *send = &tr->sends[s];
        if (send->pre_fader) continue;
        daw_bus *bus = &g->buses[send->bus];
        fader_apply(send->fader, post_l, post_r, bus->buffer, bus->buffer + mb, frames, phase,
                    alpha);
    }
    return DAW_OK;
}

/* Touch the first cache lines a later track will read, so that many tracks'
 * short reads overlap instead of each waiting for memory in turn. */
#define PREFETCH_AHEAD 8
#define PREFETCH_BYTES 512

static void prefetch_track(const daw_track *tr, int64_t start, int32_t frames) {
    for (int32_t c = 0; c < tr->n_clips; c++) {
        const daw_clip *clip = &tr->clips[c];
        if (clip->position >= start + frames) break;
        if (clip->position + clip->length <= start) continue;
        const int64_t k = max_i64(start - clip->position, 0) + clip->offset;
        const int64_t bytes = min_i64((int64_t)frames * 4, PREFETCH_BYTES);
        for (int ch = 0; ch < clip->channels; ch++) {
            const char *p = (const char *)(clip->data + ch * clip->stride + k);
            for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 0);
        }
        break;
    }
}

/* A track whose whole contribution to this block is gain * source[0..frames)
 * into the master bus: mono, no inserts or sends, settled fader, one mono clip
 * covering the block with no fade inside it. */
static int plain_source(const daw_track *tr, int64_t start, int32_t frames, const float **x,
                        float *env, float *gl, float *gr) {
    const float *f = tr->fader;
    if (tr->channels != 1 || tr->n_effects || tr->n_sends || f[DAW_FADER_START] != f[DAW_FADER_END] ||
        f[DAW_FADER_START + 1] != f[DAW_FADER_END + 1] || f[DAW_FADER_END] != f[DAW_FADER_TARGET] ||
        f[DAW_FADER_END + 1] != f[DAW_FADER_TARGET + 1])
        return 0;
    const daw_clip *found = NULL;
    for (int32_t c = 0; c < tr->n_clips; c++) {
        const daw_clip *clip = &tr->clips[c];
        if (clip->position >= start + frames) break;
        if (clip->position + clip->length <= start) continue;
        if (found) return 0;
        found = clip;
    }
    if (!found || found->channels != 1 || found->position + found->fade_in > start ||
        found->position + found->length - found->fade_out < start + frames)
        return 0;
    *x = found->data + found->offset + (start - found->position);
    *env = found->gain;
    *gl = f[DAW_FADER_END];
    *gr = f[DAW_FADER_END + 1];
    return 1;
}

/* PLAIN_GROUP plain tracks at once: the accumulators are loaded and stored
 * once for the whole group, as in daw_mix.  Returns 0 (and does nothing) if
 * any track of the group is not plain for this block. */
#define PLAIN_GROUP 4

static int mix_plain_group(daw_graph *g, const daw_track *tr, int64_t start, int32_t frames) {
    const float *x[PLAIN_GROUP];
    float e[PLAIN_GROUP], gl[PLAIN_GROUP], gr[PLAIN_GROUP];
    for (int k = 0; k < PLAIN_GROUP; k++)
        if (!plain_source(&tr[k], start, frames, &x[k], &e[k], &gl[k], &gr[k])) return 0;
    float *restrict l = g->master->buffer;
    float *restrict r = g->master->buffer + g->max_block;
    const float *restrict x0 = x[0], *restrict x1 = x[1], *restrict x2 = x[2],
                          *restrict x3 = x[3];
    for (int32_t i = 0; i < frames; i++) {
        const float a = e[0] * x0[i], b = e[1] * x1[i], c = e[2] * x2[i], d = e[3] * x3[i];
        l[i] += gl[0] * a + gl[1] * b + gl[2] * c + gl[3] * d;
        r[i] += gr[0] * a + gr[1] * b + gr[2] * c + gr[3] * d;
    }
    return 1;
}

int daw_render(daw_graph *g, int64_t start, int32_t frames, float *out_l, float *out_r) {
    if (!g || !g->master || !g->scratch || !out_l || !out_r) return DAW_ERR_NULL;
    if (frames < 0 || frames > g->max_block) return DAW_ERR_FRAMES;
    const int32_t mb = g->max_block;
    const int32_t phase = (int32_t)(g->frames_done % DAW_TICK);
    const float alpha = tick_alpha(g->sample_rate);
    float *post_l = g->scratch + mb, *post_r = g->scratch + 2 * mb;
    int rc = DAW_OK;
    FTZ_BEGIN;
    memset(g->master->buffer, 0, (size_t)2 * mb * sizeof(float));
    for (int32_t b = 0; b < g->n_buses; b++)
        memset(g->buses[b].buffer, 0, (size_t)2 * mb * sizeof(float));
    for (int32_t t = 0; t < g->n_tracks && rc == DAW_OK;) {
        if (t + PREFETCH_AHEAD + PLAIN_GROUP <= g->n_tracks)
            for (int32_t k = 0; k < PLAIN_GROUP; k++)
                prefetch_track(&g->tracks[t + PREFETCH_AHEAD + k], start, frames);
        if (t + PLAIN_GROUP <= g->n_tracks &&
            mix_plain_group(g, &g->tracks[t], start, frames)) {
            t += PLAIN_GROUP;
            continue;
        }
        rc = render_track(g, &g->tracks[t], start, frames, phase, alpha, post_l, post_r);
        t++;
    }
    for (int32_t b = 0; b < g->n_buses && rc == DAW_OK; b++) {
        daw_bus *bus = &g->buses[b];
        rc = run_chain(bus->effects, bus->n_effects, bus->buffer, bus->buffer + mb, 2, frames,
                       g->sample_rate, phase, g->scratch);
        if (rc == DAW_OK)
            fader_apply(bus->fader, bus->buffer, bus->buffer + mb, g->master->buffer,
                        g->master->buffer + mb, frames, phase, alpha);
    }
    if (rc == DAW_OK) {
        daw_bus *m = g->master;
        rc = run_chain(m->effects, m->n_effects, m->buffer, m->buffer + mb, 2, frames,
                       g->sample_rate, phase, g->scratch);
        memset(out_l, 0, (size_t)frames * sizeof(float));
        memset(out_r, 0, (size_t)frames * sizeof(float));
        if (rc == DAW_OK)
            fader_apply(m->fader, m->buffer, m->buffer + mb, out_l, out_r, frames, phase, alpha);
    }
    if (rc == DAW_OK) g->frames_done += frames;
    FTZ_END;
    return rc;
}
