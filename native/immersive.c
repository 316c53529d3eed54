/*
 * Immersive panning: sources (objects and bed channels) to loudspeaker channels.
 *
 * The gains are computed in Python (dsp_core/immersive_panner.py) when a position
 * changes; this kernel applies them to one block, gliding linearly from the previous
 * block's gains to the new ones over the block so that a move does not click.
 * The numpy twin is dsp_core/reference_immersive.py (same operations, same order).
 */
#include "engine.h"

#include <stddef.h>

int daw_immersive_pan(const float *inputs, int32_t n_inputs, int32_t frames,
                      const float *gains_from, const float *gains_to, int32_t n_out,
                      float *out)
{
    if (!inputs || !gains_from || !gains_to || !out) return DAW_ERR_NULL;
    if (frames < 0) return DAW_ERR_FRAMES;
    if (n_inputs < 0 || n_out < 1) return DAW_ERR_CHANNELS;
    for (int64_t k = 0; k < (int64_t)n_out * frames; k++) out[k] = 0.0f;
    if (frames == 0) return DAW_OK;
    const float inv = 1.0f / (float)frames;
    for (int32_t c = 0; c < n_out; c++) {
        float *dst = out + (size_t)c * (size_t)frames;
        for (int32_t i = 0; i < n_inputs; i++) {
            const float g0 = gains_from[(size_t)i * n_out + c];
            const float g1 = gains_to[(size_t)i * n_out + c];
            const float *src = inputs + (size_t)i * (size_t)frames;
            if (g0 == 0.0f && g1 == 0.0f) continue;
            if (g0 == g1) {
                for (int32_t t = 0; t < frames; t++) dst[t] += g1 * src[t];
            } else {
                const float step = g1 - g0;
                for (int32_t t = 0; t < frames; t++) {
                    const float g = g0 + step * ((float)(t + 1) * inv);
                    dst[t] += g * src[t];
                }
            }
        }
    }
    return DAW_OK;
}
