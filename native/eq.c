/*
 * Seven-band parametric EQ and de-esser.  Twin: dsp_core/reference_eq.py.
 *
 * EQ: a low shelf, five peaking bands and a high shelf (RBJ cookbook, designed by
 * biquad_design in effects.c).  Its 28 parameters do not fit the 8 target slots, so
 * they live in memory row 0 (EQ_TARGETS: per band freq, gain_db, q, on), with the
 * smoothed values (EQ_VALUES: per band freq, q, effective gain) and coefficients
 * (EQ_COEFS); each channel's row keeps its filter memory at EQ_STATE.  A band that
 * is switched off glides its gain to 0 dB; settled there it is skipped.
 *
 * De-esser: an RBJ band-pass (constant 0 dB peak) centred on the geometric mean of
 * low_hz and high_hz, Q = centre / bandwidth, per channel.  The stereo-linked peak of
 * the band drives a hard-knee gain computer (threshold, ratio) smoothed in dB by
 * attack/release; the gain applies to the band alone (split: out = (x - band) + g band,
 * the notch plus the reduced band) or to the whole signal (wideband).
 */
#include "internal.h"

static const int EQ_SHAPES[EQ_BANDS] = {DAW_BQ_LOWSHELF, DAW_BQ_PEAKING, DAW_BQ_PEAKING,
                                        DAW_BQ_PEAKING, DAW_BQ_PEAKING, DAW_BQ_PEAKING,
                                        DAW_BQ_HIGHSHELF};

static inline float eq_gain_target(const float *t) { return t[3] >= 0.5f ? t[1] : 0.0f; }

INTERNAL int eq_settled(const daw_effect *fx) {
    const float *m = fx->memory;
    for (int b = 0; b < EQ_BANDS; b++) {
        const float *t = m + EQ_TARGETS + 4 * b, *v = m + EQ_VALUES + 3 * b;
        if (v[0] != t[0] || v[1] != t[2] || v[2] != eq_gain_target(t)) return 0;
    }
    return 1;
}

INTERNAL void eq_tick(daw_effect *fx, double sr, float alpha, int first) {
    float *m = fx->memory;
    for (int b = 0; b < EQ_BANDS; b++) {
        const float *t = m + EQ_TARGETS + 4 * b;
        float *v = m + EQ_VALUES + 3 * b;
        const float target[3] = {t[0], t[2], eq_gain_target(t)};
        int changed = first;
        for (int k = 0; k < 3; k++) {
            const float after =
                first ? target[k] : smooth_toward(v[k], target[k], alpha, param_eps(target[k]));
            if (after != v[k]) changed = 1;
            v[k] = after;
        }
        if (changed) biquad_design(EQ_SHAPES[b], v[0], v[1], v[2], sr, m + EQ_COEFS + 5 * b);
    }
}

typedef struct {
    float b0[EQ_BANDS], b1[EQ_BANDS], b2[EQ_BANDS], a1[EQ_BANDS], a2[EQ_BANDS];
    float z0[2][EQ_BANDS], z1[2][EQ_BANDS];
    int band[EQ_BANDS];
} eq_stages;

/* One pass over the frames through `count` stages, both channels side by side (their
 * recursions are independent, so the CPU overlaps them); each stage does what
 * biquad_run does, in the same order.  `count` is a constant where this is inlined. */
static inline void eq_pass(eq_stages *restrict st, const int count, const int chans,
                           float *restrict x0, float *restrict x1, int32_t n) {
    float b0[EQ_BANDS], b1[EQ_BANDS], b2[EQ_BANDS], a1[EQ_BANDS], a2[EQ_BANDS];
    float z0[2][EQ_BANDS], z1[2][EQ_BANDS];
    for (int k = 0; k < count; k++) {
        b0[k] = st->b0[k]; b1[k] = st->b1[k]; b2[k] = st->b2[k];
        a1[k] = st->a1[k]; a2[k] = st->a2[k];
        for (int c = 0; c < chans; c++) {
            z0[c][k] = st->z0[c][k];
            z1[c][k] = st->z1[c][k];
        }
    }
    for (int32_t i = 0; i < n; i++) {
        float s[2] = {x0[i], chans == 2 ? x1[i] : 0.0f};
        for (int k = 0; k < count; k++) {
            for (int c = 0; c < chans; c++) {
                const float y = b0[k] * s[c] + z0[c][k];
                z0[c][k] = b1[k] * s[c] + z1[c][k] - a1[k] * y;
                z1[c][k] = b2[k] * s[c] - a2[k] * y;
                s[c] = y;
            }
        }
        x0[i] = s[0];
        if (chans == 2) x1[i] = s[1];
    }
    for (int k = 0; k < count; k++) {
        for (int c = 0; c < chans; c++) {
            st->z0[c][k] = z0[c][k];
            st->z1[c][k] = z1[c][k];
        }
    }
}

#define EQ_CASE(k)                                      \
    case k:                                             \
        if (x1)                                         \
            eq_pass(&st, k, 2, x0, x1, n);              \
        else                                            \
            eq_pass(&st, k, 1, x0, NULL, n);            \
        break;

INTERNAL void eq_run(daw_effect *fx, float *x0, float *x1, int32_t n) {
    float *m = fx->memory;
    float *rows[2] = {fx->memory, fx->memory + (x1 ? fx->memory_len : 0)};
    const int chans = x1 ? 2 : 1;
    eq_stages st;
    int count = 0;
    for (int b = 0; b < EQ_BANDS; b++) {
        const float *t = m + EQ_TARGETS + 4 * b, *v = m + EQ_VALUES + 3 * b;
        if (v[2] == 0.0f && eq_gain_target(t) == 0.0f) {
            for (int c = 0; c < chans; c++) { /* a resting band: identity, starts afresh */
                rows[c][EQ_STATE + 2 * b] = 0.0f;
                rows[c][EQ_STATE + 2 * b + 1] = 0.0f;
            }
            continue;
        }
        const float *co = m + EQ_COEFS + 5 * b;
        st.b0[count] = co[0]; st.b1[count] = co[1]; st.b2[count] = co[2];
        st.a1[count] = co[3]; st.a2[count] = co[4];
        for (int c = 0; c < chans; c++) {
            st.z0[c][count] = rows[c][EQ_STATE + 2 * b];
            st.z1[c][count] = rows[c][EQ_STATE + 2 * b + 1];
        }
        st.band[count++] = b;
    }
    switch (count) {
    case 0: return;
    EQ_CASE(1) EQ_CASE(2) EQ_CASE(3) EQ_CASE(4) EQ_CASE(5) EQ_CASE(6)
    default: EQ_CASE(7)
    }
    for (int k = 0; k < count; k++) {
        for (int c = 0; c < chans; c++) {
            rows[c][EQ_STATE + 2 * st.band[k]] = st.z0[c][k];
            rows[c][EQ_STATE + 2 * st.band[k] + 1] = st.z1[c][k];
        }
    }
}

/* ------------------------------------------------------------------ de-esser */

INTERNAL void deesser_coefficients(float *slots, double sr) {
    const float *v = slots + DAW_SLOT_VALUE;
    float *c = slots + DAW_SLOT_COEF;
    const double lo = v[4], hi = v[5] > v[4] + 1.0f ? v[5] : v[4] + 1.0f;
    double centre = sqrt(lo * hi);
    if (centre > 0.49 * sr) centre = 0.49 * sr;
    const double q = centre / (hi - lo);
    const double w0 = 2.0 * M_PI * centre / sr;
    const double alpha = sin(w0) / (2.0 * q), a0 = 1.0 + alpha;
    const double attack = (double)v[2] * 1e-3, release = (double)v[3] * 1e-3;
    c[0] = (float)(alpha / a0);
    c[1] = (float)(-2.0 * cos(w0) / a0);
    c[2] = (float)((1.0 - alpha) / a0);
    c[3] = (float)exp(-1.0 / (attack > 1e-5 ? attack * sr : 1e-5 * sr));
    c[4] = (float)exp(-1.0 / (release > 1e-5 ? release * sr : 1e-5 * sr));
    c[5] = v[0];
    c[6] = 1.0f - 1.0f / (v[1] > 1.0f ? v[1] : 1.0f);
    c[7] = v[6];
}

/* The band of one channel into `band` (transposed direct form II, b1 = 0, b2 = -b0). */
static void band_pass(const float *c, float *mem, const float *restrict x, float *restrict band,
                      int32_t n) {
    const float b0 = c[0], b1 = 0.0f, b2 = -c[0], a1 = c[1], a2 = c[2];
    float z0 = mem[0], z1 = mem[1];
    for (int32_t i = 0; i < n; i++) {
        const float in = x[i];
        const float y = b0 * in + z0;
        z0 = b1 * in + z1 - a1 * y;
        z1 = b2 * in - a2 * y;
        band[i] = y;
    }
    mem[0] = z0;
    mem[1] = z1;
}

static void deesser_chunk(float *slots, float *restrict x0, float *restrict x1, int32_t n) {
    const float *c = slots + DAW_SLOT_COEF;
    float *mem = slots + DAW_SLOT_MEM;
    float band0[DEESSER_CHUNK], band1[DEESSER_CHUNK], gains[DEESSER_CHUNK];
    band_pass(c, mem, x0, band0, n);
    if (x1) band_pass(c, mem + 2, x1, band1, n);
    const float threshold = c[5], slope = c[6], att = c[3], rel = c[4];
    for (int32_t i = 0; i < n; i++) {
        float level = fabsf(band0[i]);
        if (x1) {
            const float other = fabsf(band1[i]);
            level = level > other ? level : other;
        }
        level = level > 1e-10f ? level : 1e-10f;
        const float over = LOG2_TO_DB * fast_log2(level) - threshold;
        gains[i] = over > 0.0f ? slope * over : 0.0f;
    }
    float y = mem[4];
    for (int32_t i = 0; i < n; i++) {
        const float d = y - gains[i];
        y = gains[i] + (d < 0.0f ? att : rel) * d;
        gains[i] = y;
    }
    mem[4] = y;
    for (int32_t i = 0; i < n; i++) gains[i] = fast_exp2(-gains[i] * DB_TO_LOG2);
    if (c[7] >= 0.5f) { /* wideband */
        for (int32_t i = 0; i < n; i++) {
            x0[i] *= gains[i];
            if (x1) x1[i] *= gains[i];
        }
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        x0[i] = (x0[i] - band0[i]) + gains[i] * band0[i];
        if (x1) x1[i] = (x1[i] - band1[i]) + gains[i] * band1[i];
    }
}

INTERNAL void deesser_run(float *slots, float *x0, float *x1, int32_t n) {
    for (int32_t pos = 0; pos < n; pos += DEESSER_CHUNK)
        deesser_chunk(slots, x0 + pos, x1 ? x1 + pos : NULL, min_i32(DEESSER_CHUNK, n - pos));
}
