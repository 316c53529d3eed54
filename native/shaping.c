/*
 * Gate/expander and saturation.  Twin: dsp_core/reference_shaping.py.
 *
 * The gate opens while the stereo-linked peak is at or above the threshold and
 * stays open hold_ms after it falls below; closed, it attenuates by range_db.
 * Its gain moves toward the open or closed level with one-pole attack and release.
 *
 * Saturation drives the signal into a tanh-like curve, the [3/2] Pade
 * approximant of tanh, x (27 + x^2) / (27 + 9 x^2), which reaches exactly +-1 with
 * zero slope at x = +-3 and is held there beyond: at mix 1 the output never exceeds the
 * output gain, whatever the drive.
 */
#include "internal.h"

INTERNAL void gate_coefficients(float *slots, double sr) {
    const float *v = slots + DAW_SLOT_VALUE;
    float *c = slots + DAW_SLOT_COEF;
    const double attack = (double)v[2] * 1e-3, release = (double)v[4] * 1e-3;
    c[0] = (float)pow(10.0, (double)v[0] / 20.0);
    c[1] = (float)pow(10.0, -(double)v[1] / 20.0);
    c[2] = (float)exp(-1.0 / (attack > 1e-5 ? attack * sr : 1e-5 * sr));
    c[3] = (float)exp(-1.0 / (release > 1e-5 ? release * sr : 1e-5 * sr));
    c[4] = (float)(int64_t)((double)v[3] * 1e-3 * sr);
}

/* k0, k1: what the detector reads (the input itself, or a sidechain key). */
INTERNAL void gate_run(float *slots, float *x0, float *x1, int32_t n,
                       const float *k0, const float *k1) {
    const float *c = slots + DAW_SLOT_COEF;
    const float threshold = c[0], floor_gain = c[1], att = c[2], rel = c[3], hold_frames = c[4];
    float g = slots[DAW_SLOT_MEM + 0], hold = slots[DAW_SLOT_MEM + 1];
    for (int32_t i = 0; i < n; i++) {
        float peak = fabsf(k0[i]);
        if (k1) {
            const float other = fabsf(k1[i]);
            peak = peak > other ? peak : other;
        }
        int open = 1;
        if (peak >= threshold)
            hold = hold_frames;
        else if (hold > 0.0f)
            hold -= 1.0f;
        else
            open = 0;
        const float target = open ? 1.0f : floor_gain;
        const float k = target > g ? att : rel;
        g = target + k * (g - target);
        x0[i] *= g;
        if (x1) x1[i] *= g;
    }
    slots[DAW_SLOT_MEM + 0] = g;
    slots[DAW_SLOT_MEM + 1] = hold;
}

INTERNAL void saturation_coefficients(float *slots) {
    const float *v = slots + DAW_SLOT_VALUE;
    float *c = slots + DAW_SLOT_COEF;
    const double out = pow(10.0, (double)v[2] / 20.0), mix = v[1];
    c[0] = (float)pow(10.0, (double)v[0] / 20.0);
    c[1] = (float)((1.0 - mix) * out);
    c[2] = (float)(mix * out);
}

static void saturate(const float *c, float *restrict x, int32_t n) {
    const float drive = c[0], dry = c[1], wet = c[2];
    for (int32_t i = 0; i < n; i++) {
        float v = x[i] * drive;
        v = v > 3.0f ? 3.0f : (v < -3.0f ? -3.0f : v);
        const float v2 = v * v;
        float y = v * (27.0f + v2) / (27.0f + 9.0f * v2);
        y = y > 1.0f ? 1.0f : (y < -1.0f ? -1.0f : y); /* rounding near |v| = 3 */
        x[i] = x[i] * dry + y * wet;
    }
}

INTERNAL void saturation_run(const float *slots, float *x0, float *x1, int32_t n) {
    saturate(slots + DAW_SLOT_COEF, x0, n);
    if (x1) saturate(slots + DAW_SLOT_COEF, x1, n);
}
