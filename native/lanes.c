/*
 * Insert chains of DAW_LANES mono tracks at once, one track per SIMD lane.
 *
 * A biquad or a compressor is a recursion: each sample waits for the last, so
 * one track keeps the CPU's multipliers mostly idle.  Eight tracks with the
 * same chain layout run their recursions side by side in one vector, which
 * hides that latency.  Each lane performs exactly the operations of the
 * one-track kernels in effects.c, in the same order (twins: reference.py).
 */
#include "internal.h"

typedef float vf __attribute__((vector_size(DAW_LANES * sizeof(float)), aligned(4)));
typedef int32_t vi __attribute__((vector_size(DAW_LANES * sizeof(int32_t)), aligned(4)));

static inline vf splat(float x) {
    vf v;
    for (int k = 0; k < DAW_LANES; k++) v[k] = x;
    return v;
}

static inline vf select_vf(vi mask, vf yes, vf no) {
    return (vf)(((vi)yes & mask) | ((vi)no & ~mask));
}

static inline vf v_log2(vf x) {
    const vi b = (vi)x;
    const vf e = __builtin_convertvector(((b >> 23) & 255) - 127, vf);
    const vf m = (vf)((b & 0x007FFFFF) | 0x3F800000) - 1.0f;
    vf p = splat(-0.025790712f);
    p = p * m + 0.121468526f;
    p = p * m - 0.277337223f;
    p = p * m + 0.457156131f;
    p = p * m - 0.718033203f;
    p = p * m + 1.44253476f;
    return e + p * m;
}

static inline vf v_exp2(vf x) {
    x = select_vf(x < -126.0f, splat(-126.0f), x);
    x = select_vf(x > 126.0f, splat(126.0f), x);
    const vf truncated = __builtin_convertvector(__builtin_convertvector(x, vi), vf);
    const vf fl = select_vf(truncated > x, truncated - 1.0f, truncated);
    const vf f = x - fl;
    vf p = splat(0.00187623429f);
    p = p * f + 0.00899259431f;
    p = p * f + 0.0558235814f;
    p = p * f + 0.240154545f;
    p = p * f + 0.693152965f;
    p = p * f + 0.999999927f;
    return (vf)((vi)p + (__builtin_convertvector(fl, vi) << 23));
}

static int lane_effect_ok(const daw_effect *fx) {
    return fx->enabled && effect_settled(fx) && !fx->key &&
           (fx->kind == DAW_FX_BIQUAD || fx->kind == DAW_FX_COMPRESSOR ||
            fx->kind == DAW_FX_GAIN);
}

INTERNAL int lanes_ready(const daw_track *tr, int32_t available) {
    if (available < DAW_LANES || tr[0].n_effects == 0) return 0;
    for (int k = 0; k < DAW_LANES; k++) {
        if (tr[k].channels != 1 || tr[k].n_effects != tr[0].n_effects) return 0;
        for (int32_t e = 0; e < tr[0].n_effects; e++)
            if (tr[k].effects[e].kind != tr[0].effects[e].kind ||
                !lane_effect_ok(&tr[k].effects[e]))
                return 0;
    }
    return 1;
}

/* Lanes of one effect slot: the effect at chain position e of each track. */
static inline float lane_slot(const daw_track *tr, int k, int32_t e, int slot) {
    return tr[k].effects[e].slots[slot];
}

static vf gather_slot(const daw_track *tr, int32_t e, int slot) {
    vf v;
    for (int k = 0; k < DAW_LANES; k++) v[k] = lane_slot(tr, k, e, slot);
    return v;
}

static void scatter_slot(daw_track *tr, int32_t e, int slot, vf v) {
    for (int k = 0; k < DAW_LANES; k++) tr[k].effects[e].slots[slot] = v[k];
}

static void lanes_biquads(daw_track *tr, int32_t e, int count, vf *restrict w, int32_t n) {
    vf b0[4], b1[4], b2[4], a1[4], a2[4], z0[4], z1[4];
    for (int s = 0; s < count; s++) {
        b0[s] = gather_slot(tr, e + s, DAW_SLOT_COEF + 0);
        b1[s] = gather_slot(tr, e + s, DAW_SLOT_COEF + 1);
        b2[s] = gather_slot(tr, e + s, DAW_SLOT_COEF + 2);
        a1[s] = gather_slot(tr, e + s, DAW_SLOT_COEF + 3);
        a2[s] = gather_slot(tr, e + s, DAW_SLOT_COEF + 4);
        z0[s] = gather_slot(tr, e + s, DAW_SLOT_MEM + 0);
        z1[s] = gather_slot(tr, e + s, DAW_SLOT_MEM + 1);
    }
    for (int32_t i = 0; i < n; i++) {
        vf v = w[i];
        for (int s = 0; s < count; s++) {
            const vf y = b0[s] * v + z0[s];
            z0[s] = b1[s] * v + z1[s] - a1[s] * y;
            z1[s] = b2[s] * v - a2[s] * y;
            v = y;
        }
        w[i] = v;
    }
    for (int s = 0; s < count; s++) {
        scatter_slot(tr, e + s, DAW_SLOT_MEM + 0, z0[s]);
        scatter_slot(tr, e + s, DAW_SLOT_MEM + 1, z1[s]);
    }
}

static void lanes_compressor(daw_track *tr, int32_t e, vf *restrict w, vf *restrict work,
                             int32_t n) {
    const vf threshold = gather_slot(tr, e, DAW_SLOT_VALUE + 0);
    const vf ratio = gather_slot(tr, e, DAW_SLOT_VALUE + 1);
    const vf knee = gather_slot(tr, e, DAW_SLOT_VALUE + 2);
    const vf makeup = gather_slot(tr, e, DAW_SLOT_VALUE + 5);
    const vf slope = 1.0f - 1.0f / select_vf(ratio > 1.0f, ratio, splat(1.0f));
    const vf half_knee = 0.5f * knee;
    const vi has_knee = knee > 0.0f;
    const vf inv_2knee = select_vf(has_knee, 1.0f / (2.0f * knee), splat(0.0f));
    const vi abs_mask = (vi)splat(-0.0f);
    for (int32_t i = 0; i < n; i++) {
        vf level = (vf)((vi)w[i] & ~abs_mask);
        level = select_vf(level > 1e-10f, level, splat(1e-10f));
        const vf over = LOG2_TO_DB * v_log2(level) - threshold;
        const vf in_knee = over + half_knee;
        vf red = slope * over;
        const vi inside = has_knee & (over > -half_knee) & (over < half_knee);
        red = select_vf(inside, slope * in_knee * in_knee * inv_2knee, red);
        red = select_vf(over <= -half_knee, splat(0.0f), red);
        work[i] = red;
    }
    const vf att = gather_slot(tr, e, DAW_SLOT_COEF + 0);
    const vf rel = gather_slot(tr, e, DAW_SLOT_COEF + 1);
    vf y = gather_slot(tr, e, DAW_SLOT_MEM + 0);
    for (int32_t i = 0; i < n; i++) {
        const vf c = work[i];
        const vf d = y - c;
        y = c + select_vf(d < 0.0f, att, rel) * d;
        work[i] = y;
    }
    scatter_slot(tr, e, DAW_SLOT_MEM + 0, y);
    for (int32_t i = 0; i < n; i++) w[i] *= v_exp2((makeup - work[i]) * DB_TO_LOG2);
}

INTERNAL void lanes_run_chain(daw_graph *g, daw_track *tr, int32_t frames,
                              float *lane_scratch) {
    vf *restrict w = (vf *)lane_scratch;
    vf *restrict work = w + g->max_block;
    for (int32_t i = 0; i < frames; i++)
        for (int k = 0; k < DAW_LANES; k++) w[i][k] = tr[k].buffer[i];
    const int32_t n = tr[0].n_effects;
    for (int32_t e = 0; e < n;) {
        const int32_t kind = tr[0].effects[e].kind;
        if (kind == DAW_FX_BIQUAD) {
            int count = 1;
            while (count < 4 && e + count < n && tr[0].effects[e + count].kind == DAW_FX_BIQUAD)
                count++;
            lanes_biquads(tr, e, count, w, frames);
            e += count;
        } else if (kind == DAW_FX_COMPRESSOR) {
            lanes_compressor(tr, e, w, work, frames);
            e++;
        } else { /* DAW_FX_GAIN, settled: a constant factor */
            const vf gain = gather_slot(tr, e, DAW_SLOT_COEF + 0);
            for (int32_t i = 0; i < frames; i++) w[i] *= gain;
            e++;
        }
    }
    for (int32_t i = 0; i < frames; i++)
        for (int k = 0; k < DAW_LANES; k++) tr[k].buffer[i] = w[i][k];
}
