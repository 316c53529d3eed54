/*
 * A small persistent pool of worker threads (POSIX threads) for the mix and the
 * graph render.
 *
 * A render of a 64-frame block takes a few microseconds, so handing work to a
 * thread must cost far less than that.  An idle worker spins on the job word
 * for POOL_SPIN_NS after its last job (the next block usually comes well
 * within that), and only then sleeps on a condition variable.
 *
 * A job is `count` indices.  The caller and the workers claim indices one at a
 * time from a shared counter, so the caller never waits for a worker that the
 * system has not scheduled (on a machine whose cores are busy, a worker may not
 * run for milliseconds): it runs the unclaimed indices itself, and waits only
 * for indices a worker has already started.  Which thread runs an index never
 * changes the result: every index is run exactly once, and each writes only its
 * own memory.
 *
 * No OpenMP: its runtime spins for a length set by environment variables the
 * host process may not expect, and its threads and OpenBLAS's compete.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* How long an idle worker, or a caller waiting for a worker's last index, spins
 * before it sleeps.  Long enough to span the Python code between two blocks,
 * short enough that idle workers do not hold a busy machine's cores for long. */
#define POOL_SPIN_NS 100000

/* The job word: generation (bumped once per job) in the high half, next
 * unclaimed index in the low half, so a claim names the job it is for. */
#define JOB_WORD(generation, next) (((uint64_t)(generation) << 32) | (uint32_t)(next))
#define JOB_GENERATION(word) ((uint32_t)((word) >> 32))
#define JOB_NEXT(word) ((uint32_t)(word))

static struct {
    pthread_mutex_t busy;  /* held by the one pool_run that posts jobs */
    pthread_mutex_t lock;  /* guards the two condition variables */
    pthread_cond_t wake;   /* sleeping workers wait here for a job */
    pthread_cond_t done;   /* a sleeping caller waits here for the last index */
    _Atomic uint64_t job;  /* JOB_WORD */
    _Atomic(pool_task) task;
    _Atomic(void *) arg;
    atomic_int count;
    atomic_int threads;    /* workers 1..threads-1 take part in the current job */
    atomic_int finished;   /* indices of the current job run to the end */
    atomic_int sleepers;   /* workers waiting on wake */
    atomic_int caller_sleeping;
    int32_t workers;       /* started so far (changed only under busy) */
} pool = {
    .busy = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spin-wait helper: 0 while the spin lasts, 1 once POOL_SPIN_NS have passed. */
typedef struct {
    uint32_t spins;
    uint64_t deadline;
} spinner;

static inline int spin_done(spinner *s) {
    cpu_relax();
    if ((++s->spins & 63) != 0) return 0;
    const uint64_t t = now_ns();
    if (!s->deadline) s->deadline = t + POOL_SPIN_NS;
    return t > s->deadline;
}

/* The generation of the next job after `seen`: spin, then sleep. */
static uint32_t wait_for_job(uint32_t seen) {
    spinner s = {0, 0};
    uint32_t generation;
    while ((generation = JOB_GENERATION(atomic_load(&pool.job))) == seen)
        if (spin_done(&s)) break;
    if (generation != seen) return generation;
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.sleepers, 1);
    while ((generation = JOB_GENERATION(atomic_load(&pool.job))) == seen)
        pthread_cond_wait(&pool.wake, &pool.lock);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.lock);
    return generation;
}

/* Claim the next index of job `generation`; -1 when it has none left or is gone. */
static int32_t claim(uint32_t generation, int32_t count) {
    uint64_t word = atomic_load(&pool.job);
    for (;;) {
        if (JOB_GENERATION(word) != generation || (int32_t)JOB_NEXT(word) >= count) return -1;
        if (atomic_compare_exchange_weak(&pool.job, &word, word + 1)) return (int32_t)JOB_NEXT(word);
    }
}

static void finish_index(int32_t count) {
    if (atomic_fetch_add(&pool.finished, 1) + 1 == count && atomic_load(&pool.caller_sleeping)) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.done);
        pthread_mutex_unlock(&pool.lock);
    }
}

typedef struct {
    int32_t index;       /* 1.. */
    uint32_t generation; /* the last job posted before this worker started */
} worker_start;

static worker_start starts[DAW_MAX_THREADS];

static void *worker_main(void *p) {
    const worker_start *start = p;
    const int32_t index = start->index;
    uint32_t seen = start->generation;
    for (;;) {
        const uint32_t generation = wait_for_job(seen);
        seen = generation;
        /* The fields may belong to a later job by the time they are read; then
         * every claim below fails, because it names this generation. */
        const pool_task task = atomic_load(&pool.task);
        void *const arg = atomic_load(&pool.arg);
        const int32_t count = atomic_load(&pool.count);
        if (index >= atomic_load(&pool.threads)) continue;
        for (int32_t k; (k = claim(generation, count)) >= 0;) {
            task(arg, k, count);
            finish_index(count);
        }
    }
    return NULL;
}

/* A forked child has none of its parent's threads: start again from no workers. */
static void pool_after_fork(void) {
    pthread_mutex_init(&pool.busy, NULL);
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.caller_sleeping, 0);
    pool.workers = 0;
}

static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;

static void register_fork_handler(void) { pthread_atfork(NULL, NULL, pool_after_fork); }

/* Grow the pool to `wanted` workers (fewer if the system refuses threads). */
static void start_workers(int32_t wanted) {
    pthread_once(&fork_handler_once, register_fork_handler);
    while (pool.workers < wanted) {
        worker_start *start = &starts[pool.workers + 1];
        start->index = pool.workers + 1;
        start->generation = JOB_GENERATION(atomic_load(&pool.job));
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t thread;
        const int rc = pthread_create(&thread, &attr, worker_main, start);
        pthread_attr_destroy(&attr);
        if (rc != 0) return;
        pool.workers++;
    }
}

static void wait_for_finish(int32_t count) {
    spinner s = {0, 0};
    while (atomic_load(&pool.finished) < count)
        if (spin_done(&s)) break;
    if (atomic_load(&pool.finished) >= count) return;
    pthread_mutex_lock(&pool.lock);
    atomic_store(&pool.caller_sleeping, 1);
    while (atomic_load(&pool.finished) < count) pthread_cond_wait(&pool.done, &pool.lock);
    atomic_store(&pool.caller_sleeping, 0);
    pthread_mutex_unlock(&pool.lock);
}

INTERNAL void pool_run(pool_task task, void *arg, int32_t count, int32_t threads) {
    if (threads > DAW_MAX_THREADS) threads = DAW_MAX_THREADS;
    if (threads > count) threads = count;
    if (threads <= 1 || pthread_mutex_trylock(&pool.busy) != 0) {
        for (int32_t k = 0; k < count; k++) task(arg, k, count);
        return;
    }
    start_workers(threads - 1);
    atomic_store(&pool.task, task);
    atomic_store(&pool.arg, arg);
    atomic_store(&pool.count, count);
    atomic_store(&pool.threads, threads);
    atomic_store(&pool.finished, 0);
    const uint32_t generation = JOB_GENERATION(atomic_load(&pool.job)) + 1;
    atomic_store(&pool.job, JOB_WORD(generation, 0));
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    for (int32_t k; (k = claim(generation, count)) >= 0;) {
        task(arg, k, count);
        finish_index(count);
    }
    wait_for_finish(count);
    pthread_mutex_unlock(&pool.busy);
}
