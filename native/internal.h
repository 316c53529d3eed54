/*
 * Internal helpers shared by the engine's C files (not part of the API).
 * Everything here has a twin in dsp_core/reference.py.
 */
#ifndef DAW_INTERNAL_H
#define DAW_INTERNAL_H

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

#define INTERNAL __attribute__((visibility("hidden")))

/* effects.c */
INTERNAL void biquad_design(int shape, double freq, double q, double gain_db, double sr,
                            float *c);
INTERNAL int effect_settled(const daw_effect *fx);
INTERNAL void biquad_cascade_any(daw_effect *const *fx, int count, int mem_offset, float *x,
                                 int32_t n);
INTERNAL int run_chain(daw_effect *effects, int32_t n, float *ch0, float *ch1, int32_t channels,
                       int32_t frames, double sr, int32_t phase, float *scratch);

/* reverb.c: a Freeverb-style network per channel (8 damped combs, 4 allpasses) fed by
 * one pre-delay line.  Each memory row starts with REVERB_HEADER floats of state
 * (comb filter memories, read/write indices), then the comb, allpass and pre-delay
 * buffers; twin: dsp_core/reference_reverb.py. */
#define REVERB_COMBS 8
#define REVERB_ALLPASSES 4
#define REVERB_HEADER 32
#define REVERB_SPREAD 23
#define REVERB_TUNING_RATE 44100.0
#define REVERB_MAX_PRE_MS 250.0
#define REVERB_INPUT_GAIN 0.03f
#define REVERB_WET_SCALE 3.0
INTERNAL int64_t reverb_memory_length(double sr);
INTERNAL void reverb_coefficients(float *slots, double sr);
INTERNAL void reverb_run(daw_effect *fx, float *x0, float *x1, int32_t n, double sr);

/* modulation.c: chorus and flanger, one LFO-modulated fractional delay. */
#define MOD_LFO_STEREO_OFFSET 0.25f
INTERNAL void modulation_coefficients(float *slots, double sr);
INTERNAL void modulation_run(daw_effect *fx, float *x0, float *x1, int32_t n);
#define PHASER_STAGES 6
#define PHASER_SWEEP_OCTAVES 2.0
INTERNAL void phaser_coefficients(float *slots, double sr);
INTERNAL void phaser_run(float *slots, float *x0, float *x1, int32_t n, double sr, int32_t ph);

/* shaping.c: gate/expander and saturation. */
INTERNAL void gate_coefficients(float *slots, double sr);
INTERNAL void gate_run(float *slots, float *x0, float *x1, int32_t n, const float *k0,
                       const float *k1);
INTERNAL void saturation_coefficients(float *slots);
INTERNAL void saturation_run(const float *slots, float *x0, float *x1, int32_t n);

/* eq.c: the 7-band EQ keeps its parameters in memory row 0 (4 targets per band,
 * 3 smoothed values, 5 coefficients) and each row's filter memory at EQ_STATE; the
 * de-esser runs in chunks of DEESSER_CHUNK frames on the stack.
 * Twin: dsp_core/reference_eq.py. */
#define EQ_BANDS 7
#define EQ_TARGETS 0
#define EQ_VALUES 28
#define EQ_COEFS 49
#define EQ_STATE 84
#define EQ_ROW 100
#define DEESSER_CHUNK 64
INTERNAL int eq_settled(const daw_effect *fx);
INTERNAL void eq_tick(daw_effect *fx, double sr, float alpha, int first);
INTERNAL void eq_run(daw_effect *fx, float *x0, float *x1, int32_t n);
INTERNAL void deesser_coefficients(float *slots, double sr);
INTERNAL void deesser_run(float *slots, float *x0, float *x1, int32_t n);

/* convolution.c: partitioned FFT convolution; each memory row starts with
 * CONV_HEADER floats (input fill, delay-line head, ring index, partitions; the same
 * for the tail stage; 1 when the IR is true stereo, 4 channels LL, LR, RL, RR).
 * Twin: dsp_core/reference_convolution.py, layout: dsp_core/convolution_layout.py. */
#define CONV_PARTITION 256
#define CONV_TAIL_PARTITION 4096
#define CONV_MAX_FFT 8192
#define CONV_HEADER 16
#define CONV_MAX_PRE_MS 500.0
#define CONV_H_FILL 0
#define CONV_H_HEAD 1
#define CONV_H_RING 2
#define CONV_H_PARTS 3
#define CONV_H_TAIL_FILL 4
#define CONV_H_TAIL_HEAD 5
#define CONV_H_TAIL_PARTS 6
#define CONV_H_CROSS 7
INTERNAL int conv_memory_ok(const daw_effect *fx, double sr);
INTERNAL void conv_coefficients(float *slots, double sr);
INTERNAL void conv_run(daw_effect *fx, float *x0, float *x1, int32_t n, double sr);
/* lookahead.c: the lookahead limiter (latency: its lookahead in frames). */
#define LOOKAHEAD_MAX_MS 20.0
INTERNAL int64_t lookahead_ring(double sr);
INTERNAL int64_t lookahead_frames(const float *slots, double sr);
INTERNAL void lookahead_run(daw_effect *fx, float *x0, float *x1, int32_t n, double sr);

/* Where one thread mixes its tracks: its own master and bus accumulators and
 * scratch, so threads never write to the same memory. */
typedef struct {
    float *master;   /* 2 * max_block: left then right */
    float *buses;    /* n_buses * 2 * max_block, or NULL: the graph's own bus buffers */
    float *scratch;  /* 3 * max_block: compressor work, post-fader left and right */
    float *lanes;    /* 2 * DAW_LANES * max_block */
} mix_target;

/* pool.c: run task(arg, k, count) once for every k in [0, count) on the calling
 * thread and up to threads - 1 persistent workers (whichever claims k first);
 * returns when all are done.  Tasks must not depend on which thread runs them.
 * `work` (samples, roughly) tells small jobs from large ones. */
typedef void (*pool_task)(void *arg, int32_t index, int32_t count);
INTERNAL void pool_run(pool_task task, void *arg, int32_t count, int32_t threads,
                       int64_t work);

/* plain.c: what a plain track adds to a block, gl * x[0..frames) to the left sum and
 * gr * x to the right (gl, gr: fader gain times clip gain); mix_plain_run adds n of
 * them, in order, to every frame of l and r. */
typedef struct {
    const float *x;
    float gl, gr;
} plain_plan;
INTERNAL void mix_plain_run(float *restrict l, float *restrict r, const plain_plan *p,
                            int32_t n, int32_t frames);

/* lanes.c */
INTERNAL int lanes_ready(const daw_track *tr, int32_t available);
INTERNAL void lanes_run_chain(daw_graph *g, daw_track *tr, int32_t frames, float *lane_scratch);

#endif
