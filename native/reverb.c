/*
 * Algorithmic stereo reverb in the Freeverb layout: per channel, eight parallel
 * combs with a one-pole lowpass in their feedback (room size sets the feedback,
 * damping the lowpass), then four allpasses in series; both channels hear one
 * pre-delayed mono input and differ by REVERB_SPREAD samples of comb and allpass
 * length, which decorrelates them.  Twin: dsp_core/reference_reverb.py.
 */
#include "internal.h"

static const int COMB_TUNING[REVERB_COMBS] = {1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617};
static const int ALLPASS_TUNING[REVERB_ALLPASSES] = {556, 441, 341, 225};

/* Header floats of each memory row. */
#define H_COMB_STORE 0
#define H_COMB_INDEX 8
#define H_ALLPASS_INDEX 16
#define H_PRE_INDEX 20

typedef struct {
    int64_t comb_off[REVERB_COMBS], comb_len[2][REVERB_COMBS];
    int64_t ap_off[REVERB_ALLPASSES], ap_len[2][REVERB_ALLPASSES];
    int64_t pre_off, pre_len, pre_max, total;
} reverb_layout;

static int64_t scaled(int frames, double sr) {
    return (int64_t)((double)frames * sr / REVERB_TUNING_RATE);
}

static void layout(double sr, reverb_layout *g) {
    int64_t off = REVERB_HEADER;
    for (int k = 0; k < REVERB_COMBS; k++) {
        g->comb_len[0][k] = scaled(COMB_TUNING[k], sr);
        g->comb_len[1][k] = scaled(COMB_TUNING[k] + REVERB_SPREAD, sr);
        g->comb_off[k] = off;
        off += g->comb_len[1][k];
    }
    for (int k = 0; k < REVERB_ALLPASSES; k++) {
        g->ap_len[0][k] = scaled(ALLPASS_TUNING[k], sr);
        g->ap_len[1][k] = scaled(ALLPASS_TUNING[k] + REVERB_SPREAD, sr);
        g->ap_off[k] = off;
        off += g->ap_len[1][k];
    }
    g->pre_max = (int64_t)(REVERB_MAX_PRE_MS * 1e-3 * sr);
    g->pre_off = off;
    g->pre_len = g->pre_max + g->ap_len[0][REVERB_ALLPASSES - 1] + 2;
    g->total = off + g->pre_len;
}

INTERNAL int64_t reverb_memory_length(double sr) {
    reverb_layout g;
    layout(sr, &g);
    return g.total;
}

INTERNAL void reverb_coefficients(float *slots, double sr) {
    const float *v = slots + DAW_SLOT_VALUE;
    float *c = slots + DAW_SLOT_COEF;
    const double room = v[0], damping = v[1], width = v[3], mix = v[4];
    const double damp1 = damping * 0.4;
    const double wet = mix * REVERB_WET_SCALE;
    c[0] = (float)(room * 0.28 + 0.7);
    c[1] = (float)damp1;
    c[2] = (float)(1.0 - damp1);
    c[3] = (float)(wet * (0.5 + 0.5 * width));
    c[4] = (float)(wet * (0.5 - 0.5 * width));
    c[5] = (float)(1.0 - mix);
    c[6] = (float)wet;
    int64_t pre = (int64_t)((double)v[2] * 1e-3 * sr);
    const int64_t most = (int64_t)(REVERB_MAX_PRE_MS * 1e-3 * sr);
    c[7] = (float)(pre < 0 ? 0 : (pre > most ? most : pre));
}

INTERNAL void reverb_run(daw_effect *fx, float *restrict x0, float *restrict x1, int32_t n,
                         double sr) {
    reverb_layout g;
    layout(sr, &g);
    const float *c = fx->slots + DAW_SLOT_COEF;
    const float fb = c[0], damp1 = c[1], damp2 = c[2], wet1 = c[3], wet2 = c[4], dry = c[5],
                wetm = c[6];
    const int64_t d = (int64_t)c[7];
    const int chans = x1 ? 2 : 1;
    float *row[2] = {fx->memory, fx->memory + (x1 ? fx->memory_len : 0)};
    float store[2][REVERB_COMBS];
    int64_t ci[2][REVERB_COMBS], ai[2][REVERB_ALLPASSES];
    for (int ch = 0; ch < chans; ch++) {
        for (int k = 0; k < REVERB_COMBS; k++) {
            store[ch][k] = row[ch][H_COMB_STORE + k];
            ci[ch][k] = (int64_t)row[ch][H_COMB_INDEX + k];
        }
        for (int k = 0; k < REVERB_ALLPASSES; k++)
            ai[ch][k] = (int64_t)row[ch][H_ALLPASS_INDEX + k];
    }
    float *restrict pre = row[0] + g.pre_off;
    int64_t pw = (int64_t)row[0][H_PRE_INDEX];
    for (int32_t i = 0; i < n; i++) {
        const float mono = x1 ? (x0[i] + x1[i]) * 0.5f : x0[i];
        pre[pw] = mono * REVERB_INPUT_GAIN;
        int64_t r = pw - d;
        if (r < 0) r += g.pre_len;
        const float in = pre[r];
        pw = pw + 1 == g.pre_len ? 0 : pw + 1;
        float wet[2] = {0.0f, 0.0f};
        for (int ch = 0; ch < chans; ch++) {
            float *base = row[ch];
            float acc = 0.0f;
            for (int k = 0; k < REVERB_COMBS; k++) {
                float *buf = base + g.comb_off[k];
                const int64_t at = ci[ch][k];
                const float out = buf[at];
                const float s = out * damp2 + store[ch][k] * damp1;
                store[ch][k] = s;
                buf[at] = in + s * fb;
                ci[ch][k] = at + 1 == g.comb_len[ch][k] ? 0 : at + 1;
                acc += out;
            }
            for (int k = 0; k < REVERB_ALLPASSES; k++) {
                float *buf = base + g.ap_off[k];
                const int64_t at = ai[ch][k];
                const float out = buf[at];
                buf[at] = acc + out * 0.5f;
                acc = out - acc;
                ai[ch][k] = at + 1 == g.ap_len[ch][k] ? 0 : at + 1;
            }
            wet[ch] = acc;
        }
        if (x1) {
            const float l = x0[i], r = x1[i];
            x0[i] = l * dry + (wet[0] * wet1 + wet[1] * wet2);
            x1[i] = r * dry + (wet[1] * wet1 + wet[0] * wet2);
        } else {
            x0[i] = x0[i] * dry + wet[0] * wetm;
        }
    }
    for (int ch = 0; ch < chans; ch++) {
        for (int k = 0; k < REVERB_COMBS; k++) {
            row[ch][H_COMB_STORE + k] = store[ch][k];
            row[ch][H_COMB_INDEX + k] = (float)ci[ch][k];
        }
        for (int k = 0; k < REVERB_ALLPASSES; k++)
            row[ch][H_ALLPASS_INDEX + k] = (float)ai[ch][k];
    }
    row[0][H_PRE_INDEX] = (float)pw;
}
