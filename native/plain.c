/*
 * Runs of plain tracks (mono, no inserts or sends, settled fader, one fade-free
 * mono clip across the block) mixed straight into the master bus.
 *
 * The block is cut into tiles of PLAIN_TILE frames whose left and right sums stay
 * in registers while every track of the run is added: each track's samples are
 * loaded once and multiplied into both sums, and the master bus is loaded and
 * stored once per tile and run instead of once per track or group of tracks.
 *
 * Every frame gets the same operations in the same order wherever it falls (a
 * tile or the tail): l = l + gl * x for each track of the run in turn, fused
 * (one rounding) where the CPU has AVX-512, a multiply and an add elsewhere.
 * The twin (reference.py) adds g * (env * x) track by track; the two agree to
 * float32 rounding (docs/engine.md).
 */
#include "internal.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#define PLAIN_TILE 64

/* frames [i, i + 16 * vectors) of the run, the sums held in registers */
#define RUN_TILE(VECTORS)                                                          \
    do {                                                                           \
        __m512 sl[VECTORS], sr[VECTORS];                                           \
        for (int v = 0; v < VECTORS; v++) {                                        \
            sl[v] = _mm512_loadu_ps(l + i + 16 * v);                               \
            sr[v] = _mm512_loadu_ps(r + i + 16 * v);                               \
        }                                                                          \
        for (int32_t k = 0; k < n; k++) {                                          \
            const float *x = p[k].x + i;                                           \
            const __m512 gl = _mm512_set1_ps(p[k].gl), gr = _mm512_set1_ps(p[k].gr); \
            for (int v = 0; v < VECTORS; v++) {                                    \
                const __m512 xv = _mm512_loadu_ps(x + 16 * v);                     \
                sl[v] = _mm512_fmadd_ps(gl, xv, sl[v]);                            \
                sr[v] = _mm512_fmadd_ps(gr, xv, sr[v]);                            \
            }                                                                      \
        }                                                                          \
        for (int v = 0; v < VECTORS; v++) {                                        \
            _mm512_storeu_ps(l + i + 16 * v, sl[v]);                               \
            _mm512_storeu_ps(r + i + 16 * v, sr[v]);                               \
        }                                                                          \
    } while (0)

INTERNAL void mix_plain_run(float *restrict l, float *restrict r, const plain_plan *p,
                            int32_t n, int32_t frames) {
    int32_t i = 0;
    for (; i + PLAIN_TILE <= frames; i += PLAIN_TILE) RUN_TILE(PLAIN_TILE / 16);
    for (; i + 16 <= frames; i += 16) RUN_TILE(1);
    if (i < frames) {
        const __mmask16 m = (__mmask16)((1u << (frames - i)) - 1u);
        __m512 sl = _mm512_maskz_loadu_ps(m, l + i), sr = _mm512_maskz_loadu_ps(m, r + i);
        for (int32_t k = 0; k < n; k++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, p[k].x + i);
            sl = _mm512_fmadd_ps(_mm512_set1_ps(p[k].gl), xv, sl);
            sr = _mm512_fmadd_ps(_mm512_set1_ps(p[k].gr), xv, sr);
        }
        _mm512_mask_storeu_ps(l + i, m, sl);
        _mm512_mask_storeu_ps(r + i, m, sr);
    }
}

#else

INTERNAL void mix_plain_run(float *restrict l, float *restrict r, const plain_plan *p,
                            int32_t n, int32_t frames) {
    for (int32_t k = 0; k < n; k++) {
        const float *restrict x = p[k].x;
        const float gl = p[k].gl, gr = p[k].gr;
        for (int32_t i = 0; i < frames; i++) {
            l[i] += gl * x[i];
            r[i] += gr * x[i];
        }
    }
}

#endif
