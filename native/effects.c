/*
 * Effect kernels: biquads, compressor, limiter, gain, delay, and the chain
 * runner (reverb.c, modulation.c and shaping.c hold the others).
 * Twins: dsp_core/reference.py (same function names).
 */
#include "internal.h"

float daw_log2(float x) { return fast_log2(x); }

float daw_exp2(float x) { return fast_exp2(x); }

INTERNAL void biquad_design(int shape, double freq, double q, double gain_db, double sr,
                            float *c) {
    if (q < 1e-3) q = 1e-3;
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
    c[0] = (float)(b0 / a0);
    c[1] = (float)(b1 / a0);
    c[2] = (float)(b2 / a0);
    c[3] = (float)(a1 / a0);
    c[4] = (float)(a2 / a0);
}

static void biquad_coefficients(float *slots, double sr) {
    const float q = slots[DAW_SLOT_VALUE + 2];
    biquad_design((int)slots[DAW_SLOT_TARGET + 0], slots[DAW_SLOT_VALUE + 1],
                  q > 1e-3f ? q : 1e-3, slots[DAW_SLOT_VALUE + 3], sr, slots + DAW_SLOT_COEF);
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

INTERNAL void biquad_cascade_any(daw_effect *const *fx, int count, int mem_offset, float *x,
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

/* k0, k1: what the detector reads (the input itself, or a sidechain key). */
static void compressor_run(float *slots, float *x0, float *x1, int32_t n,
                           float *restrict work, const float *k0, const float *k1) {
    const float *v = slots + DAW_SLOT_VALUE;
    const float threshold = v[0], knee = v[2], makeup = v[5];
    const float slope = 1.0f - 1.0f / (v[1] > 1.0f ? v[1] : 1.0f);
    const float half_knee = 0.5f * knee;
    const float inv_2knee = knee > 0.0f ? 1.0f / (2.0f * knee) : 0.0f;
    /* pass 1: gain computer (reduction in dB), vectorisable */
    for (int32_t i = 0; i < n; i++) {
        float level = fabsf(k0[i]);
        if (k1) {
            const float other = fabsf(k1[i]);
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
    case DAW_FX_REVERB:
        if (changed) reverb_coefficients(s, sr);
        break;
    case DAW_FX_CHORUS:
    case DAW_FX_FLANGER:
        if (changed) modulation_coefficients(s, sr);
        break;
    case DAW_FX_GATE:
        if (changed) gate_coefficients(s, sr);
        if (first) s[DAW_SLOT_MEM + 0] = 1.0f;
        break;
    case DAW_FX_SATURATION:
        if (changed) saturation_coefficients(s);
        break;
    case DAW_FX_PHASER:
        if (changed) phaser_coefficients(s, sr);
        break;
    case DAW_FX_EQ:
        eq_tick(fx, sr, alpha, first);
        break;
    case DAW_FX_DEESSER:
        if (changed) deesser_coefficients(s, sr);
        break;
    case DAW_FX_CONVOLUTION:
        if (changed) conv_coefficients(s, sr);
        break;
    default:
        break;
    }
}

INTERNAL int effect_settled(const daw_effect *fx) {
    const float *s = fx->slots;
    if (s[DAW_SLOT_READY] == 0.0f) return 0;
    for (int k = 0; k < 8; k++)
        if (s[DAW_SLOT_VALUE + k] != s[DAW_SLOT_TARGET + k]) return 0;
    if (fx->kind == DAW_FX_GAIN && s[DAW_SLOT_COEF + 0] != s[DAW_SLOT_COEF + 1]) return 0;
    if (fx->kind == DAW_FX_EQ && !eq_settled(fx)) return 0;
    return 1;
}

/* pos: where the segment starts in the block (a sidechain key is read from there). */
static void effect_segment(daw_effect *fx, float *ch0, float *ch1, int32_t n, double sr,
                           int32_t ph, float *scratch, int32_t pos) {
    const float *k0 = fx->key ? fx->key + pos : ch0;
    const float *k1 = fx->key ? fx->key + fx->key_stride + pos : ch1;
    switch (fx->kind) {
    case DAW_FX_BIQUAD:
        biquad_run(fx->slots + DAW_SLOT_COEF, fx->slots + DAW_SLOT_MEM, ch0, n);
        if (ch1) biquad_run(fx->slots + DAW_SLOT_COEF, fx->slots + DAW_SLOT_MEM + 2, ch1, n);
        break;
    case DAW_FX_COMPRESSOR:
        compressor_run(fx->slots, ch0, ch1, n, scratch, k0, k1);
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
    case DAW_FX_REVERB:
        reverb_run(fx, ch0, ch1, n, sr);
        break;
    case DAW_FX_CHORUS:
    case DAW_FX_FLANGER:
        modulation_run(fx, ch0, ch1, n);
        break;
    case DAW_FX_GATE:
        gate_run(fx->slots, ch0, ch1, n, k0, k1);
        break;
    case DAW_FX_SATURATION:
        saturation_run(fx->slots, ch0, ch1, n);
        break;
    case DAW_FX_PHASER:
        phaser_run(fx->slots, ch0, ch1, n, sr, ph);
        break;
    case DAW_FX_EQ:
        eq_run(fx, ch0, ch1, n);
        break;
    case DAW_FX_DEESSER:
        deesser_run(fx->slots, ch0, ch1, n);
        break;
    case DAW_FX_CONVOLUTION:
        conv_run(fx, ch0, ch1, n, sr);
        break;
    case DAW_FX_LOOKAHEAD_LIMITER:
        lookahead_run(fx, ch0, ch1, n, sr);
        break;
    default:
        break;
    }
}

int daw_effect_process(daw_effect *fx, float *ch0, float *ch1, int32_t channels,
                       int32_t frames, double sample_rate, int32_t phase, float *scratch) {
    if (!fx || !fx->slots || !ch0 || !scratch) return DAW_ERR_NULL;
    if (channels != 1 && channels != 2) return DAW_ERR_CHANNELS;
    if (channels == 2 && !ch1) return DAW_ERR_NULL;
    if ((fx->kind < DAW_FX_GAIN || fx->kind > DAW_FX_CONVOLUTION) &&
        fx->kind != DAW_FX_LOOKAHEAD_LIMITER)
        return DAW_ERR_KIND;
    if (fx->kind == DAW_FX_EQ && (!fx->memory || fx->memory_len < EQ_ROW)) return DAW_ERR_NULL;
    if (fx->kind == DAW_FX_CONVOLUTION && !conv_memory_ok(fx, sample_rate)) return DAW_ERR_NULL;
    if (fx->kind == DAW_FX_LOOKAHEAD_LIMITER &&
        (!fx->memory || fx->memory_len < 3 * lookahead_ring(sample_rate)))
        return DAW_ERR_NULL;
    if ((fx->kind == DAW_FX_DELAY || fx->kind == DAW_FX_CHORUS || fx->kind == DAW_FX_FLANGER) &&
        (!fx->memory || fx->memory_len < 4))
        return DAW_ERR_NULL;
    if (fx->kind == DAW_FX_REVERB &&
        (!fx->memory || fx->memory_len < reverb_memory_length(sample_rate)))
        return DAW_ERR_NULL;
    if (frames < 0 || phase < 0 || phase >= DAW_TICK) return DAW_ERR_FRAMES;
    /* a sidechain key holds two channels of key_stride frames each */
    if (fx->key && fx->key_stride < frames) return DAW_ERR_FRAMES;
    if (!fx->enabled || frames == 0) return DAW_OK;
    if (channels == 1) ch1 = NULL;
    FTZ_BEGIN;
    const float alpha = tick_alpha(sample_rate);
    if (effect_settled(fx)) {
        effect_segment(fx, ch0, ch1, frames, sample_rate, phase, scratch, 0);
    } else {
        int32_t pos = 0, ph = phase;
        while (pos < frames) {
            if (ph == 0 || fx->slots[DAW_SLOT_READY] == 0.0f) effect_tick(fx, sample_rate, alpha);
            const int32_t n = min_i32(frames - pos, DAW_TICK - ph);
            effect_segment(fx, ch0 + pos, ch1 ? ch1 + pos : NULL, n, sample_rate, ph, scratch,
                           pos);
            pos += n;
            ph = (ph + n) & (DAW_TICK - 1);
        }
    }
    FTZ_END;
    return DAW_OK;
}

static int cascadable(const daw_effect *fx) {
    return fx->kind == DAW_FX_BIQUAD && fx->enabled && effect_settled(fx);
}

INTERNAL int run_chain(daw_effect *effects, int32_t n, float *ch0, float *ch1, int32_t channels,
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
