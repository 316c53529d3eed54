/*
 * Max Booster Studio mixing engine (float32): the plain mix, faders, clips and
 * the whole-graph render.  See engine.h for the API and dsp_core/reference.py
 * for the numpy twin of every function here.
 */
#include "internal.h"

/* ---------------------------------------------------------------- plain mix */

/* Tracks whose pan gains are computed at once (on the stack), and the frames one
 * pass over them covers (8 KiB of each track, the left and right sums in L1). */
#define MIX_BATCH 1024
#define MIX_CHUNK 2048
/* A piece of the frames handed to a thread is at least this many samples, and
 * each thread gets up to MIX_PIECES pieces. */
#define MIX_PARALLEL_SAMPLES (1 << 17)
#define MIX_PIECES 4
/* Thread boundaries fall on whole cache lines of the output. */
#define MIX_ALIGN 16
/* Tracks ahead whose next cache lines are prefetched, MIX_UNIT frames at a time. */
#define MIX_AHEAD 8
#define MIX_UNIT 64

typedef struct {
    const float *tracks;  /* row-major n_tracks x n_frames */
    int64_t n_frames;
    int64_t first, count; /* the tracks of this batch */
    const float *gl, *gr; /* their pan-law gains */
    float *out_l, *out_r;
    int32_t clear;        /* first batch: the output starts from zero */
} mix_batch;

static inline void pan_law(float gain, float pan, float *gl, float *gr) {
    const double p = pan < -1.0f ? -1.0 : (pan > 1.0f ? 1.0 : pan);
    const double angle = (p + 1.0) * M_PI / 4.0;
    *gl = (float)((double)gain * cos(angle));
    *gr = (float)((double)gain * sin(angle));
}

/* l += gl . x, r += gr . x over n frames of four tracks, in that order for every
 * frame.  `next` is where the tracks two groups on are read at the same frames
 * (NULL if none): each 8 KiB run of a track starts cold, and the hardware
 * prefetcher does not guess it, so it is prefetched a group ahead. */
static void mix_four(float *restrict l, float *restrict r, const float *restrict x0,
                     const float *restrict x1, const float *restrict x2,
                     const float *restrict x3, const float *gl, const float *gr, int64_t n,
                     const float *next, int64_t stride) {
    const float l0 = gl[0], l1 = gl[1], l2 = gl[2], l3 = gl[3];
    const float r0 = gr[0], r1 = gr[1], r2 = gr[2], r3 = gr[3];
    int64_t i = 0;
    for (; i + MIX_UNIT <= n; i += MIX_UNIT) {
        if (next)
            for (int k = 0; k < 4; k++)
                for (int64_t q = 0; q < MIX_UNIT; q += 16)
                    __builtin_prefetch(next + k * stride + i + q, 0, 0);
        for (int64_t j = i; j < i + MIX_UNIT; j++) {
            l[j] += l0 * x0[j] + l1 * x1[j] + l2 * x2[j] + l3 * x3[j];
            r[j] += r0 * x0[j] + r1 * x1[j] + r2 * x2[j] + r3 * x3[j];
        }
    }
    for (; i < n; i++) {
        l[i] += l0 * x0[i] + l1 * x1[i] + l2 * x2[i] + l3 * x3[i];
        r[i] += r0 * x0[i] + r1 * x1[i] + r2 * x2[i] + r3 * x3[i];
    }
}

static void mix_one(float *restrict l, float *restrict r, const float *restrict x, float g0,
                    float g1, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        l[i] += g0 * x[i];
        r[i] += g1 * x[i];
    }
}

/* Frames [f0, f1) of one batch: four tracks per pass over a chunk, then the rest one
 * by one.  Every frame sees the same operations in the same order wherever the
 * frame range starts, so any split over threads gives the same bits. */
static void mix_frames(const mix_batch *b, int64_t f0, int64_t f1) {
    const int64_t stride = b->n_frames;
    if (b->clear) {
        memset(b->out_l + f0, 0, (size_t)(f1 - f0) * sizeof(float));
        memset(b->out_r + f0, 0, (size_t)(f1 - f0) * sizeof(float));
    }
    for (int64_t c0 = f0; c0 < f1; c0 += MIX_CHUNK) {
        const int64_t n = min_i64(MIX_CHUNK, f1 - c0);
        float *l = b->out_l + c0, *r = b->out_r + c0;
        const float *base = b->tracks + b->first * stride + c0;
        int64_t t = 0;
        for (; t + 4 <= b->count; t += 4) {
            const float *x = base + t * stride;
            const float *next = t + MIX_AHEAD + 4 <= b->count ? x + MIX_AHEAD * stride : NULL;
            mix_four(l, r, x, x + stride, x + 2 * stride, x + 3 * stride, b->gl + t, b->gr + t,
                     n, next, stride);
        }
        for (; t < b->count; t++) mix_one(l, r, base + t * stride, b->gl[t], b->gr[t], n);
    }
}

/* Frame k * n / count of n, rounded down to whole cache lines of the output. */
static inline int64_t split_point(int64_t n, int32_t k, int32_t count) {
    if (k >= count) return n;
    return n / count * k / MIX_ALIGN * MIX_ALIGN;
}

static void mix_task(void *arg, int32_t k, int32_t count) {
    const mix_batch *b = arg;
    FTZ_BEGIN;
    mix_frames(b, split_point(b->n_frames, k, count), split_point(b->n_frames, k + 1, count));
    FTZ_END;
}

int daw_mix(const float *tracks, int64_t n_tracks, int64_t n_frames, const float *gains,
            const float *pans, float *out_l, float *out_r, int32_t threads) {
    if (!tracks || !gains || !pans || !out_l || !out_r) return DAW_ERR_NULL;
    if (n_tracks < 0 || n_frames < 0) return DAW_ERR_FRAMES;
    if (threads < 1 || threads > DAW_MAX_THREADS) return DAW_ERR_THREADS;
    /* Pieces of the frames, claimed by the threads one at a time: a few per thread,
     * so that a thread the system leaves waiting holds up little; none smaller than
     * pays for the hand-over.  The split does not change the result. */
    const int64_t pieces = max_i64(1, min_i64(min_i64(n_tracks * n_frames / MIX_PARALLEL_SAMPLES,
                                                      (int64_t)MIX_PIECES * threads),
                                              n_frames / MIX_ALIGN));
    float gl[MIX_BATCH], gr[MIX_BATCH];
    mix_batch b = {tracks, n_frames, 0, 0, gl, gr, out_l, out_r, 1};
    do {
        b.count = min_i64(MIX_BATCH, n_tracks - b.first);
        for (int64_t t = 0; t < b.count; t++)
            pan_law(gains[b.first + t], pans[b.first + t], &gl[t], &gr[t]);
        pool_run(mix_task, &b, (int32_t)pieces, threads, b.count * n_frames);
        b.first += b.count;
        b.clear = 0;
    } while (b.first < n_tracks);
    return DAW_OK;
}

/* ---------------------------------------------------------------- faders */

/* True when neither gain is gliding: the fader is a constant pair of gains.
 * (target L, R, end L, R) == (end L, R, start L, R), one vector compare on x86. */
_Static_assert(DAW_FADER_END == DAW_FADER_TARGET + 2 && DAW_FADER_START == DAW_FADER_END + 2,
               "fader_settled compares the fader slots pairwise");
static inline int fader_settled(const float *f) {
#if defined(__SSE__)
    const __m128 a = _mm_loadu_ps(f + DAW_FADER_TARGET), b = _mm_loadu_ps(f + DAW_FADER_END);
    return _mm_movemask_ps(_mm_cmpeq_ps(a, b)) == 15;
#else
    return f[DAW_FADER_START] == f[DAW_FADER_END] &&
           f[DAW_FADER_START + 1] == f[DAW_FADER_END + 1] &&
           f[DAW_FADER_END] == f[DAW_FADER_TARGET] &&
           f[DAW_FADER_END + 1] == f[DAW_FADER_TARGET + 1];
#endif
}

/* dst_l += gain_l(t) * src_l, dst_r += gain_r(t) * src_r, gains smoothed per
 * tick and interpolated linearly inside a tick. */
static void fader_apply(float *fader, const float *src_l, const float *src_r,
                        float *restrict dst_l, float *restrict dst_r, int32_t frames,
                        int32_t phase, float alpha) {
    float *start = fader + DAW_FADER_START;
    float *end = fader + DAW_FADER_END;
    const float *target = fader + DAW_FADER_TARGET;
    if (fader_settled(fader)) {
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

/* ---------------------------------------------------------------- automation */

/* log2(10) / 20: a gain in dB times this is its log2. */
#define AUTO_DB_LOG2 0.16609640474436813
/* Below 2^-126 (about -758 dB, or a static -inf fader) an automated gain is 0. */
#define AUTO_MIN_LOG2 -126.0

/* 10^(db/20) in float: the exponent's integer part in double, the fraction's 2^f by
 * fast_exp2's polynomial (relative error about 1e-7). */
static inline float db_gain(double db) {
    const double raw = db * AUTO_DB_LOG2;
    const int audible = raw >= AUTO_MIN_LOG2;  /* branch-free: the loops vectorize */
    const double x = audible ? raw : 0.0;
    const double fl = floor(x);
    const float f = (float)(x - fl);
    float p = 0.00187623429f;
    p = p * f + 0.00899259431f;
    p = p * f + 0.0558235814f;
    p = p * f + 0.240154545f;
    p = p * f + 0.693152965f;
    p = p * f + 0.999999927f;
    float_bits b;
    b.f = p;
    b.i += ((int32_t)fl) << 23;
    return audible ? b.f : 0.0f;
}

/* cos(x) for x in [0, pi/2]: Taylor to x^12 in float (error about 1e-7). */
static inline float cos_quarter(float x) {
    const float z = x * x;
    float c = -1.14707456e-11f;
    c = c * z + 2.08767570e-09f;
    c = c * z + -2.75573192e-07f;
    c = c * z + 2.48015873e-05f;
    c = c * z + -1.38888889e-03f;
    c = c * z + 4.16666667e-02f;
    c = c * z + -0.5f;
    return c * z + 1.0f;
}

/* Frames [start, start + frames) of a lane, segment by segment: calls
 * EMIT(i, value) for each block index i (value in double). */
#define LANE_EACH(ln, cursor, start, frames, EMIT)                                      \
    do {                                                                               \
        const int32_t n_ = (ln)->n_points;                                             \
        int32_t j_ = *(cursor);                                                        \
        if (j_ < 0 || j_ >= n_ || (ln)->frames[j_] > (start)) j_ = 0;                  \
        while (j_ + 1 < n_ && (ln)->frames[j_ + 1] <= (start)) j_++;                   \
        int32_t i_ = 0;                                                                \
        while (i_ < (frames)) {                                                        \
            const int64_t f_ = (start) + i_;                                           \
            while (j_ + 1 < n_ && (ln)->frames[j_ + 1] <= f_) j_++;                    \
            const int64_t f0_ = (ln)->frames[j_];                                      \
            const int64_t next_ = f_ < f0_ ? f0_ : (j_ + 1 < n_ ? (ln)->frames[j_ + 1] \
                                                             : (start) + (frames));    \
            const int32_t e_ = (int32_t)min_i64(next_ - (start), (frames));            \
            if (f_ < f0_ || j_ + 1 == n_ || (ln)->hold[j_]) {                          \
                const double v_ = (ln)->values[j_];                                    \
                for (int32_t i = i_; i < e_; i++) EMIT(i, v_);                         \
            } else {                                                                   \
                const double v0_ = (ln)->values[j_], dv_ = (ln)->values[j_ + 1] - v0_; \
                const double len_ = (double)((ln)->frames[j_ + 1] - f0_);              \
                for (int32_t i = i_; i < e_; i++)                                      \
                    EMIT(i, v0_ + dv_ * ((double)((start) + i - f0_) / len_));         \
            }                                                                          \
            i_ = e_;                                                                   \
        }                                                                              \
        *(cursor) = j_;                                                                \
    } while (0)

/* The block's L/R fader gains of an automated track into a->gains; the fader's
 * slots end at the last frame's gains. */
static void automation_gains(daw_automation *a, int32_t channels, float *fader, int64_t start,
                             int32_t frames, int32_t max_block) {
    float *restrict gl = a->gains, *restrict gr = a->gains + max_block;
#define EMIT_GAIN(i, v) (gl[i] = db_gain(v))
    LANE_EACH(&a->gain, &a->cursor[0], start, frames, EMIT_GAIN);
#undef EMIT_GAIN
#define EMIT_MUTE(i, v) (gl[i] = (v) >= 0.5 ? 0.0f : gl[i])
    LANE_EACH(&a->mute, &a->cursor[2], start, frames, EMIT_MUTE);
#undef EMIT_MUTE
    /* the pan lane's values (float) into gr, then the pan law over the block in
     * one branch-free loop the compiler vectorizes */
#define EMIT_PAN(i, v) (gr[i] = (v) < -1.0 ? -1.0f : ((v) > 1.0 ? 1.0f : (float)(v)))
    LANE_EACH(&a->pan, &a->cursor[1], start, frames, EMIT_PAN);
#undef EMIT_PAN
    const float scale = a->scale, quarter = (float)(M_PI / 4.0);
    if (channels == 1) {
        for (int32_t i = 0; i < frames; i++) {
            const float p = gr[i], g = gl[i];
            const float cl = p >= 1.0f ? 0.0f : cos_quarter((1.0f + p) * quarter);
            const float cr = p <= -1.0f ? 0.0f : cos_quarter((1.0f - p) * quarter);
            gr[i] = (g * cr) * scale;
            gl[i] = (g * cl) * scale;
        }
    } else {
        for (int32_t i = 0; i < frames; i++) {
            const float p = gr[i], g = gl[i];
            const float cl = p > 0.0f ? 1.0f - p : 1.0f;
            const float cr = p < 0.0f ? 1.0f + p : 1.0f;
            gr[i] = (g * cr) * scale;
            gl[i] = (g * cl) * scale;
        }
    }
    if (frames > 0) {
        fader[DAW_FADER_END] = fader[DAW_FADER_START] = gl[frames - 1];
        fader[DAW_FADER_END + 1] = fader[DAW_FADER_START + 1] = gr[frames - 1];
    }
}

/* The automation of track tr, or NULL. */
static inline daw_automation *track_automation(const daw_graph *g, const daw_track *tr) {
    return g->automation ? g->automation[tr - g->tracks] : NULL;
}

/* dst += gains * src, per frame (an automated fader). */
static void gains_apply(const float *gl, const float *gr, const float *src_l, const float *src_r,
                        float *restrict dst_l, float *restrict dst_r, int32_t frames) {
    for (int32_t i = 0; i < frames; i++) {
        dst_l[i] += gl[i] * src_l[i];
        dst_r[i] += gr[i] * src_r[i];
    }
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
    const int64_t head = max_i64(clip->fade_in, clip->xfade_in_at + clip->xfade_in);
    const int64_t tail = max_i64(clip->fade_out, clip->xfade_out);
    span->in_end = min_i64(max_i64(span->s, clip->position + head), span->e);
    span->out_start =
        max_i64(min_i64(span->e, clip->position + clip->length - tail), span->in_end);
    return 1;
}

/* The rising half of the equal-power crossfade at step j of n (double, then float). */
static inline float xfade_gain(int64_t j, int64_t n) {
    return (float)sin(1.5707963267948966 * ((double)j + 0.5) / (double)n);
}

static inline float clip_envelope(const daw_clip *clip, int64_t k) {
    const int64_t left = clip->length - 1 - k;
    float env = clip->gain;
    if (k < clip->fade_in) env = env * ((float)k / (float)clip->fade_in);
    if (left < clip->fade_out) env = env * ((float)left / (float)clip->fade_out);
    if (k < clip->xfade_in_at + clip->xfade_in)
        env = k < clip->xfade_in_at ? 0.0f
                                    : env * xfade_gain(k - clip->xfade_in_at, clip->xfade_in);
    if (left < clip->xfade_out) env = env * xfade_gain(left, clip->xfade_out);
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

/* The instrument of track tr, or NULL (MIDI tracks: native/instruments.c). */
static inline daw_instrument *track_instrument(const daw_graph *g, const daw_track *tr) {
    return g->instruments ? g->instruments[tr - g->tracks] : NULL;
}

/* A MIDI track's instrument output, added to both channels of its buffer. */
static void instrument_input(daw_graph *g, daw_instrument *inst, int64_t start, int32_t frames,
                             float *b0, float *b1) {
    if (daw_instrument_render(inst, g->sample_rate, start, frames, inst->scratch) != DAW_OK)
        return;  /* only NULL pointers fail, and the builder sets them all */
    const float *x = inst->scratch;
    for (int32_t i = 0; i < frames; i++) b0[i] += x[i];
    if (b1 != b0)
        for (int32_t i = 0; i < frames; i++) b1[i] += x[i];
}

/* Clips of one block into the track's buffer. */
static void track_input(daw_graph *g, daw_track *tr, int64_t start, int32_t frames) {
    float *b0 = tr->buffer;
    float *b1 = tr->channels == 2 ? tr->buffer + g->max_block : tr->buffer;
    memset(b0, 0, (size_t)frames * sizeof(float));
    if (tr->channels == 2) memset(b1, 0, (size_t)frames * sizeof(float));
    for (int32_t c = 0; c < tr->n_clips; c++) {
        const daw_clip *clip = &tr->clips[c];
        if (clip->position >= start + frames) break;
        clip_read(clip, tr->channels, start, frames, b0, b1);
    }
    daw_instrument *inst = track_instrument(g, tr);
    if (inst) instrument_input(g, inst, start, frames, b0, b1);
}

static inline float *bus_buffer(const daw_graph *g, const mix_target *to, int32_t b) {
    return to->buses ? to->buses + (size_t)b * 2 * g->max_block : g->buses[b].buffer;
}

static int track_output(daw_graph *g, const mix_target *to, daw_track *tr, int64_t start,
                        int32_t frames, int32_t phase, float alpha);

static int render_track(daw_graph *g, const mix_target *to, daw_track *tr, int64_t start,
                        int32_t frames, int32_t phase, float alpha) {
    const int32_t mb = g->max_block;
    const float *f = tr->fader;
    if (tr->n_effects == 0 && tr->n_sends == 0 && !track_automation(g, tr) &&
        !track_instrument(g, tr) && fader_settled(f)) {
        /* plain track with a settled fader: clips straight into the master bus */
        const float gl = f[DAW_FADER_END], gr = f[DAW_FADER_END + 1];
        if (gl == 0.0f && gr == 0.0f) return DAW_OK;
        for (int32_t c = 0; c < tr->n_clips; c++) {
            const daw_clip *clip = &tr->clips[c];
            if (clip->position >= start + frames) break;
            clip_mix(clip, tr->channels, start, frames, gl, gr, to->master, to->master + mb);
        }
        return DAW_OK;
    }
    track_input(g, tr, start, frames);
    const int rc = run_chain(tr->effects, tr->n_effects, tr->buffer,
                             tr->channels == 2 ? tr->buffer + mb : NULL, tr->channels, frames,
                             g->sample_rate, phase, to->scratch);
    if (rc != DAW_OK) return rc;
    return track_output(g, to, tr, start, frames, phase, alpha);
}

/* Sends and fader of a track whose buffer holds this block's post-insert audio. */
static int track_output(daw_graph *g, const mix_target *to, daw_track *tr, int64_t start,
                        int32_t frames, int32_t phase, float alpha) {
    const int32_t mb = g->max_block;
    float *post_l = to->scratch + mb, *post_r = to->scratch + 2 * mb;
    float *b0 = tr->buffer;
    float *b1 = tr->channels == 2 ? tr->buffer + mb : tr->buffer;
    int has_post = 0;
    for (int32_t s = 0; s < tr->n_sends; s++) {
        daw_send *send = &tr->sends[s];
        if (send->bus < 0 || send->bus >= g->n_buses) return DAW_ERR_BUS;
        if (send->pre_fader) {
            float *bus = bus_buffer(g, to, send->bus);
            fader_apply(send->fader, b0, b1, bus, bus + mb, frames, phase, alpha);
        } else {
            has_post = 1;
        }
    }
    float *master_l = to->master, *master_r = to->master + mb;
    daw_automation *a = track_automation(g, tr);
    if (a) automation_gains(a, tr->channels, tr->fader, start, frames, mb);
    if (!has_post) {
        if (a)
            gains_apply(a->gains, a->gains + mb, b0, b1, master_l, master_r, frames);
        else
            fader_apply(tr->fader, b0, b1, master_l, master_r, frames, phase, alpha);
        return DAW_OK;
    }
    memset(post_l, 0, (size_t)frames * sizeof(float));
    memset(post_r, 0, (size_t)frames * sizeof(float));
    if (a)
        gains_apply(a->gains, a->gains + mb, b0, b1, post_l, post_r, frames);
    else
        fader_apply(tr->fader, b0, b1, post_l, post_r, frames, phase, alpha);
    for (int32_t i = 0; i < frames; i++) {
        master_l[i] += post_l[i];
        master_r[i] += post_r[i];
    }
    for (int32_t s = 0; s < tr->n_sends; s++) {
        daw_send *send = &tr->sends[s];
        if (send->pre_fader) continue;
        float *bus = bus_buffer(g, to, send->bus);
        fader_apply(send->fader, post_l, post_r, bus, bus + mb, frames, phase, alpha);
    }
    return DAW_OK;
}

/* ---------------------------------------------------------------- plain tracks */

/* Read-ahead: while a block is mixed, the first READ_AHEAD_BYTES of what each
 * track will read in the next block are requested into L2 (prefetcht2), so that
 * block finds them there.  Blocks follow each other during playback and bounces;
 * after a seek the first block reads without it.  A 64-frame block reads 256
 * bytes per track from a different place each: without read-ahead the memory
 * system sees only the few tracks the CPU is working on at once. */
#define READ_AHEAD_BYTES 512
#define READ_AHEAD_LOCALITY 1

/* every cache line of [p, p + bytes) */
static inline void prefetch_lines(const float *p, int64_t bytes) {
    const uintptr_t end = (uintptr_t)p + (uintptr_t)bytes;
    for (uintptr_t q = (uintptr_t)p & ~(uintptr_t)63; q < end; q += 64)
        __builtin_prefetch((const void *)q, 0, READ_AHEAD_LOCALITY);
}

/* The block [start, start + frames) of a track that is not plain: its first clip
 * there, into L2. */
static void prefetch_track(const daw_track *tr, int64_t start, int32_t frames) {
    for (int32_t c = 0; c < tr->n_clips; c++) {
        const daw_clip *clip = &tr->clips[c];
        if (clip->position >= start + frames) break;
        if (clip->position + clip->length <= start) continue;
        const int64_t k = max_i64(start - clip->position, 0) + clip->offset;
        const int64_t bytes = min_i64((int64_t)frames * 4, READ_AHEAD_BYTES);
        for (int ch = 0; ch < clip->channels; ch++)
            prefetch_lines(clip->data + ch * clip->stride + k, bytes);
        break;
    }
}

/* A plain track in a block: mono, no inserts or sends, settled fader, and one
 * mono clip covering the block with no fade inside it.  Its daw_plain remembers
 * the span of the timeline where that clip is the only one and has no fade, so
 * that finding a plain block there is two compares and a fader check. */
enum { PLAIN_UNKNOWN = 0, PLAIN_SPAN = 1, PLAIN_NEVER = 2 };

/* Look at the clips around [start, start + frames): 1 and memo filled in if one
 * clip alone covers it without fades. */
static int plain_span(const daw_track *tr, int64_t start, int32_t frames, daw_plain *memo) {
    memo->state = PLAIN_UNKNOWN;
    if ((tr->channels - 1) | tr->n_effects | tr->n_sends) {
        memo->state = PLAIN_NEVER;
        return 0;
    }
    const daw_clip *found = NULL;
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    for (int32_t c = 0; c < tr->n_clips; c++) {
        const daw_clip *clip = &tr->clips[c];
        if (clip->position >= start + frames) {  /* sorted: the first clip after the block */
            hi = clip->position;
            break;
        }
        if (clip->position + clip->length <= start) {
            lo = max_i64(lo, clip->position + clip->length);
            continue;
        }
        if (found) return 0;
        found = clip;
    }
    if (!found || found->channels != 1) return 0;
    lo = max_i64(lo, found->position +
                         max_i64(found->fade_in, found->xfade_in_at + found->xfade_in));
    hi = min_i64(hi, found->position + found->length - max_i64(found->fade_out,
                                                                 found->xfade_out));
    if (lo > start || hi < start + frames) return 0;
    memo->source = found->data + found->offset;
    memo->position = found->position;
    memo->lo = lo;
    memo->hi = hi;
    memo->gain = found->gain;
    memo->state = PLAIN_SPAN;
    return 1;
}

/* A plain track whose fader is at zero adds nothing: x = `silent`. */
static const float silent[1];

/* The plan of track t in this block, or x = NULL when it is not plain. */
static inline plain_plan plain_plan_of(const daw_graph *g, int32_t t, int64_t start,
                                       int32_t frames) {
    const plain_plan none = {NULL, 0.0f, 0.0f};
    /* An instrument track is never plain: its voices must run (and advance S_NEXT)
     * every block, even under a silent fader or over one plain audio clip. */
    if (g->instruments && g->instruments[t]) return none;
    const daw_track *tr = &g->tracks[t];
    daw_plain local = {0}, *memo = g->plain ? &g->plain[t] : &local;
    if (memo->state == PLAIN_NEVER) return none;
    if ((memo->state != PLAIN_SPAN || start < memo->lo || start + frames > memo->hi) &&
        !plain_span(tr, start, frames, memo))
        return none;
    const float *f = tr->fader;
    if (!fader_settled(f) || (g->automation && g->automation[t])) return none;
    const float gl = f[DAW_FADER_END], gr = f[DAW_FADER_END + 1];
    if (gl == 0.0f && gr == 0.0f) {
        const plain_plan quiet = {silent, 0.0f, 0.0f};
        return quiet;
    }
    const float *x = memo->source + (start - memo->position);
    if (start + 2 * (int64_t)frames <= memo->hi)
        prefetch_lines(x + frames, min_i64((int64_t)frames * 4, READ_AHEAD_BYTES));
    const plain_plan plan = {x, gl * memo->gain, gr * memo->gain};
    return plan;
}

/* Plain tracks mixed in one pass: their sums stay in registers (plain.c).  A pass
 * reads its tracks side by side, a tile at a time; more than about 2,048 samples'
 * worth of tracks at once is more streams than the hardware prefetchers follow
 * (measured: 32 tracks at 64 frames, 16 at 128, 8 from 256). */
#define PLAIN_RUN 32
#define PLAIN_RUN_MIN 8
#define FADER_AHEAD 16
#define PLAIN_RUN_SAMPLES 2048

/* Tracks [lo, hi) into one thread's target, in order. */
static int render_tracks(daw_graph *g, const mix_target *to, int32_t lo, int32_t hi,
                         int64_t start, int32_t frames, int32_t phase, float alpha) {
    plain_plan run[PLAIN_RUN];
    const int32_t run_max =
        frames <= PLAIN_RUN_SAMPLES / PLAIN_RUN
            ? PLAIN_RUN
            : (frames >= PLAIN_RUN_SAMPLES / PLAIN_RUN_MIN ? PLAIN_RUN_MIN
                                                           : PLAIN_RUN_SAMPLES / frames);
    int32_t n = 0;
    int rc = DAW_OK;
    float *l = to->master, *r = to->master + g->max_block;
    for (int32_t t = lo; t < hi && rc == DAW_OK;) {
        /* faders are small arrays of their own, scattered: fetch them ahead */
        if (t + FADER_AHEAD < hi) __builtin_prefetch(g->tracks[t + FADER_AHEAD].fader, 0, 3);
        const plain_plan p = plain_plan_of(g, t, start, frames);
        if (p.x) {
            if (p.x != silent) run[n++] = p;
            if (n == run_max) {
                mix_plain_run(l, r, run, n, frames);
                n = 0;
            }
            t++;
            continue;
        }
        if (n) {
            mix_plain_run(l, r, run, n, frames);
            n = 0;
        }
        if (lanes_ready(&g->tracks[t], hi - t)) {
            for (int32_t k = 0; k < DAW_LANES; k++) {
                track_input(g, &g->tracks[t + k], start, frames);
                prefetch_track(&g->tracks[t + k], start + frames, frames);
            }
            lanes_run_chain(g, &g->tracks[t], frames, to->lanes);
            for (int32_t k = 0; k < DAW_LANES && rc == DAW_OK; k++)
                rc = track_output(g, to, &g->tracks[t + k], start, frames, phase, alpha);
            t += DAW_LANES;
            continue;
        }
        prefetch_track(&g->tracks[t], start + frames, frames);
        rc = render_track(g, to, &g->tracks[t], start, frames, phase, alpha);
        t++;
    }
    if (n && rc == DAW_OK) mix_plain_run(l, r, run, n, frames);
    return rc;
}

/* One thread's share of a block: a contiguous run of tracks into its own master
 * and bus accumulators (in g->thread_scratch). */
typedef struct {
    daw_graph *g;
    int64_t start;
    int32_t frames, phase, chunk;
    float alpha;
    size_t per_thread, bus_floats;
    int rcs[DAW_MAX_THREADS];
} render_job;

static void render_task(void *arg, int32_t k, int32_t count) {
    (void)count;
    render_job *job = arg;
    daw_graph *g = job->g;
    const int32_t mb = g->max_block;
    FTZ_BEGIN;
    float *base = g->thread_scratch + (size_t)k * job->per_thread;
    const mix_target to = {base, base + 2 * mb, base + 2 * mb + job->bus_floats,
                           base + 5 * mb + job->bus_floats};
    for (int32_t c = 0; c < 2 + 2 * g->n_buses; c++)  /* master L, R, then each bus's L, R */
        memset(base + (size_t)c * mb, 0, (size_t)job->frames * sizeof(float));
    const int32_t lo = k * job->chunk < g->n_tracks ? k * job->chunk : g->n_tracks;
    const int32_t hi = lo + job->chunk < g->n_tracks ? lo + job->chunk : g->n_tracks;
    job->rcs[k] = render_tracks(g, &to, lo, hi, job->start, job->frames, job->phase, job->alpha);
    FTZ_END;
}

/* A block split over threads pays from about this many track frames on; below it
 * the shares run one after the other on the calling thread (same result). */
#define RENDER_PARALLEL_SAMPLES (1 << 13)

/* Every track into the master and bus buffers, split over g->n_threads threads
 * when there are enough tracks; each share sums into its own accumulators, which
 * are added up at the end in share order, so the result depends on the thread
 * count but not on which threads ran the shares. */
static int render_all_tracks(daw_graph *g, int64_t start, int32_t frames, int32_t phase,
                             float alpha) {
    const int32_t mb = g->max_block;
    int32_t threads = g->n_threads < DAW_MAX_THREADS ? g->n_threads : DAW_MAX_THREADS;
    if (threads <= 1 || !g->thread_scratch || g->n_tracks < 4 * DAW_LANES) {
        const mix_target to = {g->master->buffer, NULL, g->scratch, g->lane_scratch};
        return render_tracks(g, &to, 0, g->n_tracks, start, frames, phase, alpha);
    }
    render_job job = {g, start, frames, phase, 0, alpha, 0, 0, {0}};
    job.bus_floats = (size_t)2 * g->n_buses * mb;
    job.per_thread = (size_t)(5 + 2 * DAW_LANES) * mb + job.bus_floats;
    job.chunk = (g->n_tracks + threads - 1) / threads;
    job.chunk = (job.chunk + DAW_LANES - 1) / DAW_LANES * DAW_LANES;
    if ((int64_t)g->n_tracks * frames >= RENDER_PARALLEL_SAMPLES) {
        pool_run(render_task, &job, threads, threads, (int64_t)g->n_tracks * frames);
    } else {
        for (int32_t k = 0; k < threads; k++) render_task(&job, k, threads);
    }
    for (int32_t k = 0; k < threads; k++) {
        if (job.rcs[k] != DAW_OK) return job.rcs[k];
        const float *base = g->thread_scratch + (size_t)k * job.per_thread;
        for (int32_t c = 0; c < 2 + 2 * g->n_buses; c++) {
            float *restrict dst = c < 2 ? g->master->buffer + (size_t)c * mb
                                        : g->buses[(c - 2) / 2].buffer + (size_t)(c % 2) * mb;
            const float *restrict src = base + (size_t)c * mb;
            for (int32_t i = 0; i < frames; i++) dst[i] += src[i];
        }
    }
    return DAW_OK;
}

/* ---------------------------------------------------------------- order and latency */

/* x's channels (rows `stride` floats apart) delayed in place by d->delay frames. */
static void delay_apply(daw_delay *d, float *x, int32_t channels, int64_t stride,
                        int32_t frames) {
    if (d->delay <= 0 || !d->memory || !d->write || d->length <= d->delay) return;
    const int64_t len = d->length, delay = d->delay;
    const int64_t w0 = *d->write >= 0 && *d->write < len ? *d->write : 0;
    int64_t w = w0;
    for (int32_t c = 0; c < channels; c++) {
        float *restrict ring = d->memory + (size_t)c * len;
        float *restrict y = x + (size_t)c * stride;
        w = w0;
        int64_t r = w - delay < 0 ? w - delay + len : w - delay;
        for (int32_t i = 0; i < frames; i++) {
            ring[w] = y[i];
            y[i] = ring[r];
            w = w + 1 == len ? 0 : w + 1;
            r = r + 1 == len ? 0 : r + 1;
        }
    }
    *d->write = w;
}

/* A sidechain's key for this block: the source's post-insert signal, delayed. */
static void key_fill(daw_key *k, int32_t mb, int32_t frames) {
    const float *s0 = k->source, *s1 = k->channels == 2 ? k->source + mb : k->source;
    memcpy(k->key, s0, (size_t)frames * sizeof(float));
    memcpy(k->key + mb, s1, (size_t)frames * sizeof(float));
    delay_apply(&k->delay, k->key, 2, mb, frames);
}

/* An aux bus step of a schedule: its chain, the keys it is the source of, its
 * alignment delay, its fader into bus_sum. */
static int render_scheduled_bus(daw_graph *g, daw_run *step, int32_t frames, int32_t phase,
                                float alpha) {
    daw_schedule *s = g->schedule;
    const int32_t mb = g->max_block, b = step->bus;
    if (b >= g->n_buses || !s->bus_sum) return DAW_ERR_BUS;
    daw_bus *bus = &g->buses[b];
    const int rc = run_chain(bus->effects, bus->n_effects, bus->buffer, bus->buffer + mb, 2,
                             frames, g->sample_rate, phase, g->scratch);
    if (rc != DAW_OK) return rc;
    for (int32_t j = 0; j < step->n_keys; j++) key_fill(&step->keys[j], mb, frames);
    if (s->bus_delays) delay_apply(&s->bus_delays[b], bus->buffer, 2, mb, frames);
    fader_apply(bus->fader, bus->buffer, bus->buffer + mb, s->bus_sum, s->bus_sum + mb, frames,
                phase, alpha);
    return DAW_OK;
}

/* A track on its own (a key source, or automated with latency): clips, chain, its
 * keys, its output delay, sends and fader, the fader's automation read where the
 * track's output is on the timeline. */
static int render_scheduled_source(daw_graph *g, const mix_target *to, daw_run *step,
                                   int64_t at, int32_t frames, int32_t phase, float alpha) {
    const int32_t mb = g->max_block;
    daw_track *tr = &g->tracks[step->first];
    track_input(g, tr, at, frames);
    const int rc = run_chain(tr->effects, tr->n_effects, tr->buffer,
                             tr->channels == 2 ? tr->buffer + mb : NULL, tr->channels, frames,
                             g->sample_rate, phase, to->scratch);
    if (rc != DAW_OK) return rc;
    for (int32_t j = 0; j < step->n_keys; j++) key_fill(&step->keys[j], mb, frames);
    delay_apply(&step->out_delay, tr->buffer, tr->channels, mb, frames);
    return track_output(g, to, tr, at + step->offset - step->automation_offset, frames, phase,
                        alpha);
}

/* A graph with sidechains or latency: its steps in order (runs of tracks, each
 * reading its clips at its offset; key sources; buses), then the direct-sum delay
 * and the buses' sum into the master, on the calling thread. */
static int render_scheduled(daw_graph *g, int64_t start, int32_t frames, int32_t phase,
                            float alpha) {
    daw_schedule *s = g->schedule;
    const int32_t mb = g->max_block;
    const mix_target to = {g->master->buffer, NULL, g->scratch, g->lane_scratch};
    int rc = DAW_OK;
    if (s->bus_sum) {
        memset(s->bus_sum, 0, (size_t)frames * sizeof(float));
        memset(s->bus_sum + mb, 0, (size_t)frames * sizeof(float));
    }
    for (int32_t k = 0; k < s->n_runs && rc == DAW_OK; k++) {
        daw_run *step = &s->runs[k];
        if (step->bus >= 0) {
            rc = render_scheduled_bus(g, step, frames, phase, alpha);
            continue;
        }
        if (step->first < 0 || step->count < 1 || step->first + step->count > g->n_tracks)
            return DAW_ERR_FRAMES;
        const int64_t at = start - step->offset;
        if (step->own_buffer)
            rc = render_scheduled_source(g, &to, step, at, frames, phase, alpha);
        else
            rc = render_tracks(g, &to, step->first, step->first + step->count, at, frames,
                               phase, alpha);
    }
    if (rc != DAW_OK) return rc;
    delay_apply(&s->direct, g->master->buffer, 2, mb, frames);
    if (s->bus_sum)
        for (int32_t i = 0; i < 2 * mb; i += mb)
            for (int32_t f = 0; f < frames; f++) g->master->buffer[i + f] += s->bus_sum[i + f];
    return DAW_OK;
}

int daw_render(daw_graph *g, int64_t start, int32_t frames, float *out_l, float *out_r) {
    if (!g || !g->master || !g->scratch || !g->lane_scratch || !out_l || !out_r)
        return DAW_ERR_NULL;
    if (frames < 0 || frames > g->max_block) return DAW_ERR_FRAMES;
    const int32_t mb = g->max_block;
    const int32_t phase = (int32_t)(g->frames_done % DAW_TICK);
    const float alpha = tick_alpha(g->sample_rate);
    FTZ_BEGIN;
    memset(g->master->buffer, 0, (size_t)2 * mb * sizeof(float));
    for (int32_t b = 0; b < g->n_buses; b++)
        memset(g->buses[b].buffer, 0, (size_t)2 * mb * sizeof(float));
    int rc = g->schedule ? render_scheduled(g, start, frames, phase, alpha)
                         : render_all_tracks(g, start, frames, phase, alpha);
    for (int32_t b = 0; b < g->n_buses && rc == DAW_OK && !g->schedule; b++) {
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
