/* A test-only LV2 plug-in that uses the Worker extension (tests/test_lv2_work.py).
 *
 * Requires worker:schedule. Each run() it schedules `requests` requests of `size` bytes
 * (the first 4 bytes a sequence number, the rest that number's low byte) from one buffer
 * it overwrites right after each call, as plug-ins reuse theirs. work() checks each
 * request's bytes and responds with its sequence number; work_response() checks that
 * and, with `chain` on, schedules one more request (a plug-in that never stops).
 * Ports: 0 requests, 1 size, 2 chain, 3 audio in, 4 audio out (a copy of the input);
 * outputs 5 accepted and 6 refused (this run's schedule_work results: success, no
 * space), 7 responses (delivered so far, checked), 8 corrupt (requests or responses
 * whose bytes were not what was scheduled), 9 ended (end_run() calls so far); 7-9 are
 * written at the start of run(), so they count what happened before it.
 * Written against the LV2 ABI without its headers (lv2_abi.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lv2_abi.h"
typedef enum { WORKER_SUCCESS = 0, WORKER_ERR_UNKNOWN = 1, WORKER_ERR_NO_SPACE = 2 } Status;
typedef struct {
    void *handle;
    Status (*schedule_work)(void *handle, uint32_t size, const void *data);
} Schedule;
typedef Status (*Respond)(void *handle, uint32_t size, const void *data);
typedef struct {
    Status (*work)(LV2_Handle, Respond, void *, uint32_t, const void *);
    Status (*work_response)(LV2_Handle, uint32_t, const void *);
    Status (*end_run)(LV2_Handle);
} Interface;

#define SCHEDULE_URI "http://lv2plug.in/ns/ext/worker#schedule"
#define INTERFACE_URI "http://lv2plug.in/ns/ext/worker#interface"
#define MAX_SIZE (4u << 20)

typedef struct {
    float *port[10];
    Schedule *schedule;
    uint8_t *buffer;
    uint32_t scheduled, worked, responses, corrupt, ended;
} Worker;

static LV2_Handle instantiate(const LV2_Descriptor *d, double rate, const char *path,
                              const LV2_Feature *const *features) {
    (void)d; (void)rate; (void)path;
    Schedule *schedule = NULL;
    for (int i = 0; features[i]; i++)
        if (!strcmp(features[i]->URI, SCHEDULE_URI)) schedule = features[i]->data;
    if (!schedule) return NULL;
    Worker *w = calloc(1, sizeof(Worker));
    w->schedule = schedule;
    w->buffer = malloc(MAX_SIZE + 4);
    return w;
}

static void connect_port(LV2_Handle h, uint32_t port, void *data) {
    if (port < 10) ((Worker *)h)->port[port] = (float *)data;
}

static Status request(Worker *w, uint32_t size) {
    uint32_t seq = w->scheduled;
    memset(w->buffer, seq & 0xFF, size);
    memcpy(w->buffer, &seq, size < 4 ? size : 4);
    Status status = w->schedule->schedule_work(w->schedule->handle, size, w->buffer);
    memset(w->buffer, 0xEE, size);  /* the buffer is reused at once */
    if (status == WORKER_SUCCESS) w->scheduled++;
    return status;
}

static void run(LV2_Handle h, uint32_t frames) {
    Worker *w = (Worker *)h;
    *w->port[7] = (float)w->responses;
    *w->port[8] = (float)w->corrupt;
    *w->port[9] = (float)w->ended;
    uint32_t requests = (uint32_t)*w->port[0], size = (uint32_t)*w->port[1];
    if (size < 4) size = 4;
    if (size > MAX_SIZE) size = MAX_SIZE;
    uint32_t accepted = 0, refused = 0;
    for (uint32_t i = 0; i < requests; i++) {
        Status status = request(w, size);
        accepted += status == WORKER_SUCCESS;
        refused += status == WORKER_ERR_NO_SPACE;
    }
    *w->port[5] = (float)accepted;
    *w->port[6] = (float)refused;
    memcpy(w->port[4], w->port[3], frames * sizeof(float));
}

static int holds(const uint8_t *data, uint32_t size, uint32_t seq) {
    uint32_t got;
    if (size < 4) return 0;
    memcpy(&got, data, 4);
    if (got != seq) return 0;
    for (uint32_t i = 4; i < size; i++)
        if (data[i] != (seq & 0xFF)) return 0;
    return 1;
}

static Status work(LV2_Handle h, Respond respond, void *handle, uint32_t size,
                   const void *data) {
    Worker *w = (Worker *)h;
    if (!holds(data, size, w->worked)) w->corrupt++;
    w->worked++;
    uint32_t seq = w->worked - 1;
    return respond(handle, 4, &seq);
}

static Status work_response(LV2_Handle h, uint32_t size, const void *data) {
    Worker *w = (Worker *)h;
    if (holds(data, size, w->responses)) w->responses++;
    else w->corrupt++;
    if (*w->port[2] > 0.5f) request(w, 4);
    return WORKER_SUCCESS;
}

static Status end_run(LV2_Handle h) {
    ((Worker *)h)->ended++;
    return WORKER_SUCCESS;
}

static const void *extension_data(const char *uri) {
    static const Interface iface = {work, work_response, end_run};
    return strcmp(uri, INTERFACE_URI) ? NULL : &iface;
}

static void cleanup(LV2_Handle h) {
    free(((Worker *)h)->buffer);
    free(h);
}

static const LV2_Descriptor descriptor = {
    "urn:maxbooster:test:worker", instantiate, connect_port, NULL, run, NULL,
    cleanup, extension_data};

__attribute__((visibility("default"))) const LV2_Descriptor *lv2_descriptor(uint32_t index) {
    return index == 0 ? &descriptor : NULL;
}
