/*
 * The lookahead limiter: a peak limiter that sees `lookahead` frames ahead, so
 * its gain ramps down before a peak instead of clipping it.  Its output is its
 * input delayed by the lookahead: that delay is the effect's latency, which the
 * graph compensates (dsp_core/graph.py).  Twin: dsp_core/reference_lookahead.py.
 *
 * Per frame: the gain each sample needs (ceiling / peak, at most 1) goes into a
 * ring; the smallest need over the last L + 1 frames, with an exponential
 * release, is the held gain r; the applied gain is the mean of r over the last
 * L + 1 frames (a linear ramp of L + 1 frames), which never exceeds the need of
 * the sample it multiplies, the input of L frames ago.  A hard clip at the ceiling
 * catches float rounding.
 *
 * Memory: each channel's row is [delay ring | need ring | held-gain ring], each
 * ring LOOKAHEAD_RING frames (only row 0's need and held rings are used).
 * Slots: MEM+0 write index, +1 frames since a need < 1 (capped), +2 held gain r,
 * +3 frames since r < 1 (capped), +4/+5 the running sum (a double's bits),
 * +6 the L the sum is over, +7 1 once the rings are initialised.
 */
#include "internal.h"

#define LA_W (DAW_SLOT_MEM + 0)
#define LA_OVER_AGE (DAW_SLOT_MEM + 1)
#define LA_HELD (DAW_SLOT_MEM + 2)
#define LA_HELD_AGE (DAW_SLOT_MEM + 3)
#define LA_SUM (DAW_SLOT_MEM + 4)
#define LA_L (DAW_SLOT_MEM + 6)
#define LA_INIT (DAW_SLOT_MEM + 7)

INTERNAL int64_t lookahead_ring(double sr) {
    return (int64_t)ceil(LOOKAHEAD_MAX_MS * 1e-3 * sr) + 2;
}

INTERNAL int64_t lookahead_frames(const float *slots, double sr) {
    return (int64_t)floor((double)slots[DAW_SLOT_TARGET + 2] * 1e-3 * sr + 0.5);
}

static inline double load_sum(const float *slots) {
    double s;
    memcpy(&s, slots + LA_SUM, sizeof s);
    return s;
}

static inline void store_sum(float *slots, double s) { memcpy(slots + LA_SUM, &s, sizeof s); }

INTERNAL void lookahead_run(daw_effect *fx, float *x0, float *x1, int32_t n, double sr) {
    float *s = fx->slots;
    const int64_t len = fx->memory_len / 3;
    float *delay0 = fx->memory, *delay1 = x1 ? fx->memory + fx->memory_len : NULL;
    float *need = fx->memory + len, *held = fx->memory + 2 * len;
    int64_t L = lookahead_frames(s, sr);
    if (L > len - 2) L = len - 2;
    if (L < 0) L = 0;
    if (s[LA_INIT] == 0.0f) {
        for (int64_t k = 0; k < len; k++) need[k] = held[k] = 1.0f;
        s[LA_W] = 0.0f;
        s[LA_OVER_AGE] = s[LA_HELD_AGE] = (float)len;
        s[LA_HELD] = 1.0f;
        s[LA_L] = -1.0f;
        s[LA_INIT] = 1.0f;
    }
    int64_t w = (int64_t)s[LA_W];
    double sum = load_sum(s);
    if (s[LA_L] != (float)L) {  /* a new lookahead: the sum over the new window */
        sum = 0.0;
        for (int64_t j = 0; j <= L; j++) sum += (double)held[(w - 1 - j + 2 * len) % len];
        s[LA_L] = (float)L;
        s[LA_OVER_AGE] = s[LA_HELD_AGE] = 0.0f;
    }
    const float ceiling = (float)pow(10.0, (double)s[DAW_SLOT_VALUE + 0] / 20.0);
    const double release = (double)s[DAW_SLOT_VALUE + 1] * 1e-3;
    const float rel = (float)exp(-1.0 / (release > 1e-4 ? release * sr : 1e-4 * sr));
    const double window = (double)(L + 1);
    float over_age = s[LA_OVER_AGE], held_age = s[LA_HELD_AGE], r = s[LA_HELD];
    const float cap = (float)len;
    for (int32_t i = 0; i < n; i++) {
        float peak = fabsf(x0[i]);
        if (x1) {
            const float other = fabsf(x1[i]);
            peak = peak > other ? peak : other;
        }
        const float needed = peak > ceiling ? ceiling / peak : 1.0f;
        need[w] = needed;
        over_age = needed < 1.0f ? 0.0f : (over_age < cap ? over_age + 1.0f : cap);
        float m = 1.0f;
        if (over_age <= (float)L)
            for (int64_t j = 0; j <= L; j++) {
                const float v = need[(w - j + len) % len];
                m = v < m ? v : m;
            }
        r = 1.0f - rel * (1.0f - r);
        r = r < m ? r : m;
        const float leaving = held[(w - L - 1 + 2 * len) % len];
        held[w] = r;
        held_age = r < 1.0f ? 0.0f : (held_age < cap ? held_age + 1.0f : cap);
        sum = sum + (double)r - (double)leaving;
        if (held_age > (float)L) sum = window;  /* the window is all ones: exact again */
        const float g = (float)(sum / window);
        const int64_t rd = (w - L + len) % len;
        delay0[w] = x0[i];
        const float a = delay0[rd] * g;
        x0[i] = a > ceiling ? ceiling : (a < -ceiling ? -ceiling : a);
        if (x1) {
            delay1[w] = x1[i];
            const float b = delay1[rd] * g;
            x1[i] = b > ceiling ? ceiling : (b < -ceiling ? -ceiling : b);
        }
        w = w + 1 == len ? 0 : w + 1;
    }
    s[LA_W] = (float)w;
    s[LA_OVER_AGE] = over_age;
    s[LA_HELD_AGE] = held_age;
    s[LA_HELD] = r;
    store_sum(s, sum);
}
