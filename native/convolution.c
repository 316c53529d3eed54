/*
 * Convolution reverb: uniformly partitioned overlap-save FFT convolution with a
 * frequency-domain delay line.  Twin: dsp_core/reference_convolution.py; memory
 * layout: dsp_core/convolution_layout.py.
 *
 * Two stages: the head of the impulse response in partitions of CONV_PARTITION
 * frames, and (for a longer IR) its tail in partitions of CONV_TAIL_PARTITION frames,
 * which cost far less memory traffic per sample.  Each stage's part of a channel's
 * memory row holds the spectra of its IR partitions (computed in Python when the
 * effect is built), for a true-stereo IR those of the other input's path to this
 * output too (row 0: LL then RL, row 1: RR then LR), the spectra of as many past
 * input windows, the input window of
 * 2P frames, the output partition being played and work space; the row ends with a
 * ring of the input that gives the pre-delayed convolver input and the dry signal.
 * Every P frames a stage transforms its newest input window, multiplies it with its
 * IR spectra and sums (the delay line), and transforms back; true stereo runs both
 * channels in step and adds the other input's delay line through the cross spectra.  The output (wet and dry
 * alike) is late by CONV_PARTITION frames, its latency.
 *
 * The FFT is a radix-2 complex FFT of P points on the even/odd samples of the
 * 2P-point real window, unpacked into P + 1 bins (and the reverse); its twiddles
 * come from one static table filled once.
 */
#include "internal.h"

#include <pthread.h>

static float TW_RE[CONV_MAX_FFT / 2 + 1], TW_IM[CONV_MAX_FFT / 2 + 1];
static pthread_once_t TW_ONCE = PTHREAD_ONCE_INIT;

static void twiddles_init(void) {
    for (int k = 0; k <= CONV_MAX_FFT / 2; k++) {
        const double a = 2.0 * M_PI * (double)k / (double)CONV_MAX_FFT;
        TW_RE[k] = (float)cos(a);
        TW_IM[k] = (float)-sin(a); /* exp(-2 pi i k / CONV_MAX_FFT) */
    }
}

/* In-place complex FFT of m points (power of two), forward (sign -1) or inverse
 * (sign +1, unscaled). */
static void fft_complex(float *restrict re, float *restrict im, int32_t m, int sign) {
    for (int32_t i = 1, j = 0; i < m; i++) {
        int32_t bit = m >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            float t = re[i]; re[i] = re[j]; re[j] = t;
            t = im[i]; im[i] = im[j]; im[j] = t;
        }
    }
    for (int32_t len = 2; len <= m; len <<= 1) {
        const int32_t half = len >> 1, step = CONV_MAX_FFT / len;
        for (int32_t s = 0; s < m; s += len) {
            for (int32_t j = 0; j < half; j++) {
                const float wr = TW_RE[j * step], wi = sign < 0 ? TW_IM[j * step]
                                                                : -TW_IM[j * step];
                const int32_t a = s + j, b = a + half;
                const float tr = re[b] * wr - im[b] * wi;
                const float ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr; im[b] = im[a] - ti;
                re[a] += tr; im[a] += ti;
            }
        }
    }
}

/* Real FFT of n points: x -> xr, xi (n/2 + 1 bins); zr, zi: n/2 floats of work each. */
static void rfft(const float *restrict x, float *restrict xr, float *restrict xi,
                 float *restrict zr, float *restrict zi, int32_t n) {
    const int32_t m = n / 2, step = CONV_MAX_FFT / n;
    for (int32_t k = 0; k < m; k++) {
        zr[k] = x[2 * k];
        zi[k] = x[2 * k + 1];
    }
    fft_complex(zr, zi, m, -1);
    for (int32_t k = 0; k <= m; k++) {
        const int32_t a = k == m ? 0 : k, b = k == 0 ? 0 : m - k;
        const float ar = zr[a] + zr[b], ai = zi[a] - zi[b];   /* Z[k] + conj(Z[m-k]) */
        const float br = zr[a] - zr[b], bi = zi[a] + zi[b];   /* Z[k] - conj(Z[m-k]) */
        const float wr = TW_RE[k * step], wi = TW_IM[k * step];
        /* X = (A + W (-i B)) / 2, -i B = (bi, -br) */
        xr[k] = 0.5f * (ar + (wr * bi + wi * br));
        xi[k] = 0.5f * (ai + (wi * bi - wr * br));
    }
}

/* Inverse of rfft, scaled by 1/n like numpy's irfft: xr, xi -> x (n points). */
static void irfft(const float *restrict xr, const float *restrict xi, float *restrict x,
                  float *restrict zr, float *restrict zi, int32_t n) {
    const int32_t m = n / 2, step = CONV_MAX_FFT / n;
    for (int32_t k = 0; k < m; k++) {
        const float ar = xr[k] + xr[m - k], ai = xi[k] - xi[m - k];  /* X[k] + conj(X[m-k]) */
        const float br = xr[k] - xr[m - k], bi = xi[k] + xi[m - k];  /* X[k] - conj(X[m-k]) */
        const float wr = TW_RE[k * step], wi = -TW_IM[k * step];     /* conj(W^k) */
        const float orr = br * wr - bi * wi, oi = br * wi + bi * wr;  /* (B conj W) */
        zr[k] = ar - oi; /* Z = A + i O (both halved below) */
        zi[k] = ai + orr;
    }
    fft_complex(zr, zi, m, 1);
    const float scale = 0.5f / (float)m;
    for (int32_t k = 0; k < m; k++) {
        x[2 * k] = zr[k] * scale;
        x[2 * k + 1] = zi[k] * scale;
    }
}

int daw_rfft(const float *x, float *re, float *im, float *work, int32_t n) {
    if (!x || !re || !im || !work) return DAW_ERR_NULL;
    if (n < 4 || n > CONV_MAX_FFT || (n & (n - 1))) return DAW_ERR_FRAMES;
    pthread_once(&TW_ONCE, twiddles_init);
    rfft(x, re, im, work, work + n / 2, n);
    return DAW_OK;
}

int daw_irfft(const float *re, const float *im, float *x, float *work, int32_t n) {
    if (!x || !re || !im || !work) return DAW_ERR_NULL;
    if (n < 4 || n > CONV_MAX_FFT || (n & (n - 1))) return DAW_ERR_FRAMES;
    pthread_once(&TW_ONCE, twiddles_init);
    irfft(re, im, x, work, work + n / 2, n);
    return DAW_OK;
}

/* ------------------------------------------------------------------ the convolver */

typedef struct {
    int64_t p, k, ir, xir, fdl, in, out, acc, work, end;
    int h_fill, h_head;
} conv_stage;

typedef struct {
    conv_stage st[2];
    int stages, cross;
    int64_t ring, ring_len, pre_max, total;
} conv_layout;

static int64_t stage_at(conv_stage *s, int64_t p, int64_t k, int64_t off, int h_fill, int h_head,
                        int cross) {
    const int64_t bins2 = 2 * (p + 1);
    s->p = p;
    s->k = k;
    s->h_fill = h_fill;
    s->h_head = h_head;
    s->ir = off;
    s->xir = s->ir + k * bins2;
    s->fdl = s->xir + (cross ? k * bins2 : 0);
    s->in = s->fdl + k * bins2;
    s->out = s->in + 2 * p;
    s->acc = s->out + p;
    s->work = s->acc + bins2;
    s->end = s->work + 4 * p;
    return s->end;
}

static void layout(int64_t head_parts, int64_t tail_parts, int cross, double sr,
                   conv_layout *g) {
    int64_t off = stage_at(&g->st[0], CONV_PARTITION, head_parts, CONV_HEADER, CONV_H_FILL,
                           CONV_H_HEAD, cross);
    g->stages = tail_parts > 0 ? 2 : 1;
    g->cross = cross;
    if (tail_parts > 0)
        off = stage_at(&g->st[1], CONV_TAIL_PARTITION, tail_parts, off, CONV_H_TAIL_FILL,
                       CONV_H_TAIL_HEAD, cross);
    g->ring = off;
    g->pre_max = (int64_t)(CONV_MAX_PRE_MS * 1e-3 * sr);
    g->ring_len = g->pre_max + CONV_PARTITION + 2;
    g->total = g->ring + g->ring_len;
}

static int row_layout(const float *row, double sr, conv_layout *g) {
    const int64_t k = (int64_t)row[CONV_H_PARTS], tail = (int64_t)row[CONV_H_TAIL_PARTS];
    if (k < 1 || tail < 0) return 0;
    layout(k, tail, row[CONV_H_CROSS] != 0.0f, sr, g);
    return 1;
}

INTERNAL int conv_memory_ok(const daw_effect *fx, double sr) {
    conv_layout g;
    return fx->memory && row_layout(fx->memory, sr, &g) && fx->memory_len >= g.total;
}

INTERNAL void conv_coefficients(float *slots, double sr) {
    const float *v = slots + DAW_SLOT_VALUE;
    float *c = slots + DAW_SLOT_COEF;
    const double mix = v[0];
    c[0] = (float)(1.0 - mix);
    c[1] = (float)(mix * pow(10.0, (double)v[2] / 20.0));
    int64_t pre = (int64_t)((double)v[1] * 1e-3 * sr);
    const int64_t most = (int64_t)(CONV_MAX_PRE_MS * 1e-3 * sr);
    c[2] = (float)(pre < 0 ? 0 : (pre > most ? most : pre));
}

/* Transform a stage's input window onto its delay line at the head. */
static void conv_transform_input(float *row, const conv_stage *g) {
    const int32_t p = (int32_t)g->p, n = 2 * p, bins = p + 1;
    const int64_t head = (int64_t)row[g->h_head];
    float *zr = row + g->work + n, *zi = zr + p;
    float *slot = row + g->fdl + head * 2 * bins;
    rfft(row + g->in, slot, slot + bins, zr, zi, n);
}

/* acc += the delay line of `fdl_row` times the IR spectra at `ir` (offset in `row`). */
static void conv_delay_line_sum(float *row, const float *fdl_row, int64_t ir,
                                const conv_stage *g, int64_t head) {
    const int32_t bins = (int32_t)g->p + 1;
    float *restrict ar = row + g->acc, *restrict ai = ar + bins;
    for (int64_t k = 0; k < g->k; k++) {
        int64_t j = head - k;
        if (j < 0) j += g->k;
        const float *restrict xr = fdl_row + g->fdl + j * 2 * bins, *restrict xi = xr + bins;
        const float *restrict hr = row + ir + k * 2 * bins, *restrict hi = hr + bins;
        for (int32_t b = 0; b < bins; b++) {
            ar[b] += xr[b] * hr[b] - xi[b] * hi[b];
            ai[b] += xr[b] * hi[b] + xi[b] * hr[b];
        }
    }
}

/* A row's output partition from its delay line (and, true stereo, `other`'s through
 * the cross spectra), transformed back; then the input window moves on. */
static void conv_accumulate(float *row, const float *other, const conv_stage *g) {
    const int32_t p = (int32_t)g->p, n = 2 * p, bins = p + 1;
    const int64_t head = (int64_t)row[g->h_head];
    float *work = row + g->work, *zr = work + n, *zi = zr + p;
    float *restrict ar = row + g->acc, *restrict ai = ar + bins;
    for (int32_t b = 0; b < bins; b++) ar[b] = ai[b] = 0.0f;
    conv_delay_line_sum(row, row, g->ir, g, head);
    if (other) conv_delay_line_sum(row, other, g->xir, g, head);
    irfft(ar, ai, work, zr, zi, n);
    memcpy(row + g->out, work + p, sizeof(float) * p);
    memmove(row + g->in, row + g->in + p, sizeof(float) * p);
    row[g->h_head] = (float)(head + 1 == g->k ? 0 : head + 1);
}

/* Transform a stage's input window, push it on its delay line, sum the products, back. */
static void conv_partition(float *row, const conv_stage *g) {
    conv_transform_input(row, g);
    conv_accumulate(row, NULL, g);
}

/* The head stage (256-frame partitions) covers the IR's first CONV_TAIL_PARTITION -
 * CONV_PARTITION frames; the tail stage (partitions of CONV_TAIL_PARTITION frames, late
 * by that much) the rest, so its output arrives exactly when the head's would. */
static void conv_channel(const float *c, float *row, float *restrict x, int32_t n,
                         const conv_layout *g, int partitions) {
    const float dry = c[0], wet = c[1];
    const int64_t d = (int64_t)c[2], len = g->ring_len;
    const conv_stage *h = &g->st[0], *t = &g->st[1];
    const int tail = g->stages == 2;
    float *restrict ring = row + g->ring;
    float *restrict in0 = row + h->in + h->p, *restrict in1 = tail ? row + t->in + t->p : NULL;
    const float *restrict out0 = row + h->out, *restrict out1 = tail ? row + t->out : NULL;
    int64_t w = (int64_t)row[CONV_H_RING], pos0 = (int64_t)row[h->h_fill];
    int64_t pos1 = tail ? (int64_t)row[t->h_fill] : 0;
    for (int32_t i = 0; i < n; i++) {
        ring[w] = x[i];
        int64_t r = w - CONV_PARTITION;
        if (r < 0) r += len;
        int64_t q = w - d;
        if (q < 0) q += len;
        const float in = ring[q];
        in0[pos0] = in;
        if (tail) {
            in1[pos1] = in;
            x[i] = ring[r] * dry + (out0[pos0] + out1[pos1]) * wet;
        } else {
            x[i] = ring[r] * dry + out0[pos0] * wet;
        }
        w = w + 1 == len ? 0 : w + 1;
        if (++pos0 == h->p) {
            if (partitions) conv_partition(row, h);
            pos0 = 0;
        }
        if (tail && ++pos1 == t->p) {
            if (partitions) conv_partition(row, t);
            pos1 = 0;
        }
    }
    row[CONV_H_RING] = (float)w;
    row[h->h_fill] = (float)pos0;
    if (tail) row[t->h_fill] = (float)pos1;
}

INTERNAL void conv_run(daw_effect *fx, float *x0, float *x1, int32_t n, double sr) {
    pthread_once(&TW_ONCE, twiddles_init);
    conv_layout g;
    if (!row_layout(fx->memory, sr, &g)) return; /* conv_memory_ok refused it first */
    const float *c = fx->slots + DAW_SLOT_COEF;
    float *row0 = fx->memory, *row1 = fx->memory + fx->memory_len;
    if (!(g.cross && x1)) {
        conv_channel(c, row0, x0, n, &g, 1);
        if (x1) conv_channel(c, row1, x1, n, &g, 1);
        return;
    }
    /* true stereo: both channels in step, a partition at a time (each output
     * partition needs both inputs' delay lines at the same place) */
    for (int32_t i = 0; i < n;) {
        int64_t m = n - i;
        for (int s = 0; s < g.stages; s++) {
            const int64_t left = g.st[s].p - (int64_t)row0[g.st[s].h_fill];
            if (left < m) m = left;
        }
        conv_channel(c, row0, x0 + i, (int32_t)m, &g, 0);
        conv_channel(c, row1, x1 + i, (int32_t)m, &g, 0);
        for (int s = 0; s < g.stages; s++) {
            if (row0[g.st[s].h_fill] != 0.0f) continue;
            conv_transform_input(row0, &g.st[s]);
            conv_transform_input(row1, &g.st[s]);
            conv_accumulate(row0, row1, &g.st[s]);
            conv_accumulate(row1, row0, &g.st[s]);
        }
        i += (int32_t)m;
    }
}
