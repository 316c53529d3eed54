/* A test-only LV2 plug-in that misbehaves on request (tests/test_lv2_host.py).
 *
 * Ports: 0 mode (0 pass, 1 NaN, 2 hang, 3 crash, 4 denormals), 1 gain, 2 delay (frames, reported
 * as latency), 3 audio in, 4 audio out, 5 latency (output). With mode 0 it is
 * out[n] = gain * in[n - delay]. It prints a line to stdout on its first run, as chatty
 * plug-ins do. Written against the LV2 ABI without its headers.
 */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lv2_abi.h"

#define RING 128
typedef struct {
    float *port[6];
    float ring[RING];
    uint32_t write;
} Misbehave;

static LV2_Handle instantiate(const LV2_Descriptor *d, double rate, const char *path,
                              const LV2_Feature *const *features) {
    (void)d; (void)rate; (void)path; (void)features;
    return calloc(1, sizeof(Misbehave));
}

static void connect_port(LV2_Handle h, uint32_t port, void *data) {
    if (port < 6) ((Misbehave *)h)->port[port] = (float *)data;
}

static void activate(LV2_Handle h) {
    Misbehave *m = (Misbehave *)h;
    for (int i = 0; i < RING; i++) m->ring[i] = 0.0f;
    m->write = 0;
}

static void run(LV2_Handle h, uint32_t frames) {
    Misbehave *m = (Misbehave *)h;
    int mode = (int)*m->port[0];
    float gain = *m->port[1];
    uint32_t delay = (uint32_t)*m->port[2];
    if (delay >= RING) delay = RING - 1;
    *m->port[5] = (float)delay;
    if (mode == 2) for (;;) pause();
    if (m->write == 0) { printf("misbehave: first run\n"); fflush(stdout); }
    if (mode == 3) raise(SIGSEGV);
    for (uint32_t n = 0; n < frames; n++) {
        m->ring[m->write % RING] = m->port[3][n];
        float x = m->ring[(m->write + RING - delay) % RING];
        m->write++;
        m->port[4][n] = mode == 1 ? NAN : mode == 4 ? 1e-40f : gain * x;
    }
}

static void cleanup(LV2_Handle h) { free(h); }

static const LV2_Descriptor descriptor = {
    "urn:maxbooster:test:misbehave", instantiate, connect_port, activate, run, NULL,
    cleanup, NULL};

__attribute__((visibility("default"))) const LV2_Descriptor *lv2_descriptor(uint32_t index) {
    return index == 0 ? &descriptor : NULL;
}
