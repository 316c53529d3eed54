/*
 * MIDI instruments: a subtractive synth and a sampler, rendered inside daw_render.
 *
 * Twin: dsp_core/reference_instruments.py (same layouts, same double formulas; the
 * twin vectorises over each voice's stretch of frames, so they agree to rounding).
 *
 * A block is cut at every event's frame: events act at their exact frame, the voices
 * render the stretches between.  Every voice is computed in double and added to the
 * float output voice by voice.  Oscillator phase and sample position are closed forms
 * of the frame inside a stretch (p0 + inc * k), so the block size does not matter.
 */
#include "internal.h"

/* params (derived in dsp_core/instrument_graph.py) */
enum { P_GAIN, P_BEND, P_A, P_D, P_S, P_R, P_OSC1, P_OSC2, P_DETUNE, P_MIX, P_CUTOFF, P_Q,
       P_FENV, P_FA, P_FD, P_FS, P_FR, P_INV_A, P_INV_D, P_INV_R, P_INV_FA, P_INV_FD,
       P_INV_FR };
/* voice slots */
enum { V_ACTIVE, V_KEY, V_CH, V_VEL, V_ON, V_OFF, V_REL, V_FREL, V_PH1, V_PH2, V_Z1, V_Z2,
       V_B0, V_B1, V_B2, V_A1, V_A2, V_ZONE, V_POS, V_HELD, V_SERIAL };
/* state slots (S_NO_CHASE: the project turned note chase off, set by the engine) */
enum { S_NEXT, S_CURSOR, S_SERIAL, S_BEND, S_VOL = S_BEND + 16, S_SUS = S_VOL + 16,
       S_NO_CHASE = DAW_INST_NO_CHASE };
_Static_assert(S_NO_CHASE == S_SUS + 16 && S_NO_CHASE < DAW_INST_STATE,
               "the no-chase slot follows the sustain pedals, inside the state");

#define FILTER_TICK 32
#define TWO_PI 6.283185307179586

/* An envelope's times (frames), sustain level and the times' reciprocals (0 for 0). */
typedef struct {
    double a, d, s, r, inv_a, inv_d, inv_r;
} adsr_times;

static inline adsr_times amp_times(const double *p) {
    const adsr_times t = {p[P_A], p[P_D], p[P_S], p[P_R], p[P_INV_A], p[P_INV_D], p[P_INV_R]};
    return t;
}

static inline adsr_times filter_times(const double *p) {
    const adsr_times t = {p[P_FA], p[P_FD], p[P_FS], p[P_FR], p[P_INV_FA], p[P_INV_FD],
                          p[P_INV_FR]};
    return t;
}

/* ADSR level `age` frames after note-on, before any release. */
static inline double adsr(double age, const adsr_times *t) {
    if (age < t->a) return age * t->inv_a;
    if (age < t->a + t->d) return 1.0 - (1.0 - t->s) * ((age - t->a) * t->inv_d);
    return t->s;
}

/* Level at frame f of an envelope released at `off` from level `rel` (off < 0: held). */
static inline double envelope(const double *v, double f, const adsr_times *t, double rel) {
    if (v[V_OFF] < 0.0) return adsr(f - v[V_ON], t);
    const double since = f - v[V_OFF];
    return since >= t->r ? 0.0 : rel * (1.0 - since * t->inv_r);
}

static void filter_coefficients(const daw_instrument *inst, double *v, double f, double sr) {
    const double *p = inst->params;
    const adsr_times ft = filter_times(p);
    const double fenv = envelope(v, f, &ft, v[V_FREL]);
    double cutoff = p[P_CUTOFF] * pow(2.0, p[P_FENV] * fenv);
    if (cutoff < 20.0) cutoff = 20.0;
    if (cutoff > 0.45 * sr) cutoff = 0.45 * sr;
    const double w = TWO_PI * cutoff / sr;
    const double alpha = sin(w) / (2.0 * p[P_Q]);
    const double cw = cos(w), a0 = 1.0 + alpha;
    v[V_B0] = (1.0 - cw) / 2.0 / a0;
    v[V_B1] = (1.0 - cw) / a0;
    v[V_B2] = v[V_B0];
    v[V_A1] = -2.0 * cw / a0;
    v[V_A2] = (1.0 - alpha) / a0;
}

static inline double frac(double x) { return x - floor(x); }

/* PolyBLEP: the residual that rounds a unit step off over one sample each side of a
 * phase wrap (dt: phase increment per frame), taking most of the aliasing away. */
static inline double blep(double t, double dt) {
    if (t < dt) {
        t = t / dt;
        return t + t - t * t - 1.0;
    }
    if (t > 1.0 - dt) {
        t = (t - 1.0) / dt;
        return t * t + t + t + 1.0;
    }
    return 0.0;
}

static inline double wave(double kind, double phase, double dt) {
    if (kind == 0.0) return 2.0 * phase - 1.0 - blep(phase, dt);
    if (kind == 1.0)
        return (phase < 0.5 ? 1.0 : -1.0) + blep(phase, dt) - blep(frac(phase + 0.5), dt);
    return sin(TWO_PI * phase);
}

/* The amplitude factors that stay put over a stretch: velocity, channel volume, gain. */
static inline double voice_scale(const daw_instrument *inst, const double *v) {
    return v[V_VEL] * inst->state[S_VOL + (int)v[V_CH]] * inst->params[P_GAIN];
}

/* Release end of a voice (frames from f0 it may still sound), INT64_MAX while held. */
static int64_t voice_left(const daw_instrument *inst, const double *v, int64_t f0) {
    if (v[V_OFF] < 0.0) return INT64_MAX;
    const double end = v[V_OFF] + inst->params[P_R];
    return end <= (double)f0 ? 0 : (int64_t)ceil(end - (double)f0);
}

static void synth_voice(const daw_instrument *inst, double *v, double sr, int64_t f0, int32_t n,
                        float *out) {
    const double *p = inst->params;
    const double bend = inst->state[S_BEND + (int)v[V_CH]];
    const double inc1 = 440.0 * pow(2.0, (v[V_KEY] - 69.0 + bend) / 12.0) / sr;
    const double inc2 = inc1 * p[P_DETUNE];
    const double scale = voice_scale(inst, v), mix = p[P_MIX];
    const int64_t left = voice_left(inst, v, f0);
    const int32_t live = left < n ? (int32_t)left : n;
    const adsr_times at = amp_times(p);
    const double w1 = p[P_OSC1], w2 = p[P_OSC2], ph1 = v[V_PH1], ph2 = v[V_PH2];
    const double rel = v[V_REL];
    double z1 = v[V_Z1], z2 = v[V_Z2];
    for (int32_t k = 0; k < live;) {
        /* one filter tick at a time: coefficients and memory stay in registers */
        const int64_t f = f0 + k;
        if ((f & (FILTER_TICK - 1)) == 0) filter_coefficients(inst, v, (double)f, sr);
        int32_t stop = k + (FILTER_TICK - (int32_t)(f & (FILTER_TICK - 1)));
        if (stop > live) stop = live;
        const double b0 = v[V_B0], b1 = v[V_B1], b2 = v[V_B2], a1 = v[V_A1], a2 = v[V_A2];
        for (; k < stop; k++) {
            const double x = (1.0 - mix) * wave(w1, frac(ph1 + inc1 * k), inc1) +
                             mix * wave(w2, frac(ph2 + inc2 * k), inc2);
            const double y = b0 * x + z1;
            z1 = b1 * x - a1 * y + z2;
            z2 = b2 * x - a2 * y;
            const double env = envelope(v, (double)(f0 + k), &at, rel);
            out[k] += (float)(y * env * scale);
        }
    }
    v[V_Z1] = z1;
    v[V_Z2] = z2;
    v[V_PH1] = frac(v[V_PH1] + inc1 * n);
    v[V_PH2] = frac(v[V_PH2] + inc2 * n);
    if (live < n) v[V_ACTIVE] = 0.0;
}

static void sampler_voice(const daw_instrument *inst, double *v, int64_t f0, int32_t n,
                          float *out) {
    const double *p = inst->params;
    const daw_zone *z = &inst->zones[(int)v[V_ZONE]];
    const double bend = inst->state[S_BEND + (int)v[V_CH]];
    const double ratio = pow(2.0, (v[V_KEY] - z->root + bend) / 12.0);
    const double scale = voice_scale(inst, v), last = (double)(z->length - 1);
    const int64_t left = voice_left(inst, v, f0);
    int32_t live = left < n ? (int32_t)left : n;
    const adsr_times at = amp_times(p);
    for (int32_t k = 0; k < live; k++) {
        const double pos = v[V_POS] + ratio * k;
        if (pos >= last) {
            live = k;
            break;
        }
        const int64_t i = (int64_t)pos;
        const double t = pos - (double)i;
        const double x = (double)z->data[i] + ((double)z->data[i + 1] - (double)z->data[i]) * t;
        const double env = envelope(v, (double)(f0 + k), &at, v[V_REL]);
        out[k] += (float)(x * env * scale);
    }
    v[V_POS] += ratio * n;
    if (live < n) v[V_ACTIVE] = 0.0;
}

static void release(daw_instrument *inst, double *v, double f) {
    const adsr_times at = amp_times(inst->params), ft = filter_times(inst->params);
    v[V_REL] = adsr(f - v[V_ON], &at);
    v[V_FREL] = adsr(f - v[V_ON], &ft);
    v[V_OFF] = f;
    v[V_HELD] = 0.0;
}

static int32_t zone_of(const daw_instrument *inst, int32_t key, int32_t velocity) {
    for (int32_t z = 0; z < inst->n_zones; z++) {
        const daw_zone *zone = &inst->zones[z];
        if (key >= zone->key_lo && key <= zone->key_hi && velocity >= zone->vel_lo &&
            velocity <= zone->vel_hi && zone->length >= 2)
            return z;
    }
    return -1;
}

/* A free voice, else the oldest released one, else the oldest. */
static double *free_voice(daw_instrument *inst) {
    double *best = NULL;
    int best_released = 0;
    for (int32_t i = 0; i < inst->n_voices; i++) {
        double *v = inst->voices + (size_t)i * DAW_VOICE_SLOTS;
        if (v[V_ACTIVE] == 0.0) return v;
        const int released = v[V_OFF] >= 0.0;
        if (!best || released > best_released ||
            (released == best_released && v[V_SERIAL] < best[V_SERIAL])) {
            best = v;
            best_released = released;
        }
    }
    return best;
}

/* Start a voice for `e`; returns it (NULL: no zone plays the note, or no voice). */
static double *note_on(daw_instrument *inst, const daw_midi_event *e, double sr) {
    int32_t zone = 0;
    if (inst->kind == DAW_INST_SAMPLER && (zone = zone_of(inst, e->key, e->value)) < 0)
        return NULL;
    double *v = free_voice(inst);
    if (!v) return NULL;
    memset(v, 0, DAW_VOICE_SLOTS * sizeof(double));
    v[V_ACTIVE] = 1.0;
    v[V_KEY] = e->key;
    v[V_CH] = e->channel & 15;  /* indexes state[S_VOL + ch]: kept in 0..15 here too */
    v[V_VEL] = e->value / 127.0;
    v[V_ON] = (double)e->frame;
    v[V_OFF] = -1.0;
    v[V_ZONE] = zone;
    v[V_SERIAL] = inst->state[S_SERIAL]++;
    if (inst->kind == DAW_INST_SYNTH) filter_coefficients(inst, v, (double)e->frame, sr);
    return v;
}

static void apply_event(daw_instrument *inst, const daw_midi_event *e, double sr, int notes) {
    double *state = inst->state;
    const int32_t ch = e->channel & 15;
    switch (e->kind) {
    case DAW_MIDI_NOTE_ON:
        if (notes) note_on(inst, e, sr);
        break;
    case DAW_MIDI_NOTE_OFF:
        if (!notes) break;
        for (int32_t i = 0; i < inst->n_voices; i++) {
            double *v = inst->voices + (size_t)i * DAW_VOICE_SLOTS;
            if (v[V_ACTIVE] == 0.0 || v[V_KEY] != e->key || v[V_CH] != ch || v[V_OFF] >= 0.0)
                continue;
            if (state[S_SUS + ch] != 0.0)
                v[V_HELD] = 1.0;
            else
                release(inst, v, (double)e->frame);
        }
        break;
    case DAW_MIDI_CC:
        if (e->key == 7) state[S_VOL + ch] = (e->value / 127.0) * (e->value / 127.0);
        if (e->key == 64) {
            state[S_SUS + ch] = e->value >= 64 ? 1.0 : 0.0;
            for (int32_t i = 0; notes && e->value < 64 && i < inst->n_voices; i++) {
                double *v = inst->voices + (size_t)i * DAW_VOICE_SLOTS;
                if (v[V_ACTIVE] != 0.0 && v[V_HELD] != 0.0 && v[V_CH] == ch)
                    release(inst, v, (double)e->frame);
            }
        }
        break;
    case DAW_MIDI_BEND:
        state[S_BEND + ch] = e->value / 8192.0 * inst->params[P_BEND];
        break;
    default:
        break;
    }
}

/* Note chase: every note sounding across `start` (its note-on before it, its note-off
 * after) starts there afresh, with its velocity, in event order.  Note-offs pair with the
 * note-ons of their channel and key first in, first out: the note-ons of a key that
 * remain after counting the note-offs up to `start` are the sounding ones.  A note whose
 * note-off came while the sustain pedal (CC 64 >= 64) was down, the pedal still down at
 * `start`, sounds too: it starts held by the pedal, released when the pedal goes up. */
static void chase_notes(daw_instrument *inst, int64_t start, double sr) {
    int32_t offs[16 * 128] = {0}, late[16 * 128] = {0}, rank[16 * 128] = {0};
    int32_t down[16];  /* the event that put each channel's pedal down (-1: it is up) */
    for (int32_t c = 0; c < 16; c++) down[c] = -1;
    int32_t n = 0;
    for (; n < inst->n_events && inst->events[n].frame <= start; n++) {
        const daw_midi_event *e = &inst->events[n];
        if (e->kind != DAW_MIDI_CC || e->key != 64) continue;
        const int32_t ch = e->channel & 15;
        if (e->value < 64) down[ch] = -1;
        else if (down[ch] < 0) down[ch] = n;
    }
    for (int32_t i = 0; i < n; i++) {
        const daw_midi_event *e = &inst->events[i];
        if (e->kind != DAW_MIDI_NOTE_OFF || e->key < 0 || e->key >= 128) continue;
        const int32_t ch = e->channel & 15, slot = ch * 128 + e->key;
        offs[slot]++;
        if (down[ch] >= 0 && i > down[ch]) late[slot]++;  /* held by the pedal since */
    }
    for (int32_t i = 0; i < n && inst->events[i].frame < start; i++) {
        const daw_midi_event *e = &inst->events[i];
        if (e->kind != DAW_MIDI_NOTE_ON || e->key < 0 || e->key >= 128) continue;
        const int32_t slot = (e->channel & 15) * 128 + e->key;
        const int32_t r = rank[slot]++;
        if (r < offs[slot] - late[slot]) continue;
        daw_midi_event at = *e;
        at.frame = start;
        double *v = note_on(inst, &at, sr);
        if (v && r < offs[slot]) v[V_HELD] = 1.0;
    }
}

/* A seek: silence, controllers back to rest, then chased up to `start`, then the notes
 * sounding across `start` started there (unless the project turned note chase off). */
static void seek(daw_instrument *inst, int64_t start, double sr) {
    double *state = inst->state;
    memset(inst->voices, 0, (size_t)inst->n_voices * DAW_VOICE_SLOTS * sizeof(double));
    for (int32_t c = 0; c < 16; c++) {
        state[S_BEND + c] = 0.0;
        state[S_VOL + c] = 1.0;
        state[S_SUS + c] = 0.0;
    }
    int32_t i = 0;
    for (; i < inst->n_events && inst->events[i].frame < start; i++)
        apply_event(inst, &inst->events[i], sr, 0);
    state[S_CURSOR] = i;
    if (state[S_NO_CHASE] == 0.0) chase_notes(inst, start, sr);
}

static void render_voices(daw_instrument *inst, double sr, int64_t f0, int32_t n, float *out) {
    for (int32_t i = 0; i < inst->n_voices; i++) {
        double *v = inst->voices + (size_t)i * DAW_VOICE_SLOTS;
        if (v[V_ACTIVE] == 0.0) continue;
        if (inst->kind == DAW_INST_SYNTH)
            synth_voice(inst, v, sr, f0, n, out);
        else
            sampler_voice(inst, v, f0, n, out);
    }
}

int daw_instrument_render(daw_instrument *inst, double sample_rate, int64_t start,
                          int32_t frames, float *out) {
    if (!inst || !inst->params || !inst->voices || !inst->state || !out ||
        (inst->n_events && !inst->events) || (inst->n_zones && !inst->zones))
        return DAW_ERR_NULL;
    if (frames < 0) return DAW_ERR_FRAMES;
    double *state = inst->state;
    if (state[S_NEXT] != (double)start) seek(inst, start, sample_rate);
    memset(out, 0, (size_t)frames * sizeof(float));
    const int64_t end = start + frames;
    int64_t pos = start;
    int32_t cursor = (int32_t)state[S_CURSOR];
    while (pos < end) {
        while (cursor < inst->n_events && inst->events[cursor].frame <= pos)
            apply_event(inst, &inst->events[cursor++], sample_rate, 1);
        const int64_t next = cursor < inst->n_events ? inst->events[cursor].frame : end;
        const int64_t stop = next < end ? next : end;
        render_voices(inst, sample_rate, pos, (int32_t)(stop - pos), out + (pos - start));
        pos = stop;
    }
    state[S_CURSOR] = cursor;
    state[S_NEXT] = (double)end;
    return DAW_OK;
}
