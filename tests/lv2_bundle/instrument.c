/* A test-only LV2 instrument (tests/test_lv2_instrument.py): MIDI in, a DC step out.
 *
 * Each note-on sets the output to velocity / 127 (times channel volume, CC 7 / 127)
 * from its frame on; a note-off of the same key sets it back to 0 from its frame. So
 * where a note was placed is the exact sample where the output steps. The output is
 * delayed by the `delay` control (frames), which it reports as its latency.
 * The sustain pedal (CC 64 >= 64 on the note's channel) holds a note whose note-off
 * comes meanwhile until the pedal goes up; All Notes Off (CC 123) acts as a note-off
 * (the pedal holds it, as MIDI says), All Sound Off (CC 120) silences at once.
 * A second plug-in of this binary, urn:maxbooster:test:instrument-keep (the same ports),
 * keeps the sounding note and the pedals over a reset (deactivate, activate), as LSP's
 * samplers keep their voices: only MIDI stops it.
 * Ports: 0 midi_in (an atom:Sequence of midi:MidiEvent, the main control port),
 * 1 notify (an atom output: an empty sequence written each run), 2 out (audio),
 * 3 delay, 4 latency (output), 5 events (MIDI events received since activate),
 * 6 errors (input sequences or events built wrongly, and output capacity not given
 * afresh before a run), 7 bend (the last pitch bend, -8192..8191), 8 crash (at 1 the
 * plug-in aborts in run(): a crashing instrument).
 * Written against the LV2 ABI without its headers (lv2_abi.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lv2_abi.h"
typedef struct { void *handle; uint32_t (*map)(void *, const char *); } Map;
typedef struct { uint32_t size; uint32_t type; } Atom;
typedef struct { uint32_t unit; uint32_t pad; } SequenceBody;
typedef struct { int64_t frames; Atom body; } Event;

#define MAP_URI "http://lv2plug.in/ns/ext/urid#map"
#define ATOM "http://lv2plug.in/ns/ext/atom#"
#define LINE 128
#define NOTIFY_NEEDED 1024u
#define PORTS 9

typedef struct {
    void *port[PORTS];
    uint32_t sequence, frame_time, midi_event, chunk;
    float level, volume, line[LINE];
    int key, channel;
    int keep;          /* the -keep plug-in: a reset keeps the note and the pedals */
    int sustained;     /* the note got its note-off while the pedal held it */
    uint32_t pedals;   /* bit c: channel c's sustain pedal is down */
    uint32_t at, events, errors;
    int bend;
} Synth;

static LV2_Handle instantiate(const LV2_Descriptor *d, double rate, const char *path,
                              const LV2_Feature *const *features) {
    (void)d; (void)rate; (void)path;
    Map *map = NULL;
    for (int i = 0; features[i]; i++)
        if (!strcmp(features[i]->URI, MAP_URI)) map = features[i]->data;
    if (!map) return NULL;
    Synth *s = calloc(1, sizeof(Synth));
    s->sequence = map->map(map->handle, ATOM "Sequence");
    s->frame_time = map->map(map->handle, ATOM "frameTime");
    s->chunk = map->map(map->handle, ATOM "Chunk");
    s->midi_event = map->map(map->handle, "http://lv2plug.in/ns/ext/midi#MidiEvent");
    return s;
}

static LV2_Handle instantiate_keep(const LV2_Descriptor *d, double rate, const char *path,
                                   const LV2_Feature *const *features) {
    Synth *s = instantiate(d, rate, path, features);
    if (s) s->keep = 1;
    return s;
}

static void connect_port(LV2_Handle h, uint32_t port, void *data) {
    if (port < PORTS) ((Synth *)h)->port[port] = data;
}

static void activate(LV2_Handle h) {
    Synth *s = h;
    if (!s->keep) {
        s->level = 0.0f; s->key = -1; s->channel = -1; s->sustained = 0; s->pedals = 0;
    }
    s->volume = 1.0f;
    s->at = 0; s->events = 0; s->errors = 0; s->bend = 0;
    memset(s->line, 0, sizeof s->line);
}

static void silence(Synth *s) {
    s->level = 0.0f; s->key = -1; s->sustained = 0;
}

/* A note-off of the sounding note: held while its channel's pedal is down. */
static void release(Synth *s) {
    if (s->pedals & (1u << s->channel)) s->sustained = 1;
    else silence(s);
}

static void act(Synth *s, const uint8_t *m, uint32_t size) {
    s->events++;
    uint8_t kind = m[0] & 0xF0, channel = m[0] & 0x0F;
    int sounding = s->key >= 0 && channel == s->channel;
    if (kind == 0x90 && size == 3 && m[2] > 0) {
        s->key = m[1]; s->channel = channel; s->level = m[2] / 127.0f; s->sustained = 0;
    } else if ((kind == 0x80 || (kind == 0x90 && m[2] == 0)) && size == 3) {
        if (sounding && m[1] == s->key) release(s);
    } else if (kind == 0xB0 && size == 3 && m[1] == 7) {
        s->volume = m[2] / 127.0f;
    } else if (kind == 0xB0 && size == 3 && m[1] == 64) {
        if (m[2] >= 64) {
            s->pedals |= 1u << channel;
        } else {
            s->pedals &= ~(1u << channel);
            if (sounding && s->sustained) silence(s);
        }
    } else if (kind == 0xB0 && size == 3 && m[1] == 123) {
        if (sounding) release(s);
    } else if (kind == 0xB0 && size == 3 && m[1] == 120) {
        if (sounding) silence(s);
    } else if (kind == 0xE0 && size == 3) {
        s->bend = (int)(m[1] | (m[2] << 7)) - 8192;
    } else if (size != 3 && !(kind == 0xC0 || kind == 0xD0)) {
        s->errors++;
    }
}

static void render(Synth *s, float *out, uint32_t from, uint32_t to) {
    uint32_t delay = (uint32_t)*(float *)s->port[3];
    if (delay >= LINE) delay = LINE - 1;
    for (uint32_t i = from; i < to; i++) {
        s->line[s->at % LINE] = s->level * s->volume;
        out[i] = s->line[(s->at + LINE - delay) % LINE];
        s->at++;
    }
}

static void run(LV2_Handle h, uint32_t n) {
    Synth *s = h;
    if (*(float *)s->port[8] >= 0.5f) abort();
    float *out = s->port[2];
    Atom *notify = s->port[1];
    if (notify->size < NOTIFY_NEEDED || notify->type != s->chunk) s->errors++;
    const Atom *seq = s->port[0];
    uint32_t done = 0;
    if (seq->type != s->sequence || seq->size < sizeof(SequenceBody)) {
        s->errors++;
    } else {
        const SequenceBody *body = (const SequenceBody *)(seq + 1);
        if (body->unit != s->frame_time && body->unit != 0) s->errors++;
        const uint8_t *at = (const uint8_t *)(body + 1);
        const uint8_t *end = (const uint8_t *)body + seq->size;
        int64_t last = 0;
        while (at < end) {
            const Event *ev = (const Event *)at;
            if (((uintptr_t)at & 7u) || ev->frames < last || ev->frames >= (int64_t)n) {
                s->errors++;
                break;
            }
            if (ev->body.type == s->midi_event) {
                render(s, out, done, (uint32_t)ev->frames);
                done = (uint32_t)ev->frames;
                act(s, (const uint8_t *)(ev + 1), ev->body.size);
            } else {
                s->errors++;
            }
            last = ev->frames;
            at += sizeof(Event) + ((ev->body.size + 7u) & ~7u);
        }
        if (at != end) s->errors++;  /* padded events must fill the sequence exactly */
    }
    render(s, out, done, n);
    notify->size = sizeof(SequenceBody);  /* an empty sequence out */
    notify->type = s->sequence;
    ((SequenceBody *)(notify + 1))->unit = 0;
    ((SequenceBody *)(notify + 1))->pad = 0;
    *(float *)s->port[4] = *(float *)s->port[3];
    *(float *)s->port[5] = (float)s->events;
    *(float *)s->port[6] = (float)s->errors;
    *(float *)s->port[7] = (float)s->bend;
}

static void cleanup(LV2_Handle h) { free(h); }

static const LV2_Descriptor descriptors[] = {
    {"urn:maxbooster:test:instrument", instantiate, connect_port, activate, run, NULL,
     cleanup, NULL},
    {"urn:maxbooster:test:instrument-keep", instantiate_keep, connect_port, activate, run,
     NULL, cleanup, NULL},
};

__attribute__((visibility("default"))) const LV2_Descriptor *lv2_descriptor(uint32_t index) {
    return index < 2 ? &descriptors[index] : NULL;
}
