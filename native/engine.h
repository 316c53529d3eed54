/*
 * Max Booster Studio mixing engine: the only C API of the project.
 *
 * Every buffer is float32 and owned by Python (numpy); the engine never
 * allocates.  Effect state lives in a flat float array ("slots") whose layout
 * is shared with the numpy twins in dsp_core/reference.py, so either backend
 * can continue the other's work.
 *
 * Parameter smoothing runs at a fixed control rate of DAW_TICK frames counted
 * from the last reset, so a render does not depend on the block size.
 */
#ifndef DAW_ENGINE_H
#define DAW_ENGINE_H

#include <stdint.h>

#define DAW_OK 0
#define DAW_ERR_NULL -1
#define DAW_ERR_FRAMES -2
#define DAW_ERR_CHANNELS -3
#define DAW_ERR_KIND -4
#define DAW_ERR_BUS -5
#define DAW_ERR_THREADS -6

#define DAW_TICK 32
#define DAW_LANES 8
#define DAW_MAX_THREADS 16
#define DAW_FX_SLOTS 64

/* Effect kinds */
#define DAW_FX_GAIN 1
#define DAW_FX_BIQUAD 2
#define DAW_FX_COMPRESSOR 3
#define DAW_FX_DELAY 4
#define DAW_FX_LIMITER 5
#define DAW_FX_REVERB 6
#define DAW_FX_CHORUS 7
#define DAW_FX_FLANGER 8
#define DAW_FX_GATE 9
#define DAW_FX_SATURATION 10
#define DAW_FX_PHASER 11
#define DAW_FX_EQ 12
#define DAW_FX_DEESSER 13
#define DAW_FX_CONVOLUTION 14
#define DAW_FX_LOOKAHEAD_LIMITER 32  /* latency: its lookahead (lookahead.c) */

/* Biquad shapes (RBJ cookbook) */
#define DAW_BQ_LOWPASS 0
#define DAW_BQ_HIGHPASS 1
#define DAW_BQ_PEAKING 2
#define DAW_BQ_LOWSHELF 3
#define DAW_BQ_HIGHSHELF 4

/* Slot layout of an effect: [0,8) targets, [8,16) smoothed values,
 * [16,24) derived coefficients, [24,40) per-channel memory, [40] flags. */
#define DAW_SLOT_TARGET 0
#define DAW_SLOT_VALUE 8
#define DAW_SLOT_COEF 16
#define DAW_SLOT_MEM 24
#define DAW_SLOT_READY 40

/* Fader slots: targets (L, R), value at end of current tick, value at start. */
#define DAW_FADER_SLOTS 8
#define DAW_FADER_TARGET 0
#define DAW_FADER_END 2
#define DAW_FADER_START 4

typedef struct {
    int32_t kind;
    int32_t enabled;
    float *slots;       /* DAW_FX_SLOTS floats */
    float *memory;      /* delay lines (delay, reverb, chorus, flanger): channels *
                           memory_len floats, or NULL */
    int64_t memory_len;
    const float *key;   /* sidechain (compressor, gate): the detector reads key[0..frames)
                           and key[key_stride..], or NULL: it reads its own input */
    int64_t key_stride;
} daw_effect;

typedef struct {
    const float *data;  /* planar source: channel c at data + c * stride */
    int32_t channels;   /* 1 or 2 */
    int64_t stride;     /* frames per source channel */
    int64_t position;   /* timeline frame where the clip starts */
    int64_t offset;     /* first source frame played */
    int64_t length;     /* frames played */
    float gain;         /* linear clip gain */
    int64_t fade_in;    /* frames, linear */
    int64_t fade_out;   /* frames, linear */
    /* Equal-power crossfade with an overlapping clip on the same track: frames
     * [0, xfade_in_at) are silent, [xfade_in_at, xfade_in_at + xfade_in) rise as
     * sin(pi/2 (j + 0.5) / xfade_in) (j counted from xfade_in_at), and the last
     * xfade_out frames fall as sin(pi/2 (left + 0.5) / xfade_out), left = frames to the
     * clip's end - 1; the gain is computed in double and rounded to float, after the
     * linear fades (docs/engine.md#clip-crossfades).  All 0: no crossfade. */
    int64_t xfade_in_at;
    int64_t xfade_in;
    int64_t xfade_out;
} daw_clip;

typedef struct {
    int32_t bus;        /* index into graph buses */
    int32_t pre_fader;  /* 1: taken before fader and pan */
    float *fader;       /* DAW_FADER_SLOTS floats (L and R send levels) */
} daw_send;

/* One automation lane: a breakpoint envelope in render frames.  The value at
 * frame f is values[0] before frames[0], values[n-1] from the last point on,
 * values[j] across a hold segment, else the straight line from point j to j+1
 * (computed in double).  Points are sorted by frame; two at one frame make a step. */
typedef struct {
    int32_t n_points;       /* >= 1 */
    const int64_t *frames;
    const double *values;
    const int32_t *hold;    /* 1: the value holds until the next point */
} daw_lane;

/* A track whose fader is automated: per frame, the gain (dB), pan and mute lanes
 * give the fader's L/R gains (the track's pan law; 0 where muted), times `scale`
 * (0 when another track is soloed, else 1).  They replace the smoothed fader for the block; the
 * fader's slots are left at the block's last gains, so when the automation goes
 * away the fader glides from there to its target. */
typedef struct {
    daw_lane gain;      /* dB */
    daw_lane pan;       /* -1 .. 1 */
    daw_lane mute;      /* 0 playing, 1 muted (every point holds) */
    float scale;
    float *gains;       /* 2 * max_block scratch: the block's L gains, then R */
    int32_t cursor[3];  /* the engine's search hints into the lanes (any value is safe) */
} daw_automation;

typedef struct {
    int32_t channels;   /* 1 or 2 */
    int32_t n_clips;
    const daw_clip *clips;   /* sorted by position, not overlapping */
    int32_t n_effects;
    daw_effect *effects;
    float *fader;       /* DAW_FADER_SLOTS: L/R gains incl. pan, mute, solo */
    int32_t n_sends;
    daw_send *sends;
    float *buffer;      /* channels * max_block scratch */
} daw_track;

typedef struct {
    int32_t n_effects;
    daw_effect *effects;
    float *fader;       /* DAW_FADER_SLOTS */
    float *buffer;      /* 2 * max_block */
} daw_bus;

/* What the engine remembers of one track between blocks: where its plain blocks
 * are (see engine.c).  The caller allocates one per track, zeroed, with the graph,
 * and zeroes them again whenever a track's clips, inserts or sends change. */
typedef struct {
    const float *source;  /* the clip's first played frame (data + offset) */
    int64_t position;     /* timeline frame of source[0] */
    int64_t lo, hi;       /* blocks inside [lo, hi) read this clip alone, without fades */
    float gain;           /* the clip's gain */
    int32_t state;        /* 0: to look at, 1: the fields above hold, 2: never plain */
} daw_plain;

/* ---------------------------------------------------------------- instruments
 * A MIDI track's instrument (native/instruments.c): the track's MIDI clips as one
 * sorted event list in render frames, played by a subtractive synth or a sampler
 * whose mono output is added to the track's buffer before its inserts.  Events
 * act at their exact frame inside a block.  State lives in Python-owned double
 * arrays laid out as dsp_core/instrument_graph.py describes (the twin shares them). */
#define DAW_MIDI_NOTE_ON 1
#define DAW_MIDI_NOTE_OFF 2
#define DAW_MIDI_CC 3
#define DAW_MIDI_BEND 4
#define DAW_INST_SYNTH 1
#define DAW_INST_SAMPLER 2
#define DAW_INST_PARAMS 24
#define DAW_VOICE_SLOTS 24
#define DAW_INST_STATE 64
#define DAW_INST_NO_CHASE 51  /* state slot: 1 when the project turned note chase off */

typedef struct {
    int64_t frame;      /* render frame */
    int32_t kind;       /* DAW_MIDI_* */
    int32_t channel;    /* 0..15 */
    int32_t key;        /* note, or controller number */
    int32_t value;      /* velocity, controller value, or bend -8192..8191 */
} daw_midi_event;

typedef struct {
    const float *data;  /* mono sample at the render rate */
    int64_t length;     /* frames */
    int32_t root, key_lo, key_hi, vel_lo, vel_hi;
} daw_zone;

typedef struct {
    int32_t kind;               /* DAW_INST_SYNTH or DAW_INST_SAMPLER */
    int32_t n_voices;
    int32_t n_events;
    const daw_midi_event *events;  /* sorted by frame */
    int32_t n_zones;
    const daw_zone *zones;      /* sampler: the first zone matching key and velocity plays */
    const double *params;       /* DAW_INST_PARAMS, derived in Python */
    double *voices;             /* n_voices * DAW_VOICE_SLOTS */
    double *state;              /* DAW_INST_STATE: next frame, cursor, channels, no chase */
    float *scratch;             /* max_block floats */
} daw_instrument;
/* ---- plug-in delay compensation and render order (dsp_core/graph.py plans them) */

/* A delay line: `channels` rings of `length` floats in memory (length > delay). */
typedef struct {
    float *memory;
    int64_t length;
    int64_t delay;      /* frames; 0: the line is skipped */
    int64_t *write;     /* the write index (one int64 the caller owns) */
} daw_delay;

/* A sidechain: once its source's chain has run, the source's post-insert buffer
 * (channels rows of max_block floats) goes through `delay` into `key` (2 rows of
 * max_block; a mono source fills both), which the keyed effect's detector reads. */
typedef struct {
    const float *source;
    int32_t channels;
    float *key;
    daw_delay delay;
} daw_key;

/* One step of a schedule.  bus < 0: consecutive tracks [first, first + count)
 * rendered together, their clips read `offset` frames before the block (negative:
 * after it), so that every track's post-insert signal is aligned.  own_buffer: a key
 * source or an automated track with latency (one track), rendered through its buffer
 * by itself: after its chain its keys (if any) are
 * filled, then its buffer is delayed by out_delay (channels rows) before its sends and
 * fader.  bus >= 0: that aux bus: chain, keys filled, alignment delay, fader. */
typedef struct {
    int32_t first, count;
    int32_t own_buffer;
    int32_t n_keys;
    daw_key *keys;      /* the keys this step is the source of */
    int64_t offset;
    int32_t bus;
    daw_delay out_delay;
    int64_t automation_offset;  /* own_buffer: its fader's automation is read this many
                                   frames before the block (where its output is) */
} daw_run;

/* The order and alignment of a graph with sidechains or latency.  Steps run in
 * order on the calling thread (key sources before their consumers); the buses'
 * outputs gather in bus_sum; then the tracks' direct sum in the master is delayed
 * by `direct` and bus_sum added, so all arrive aligned (each bus's own delay,
 * bus_delays[b], runs after its chain).  `latency` is the whole graph's (master
 * chain included): output frame f holds timeline frame f - latency.  Keys are filled
 * by their sources' steps, so every consumer (the master's chain too) finds them. */
typedef struct {
    int64_t latency;
    int32_t n_runs;
    daw_run *runs;
    daw_delay direct;       /* 2 channels */
    daw_delay *bus_delays;  /* n_buses, 2 channels each */
    float *bus_sum;         /* 2 * max_block */
} daw_schedule;

typedef struct {
    double sample_rate;
    int32_t max_block;
    int32_t n_tracks;
    daw_track *tracks;
    int32_t n_buses;
    daw_bus *buses;
    daw_bus *master;
    float *scratch;     /* 3 * max_block floats */
    float *lane_scratch;  /* 2 * DAW_LANES * max_block floats */
    int32_t n_threads;    /* tracks split into this many shares, each summed on its own and
                             run on the pool's threads when the block is large enough */
    float *thread_scratch;  /* n_threads * (2 * n_buses + 5 + 2 * DAW_LANES) * max_block */
    int64_t frames_done;  /* frames rendered since reset: sets the tick phase */
    daw_plain *plain;     /* n_tracks, or NULL: looked up every block */
    daw_automation **automation;  /* n_tracks (NULL: that fader is not automated), or
                                     NULL when no track is (daw_track stays 64 bytes) */
    daw_instrument **instruments;  /* n_tracks (NULL: no instrument), or NULL when none */
    daw_schedule *schedule;  /* NULL: tracks in index order (threaded), then buses */
} daw_graph;

/* Mix n_tracks mono tracks (row-major n_tracks x n_frames) to stereo with the
 * equal-power pan law L = g cos((p+1) pi/4), R = g sin((p+1) pi/4).  The frames
 * are split over up to `threads` threads (1..DAW_MAX_THREADS; fewer when the
 * work is small); the result is the same bits for every thread count. */
int daw_mix(const float *tracks, int64_t n_tracks, int64_t n_frames,
            const float *gains, const float *pans, float *out_l, float *out_r,
            int32_t threads);

/* Render one block of the whole graph: clips, inserts, faders, sends, buses,
 * master chain.  Writes frames samples to out_l and out_r. */
int daw_render(daw_graph *graph, int64_t start, int32_t frames,
               float *out_l, float *out_r);

/* Render frames [start, start + frames) of an instrument into out (overwritten,
 * mono).  A start other than the frame after the last call is a seek: voices stop and
 * controllers are chased from the events before start. */
int daw_instrument_render(daw_instrument *inst, double sample_rate, int64_t start,
                          int32_t frames, float *out);

/* Process one effect in place on 1 or 2 channels (ch1 may be NULL for mono).
 * phase is the tick phase of the first frame (frames_done % DAW_TICK). */
int daw_effect_process(daw_effect *fx, float *ch0, float *ch1, int32_t channels,
                       int32_t frames, double sample_rate, int32_t phase,
                       float *scratch);

/* Real FFT of n points (a power of two, 4 .. 8192), numpy's rfft convention:
 * x (n floats) -> re, im (n/2 + 1 bins each); work: n floats.  daw_irfft is its
 * inverse, scaled by 1/n like numpy's irfft.  The convolution reverb's transform. */
int daw_rfft(const float *x, float *re, float *im, float *work, int32_t n);
int daw_irfft(const float *re, const float *im, float *x, float *work, int32_t n);

/* Fast float log2/exp2 approximations used by the dynamics processors. */
float daw_log2(float x);
float daw_exp2(float x);

/* Immersive panning (native/immersive.c): out (n_out x frames, overwritten) = sum over
 * the n_inputs rows of inputs (n_inputs x frames) of gain x input, each gain gliding
 * linearly over the block from gains_from to gains_to (n_inputs x n_out, row-major):
 * gain(t) = from + (to - from) * ((t + 1) * (1 / frames)).  Gains come from
 * dsp_core/immersive_panner.py. */
int daw_immersive_pan(const float *inputs, int32_t n_inputs, int32_t frames,
                      const float *gains_from, const float *gains_to, int32_t n_out,
                      float *out);

#endif
