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
 * for indices a worker has already started.  When the machine's cores are busy
 * elsewhere, small jobs run on the caller alone for a while (judge_small_job).
 * Which thread runs an index never changes the result: every index is run
 * exactly once, and each writes only its own memory.
 *
 * No OpenMP: its runtime spins for a length set by environment variables the
 * host process may not expect, and its threads and OpenBLAS's compete.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* How long an idle worker spins before it sleeps.  Long enough to span the Python
 * code between two blocks, short enough that idle workers do not hold a busy
 * machine's cores for long. */
#define POOL_SPIN_NS 100000
/* A caller spins for its workers as long as its own indices took, plus this. */
#define POOL_FINISH_SLACK_NS 20000
/* Jobs of fewer samples than this are small (judge_small_job): waking a worker
 * for one may cost more than the job. */
#define POOL_LARGE_WORK (1 << 19)
/* A wait this much longer than a quarter of the caller's own work is a stall. */
#define POOL_STALL_NS 50000
#define POOL_ASLEEP_RUNS 4
#define POOL_BACKOFF_MIN_NS 20000000
#define POOL_BACKOFF_MAX_NS 2000000000

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
    atomic_int wake_sent;  /* a wake-up is on its way to them: do not send another */
    atomic_int caller_sleeping;
    int32_t workers;       /* started so far (changed only under busy) */
    uint64_t alone_until;  /* jobs run on the caller alone until then (under busy) */
    uint64_t backoff;      /* how long the last stall sent jobs to the caller alone */
    int32_t asleep_runs;   /* jobs in a row that found the workers asleep */
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

/* Spin-wait helper: 0 while the spin lasts, 1 once `budget` ns have passed. */
typedef struct {
    uint32_t spins;
    uint64_t budget, deadline;
} spinner;

static inline int spin_done(spinner *s) {
    cpu_relax();
    if ((++s->spins & 63) != 0) return 0;
    const uint64_t t = now_ns();
    if (!s->deadline) s->deadline = t + s->budget;
    return t > s->deadline;
}

/* The generation of the next job after `seen`: spin, then sleep. */
static uint32_t wait_for_job(uint32_t seen) {
    spinner s = {0, POOL_SPIN_NS, 0};
    uint32_t generation;
    while ((generation = JOB_GENERATION(atomic_load(&pool.job))) == seen)
        if (spin_done(&s)) break;
    if (generation != seen) return generation;
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.sleepers, 1);
    while ((generation = JOB_GENERATION(atomic_load(&pool.job))) == seen)
        pthread_cond_wait(&pool.wake, &pool.lock);
    atomic_store(&pool.wake_sent, 0);
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
    atomic_store(&pool.wake_sent, 0);
    atomic_store(&pool.caller_sleeping, 0);
    pool.workers = 0;
    pool.alone_until = pool.backoff = 0;
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

/* Wait for the indices workers still run.  They should end about when the caller's
 * own did; a worker still busy long after that has most likely been preempted, and
 * the caller then sleeps, which frees its core for that worker. */
static void wait_for_finish(int32_t count, uint64_t own_ns) {
    spinner s = {0, own_ns + POOL_FINISH_SLACK_NS, 0};
    while (atomic_load(&pool.finished) < count)
        if (spin_done(&s)) break;
    if (atomic_load(&pool.finished) >= count) return;
    pthread_mutex_lock(&pool.lock);
    atomic_store(&pool.caller_sleeping, 1);
    while (atomic_load(&pool.finished) < count) pthread_cond_wait(&pool.done, &pool.lock);
    atomic_store(&pool.caller_sleeping, 0);
    pthread_mutex_unlock(&pool.lock);
}

/* Small jobs on a machine whose cores are busy elsewhere: handing them over costs
 * more than it saves.  It shows in two ways: the caller waits for an awake worker
 * much longer than its own indices took (the worker was preempted in the middle
 * of one), or several small jobs in a row find the workers asleep (woken workers
 * stay asleep until the system gives them a core, and waking one can take the
 * caller's core from it).  Then small jobs run on the caller alone for a while,
 * 20 ms at first, doubling while it lasts; a small job that went well halves
 * that time.  Large jobs always wake the workers: that pays even when slow. */
static void judge_small_job(int found_asleep, uint64_t own_ns, uint64_t waited_ns,
                            uint64_t now) {
    pool.asleep_runs = found_asleep ? pool.asleep_runs + 1 : 0;
    if ((!found_asleep && waited_ns > own_ns / 4 + POOL_STALL_NS) ||
        pool.asleep_runs >= POOL_ASLEEP_RUNS) {
        pool.asleep_runs = 0;
        pool.backoff = pool.backoff ? pool.backoff * 2 : POOL_BACKOFF_MIN_NS;
        if (pool.backoff > POOL_BACKOFF_MAX_NS) pool.backoff = POOL_BACKOFF_MAX_NS;
        pool.alone_until = now + pool.backoff;
    } else if (!found_asleep) {
        pool.backoff /= 2;
    }
}

INTERNAL void pool_run(pool_task task, void *arg, int32_t count, int32_t threads,
                       int64_t work) {
    if (threads > DAW_MAX_THREADS) threads = DAW_MAX_THREADS;
    if (threads > count) threads = count;
    if (threads <= 1 || pthread_mutex_trylock(&pool.busy) != 0) {
        for (int32_t k = 0; k < count; k++) task(arg, k, count);
        return;
    }
    const int small = work < POOL_LARGE_WORK;
    const uint64_t started = now_ns();
    if (small && started < pool.alone_until) {
        pthread_mutex_unlock(&pool.busy);
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
    /* Waking costs a system call; a worker already woken but not yet running needs no
     * second one.  A missed wake-up only costs speed: the caller runs whatever no
     * worker claims. */
    const int found_asleep = atomic_load(&pool.sleepers) > 0;
    if (found_asleep && !atomic_exchange(&pool.wake_sent, 1)) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    for (int32_t k; (k = claim(generation, count)) >= 0;) {
        task(arg, k, count);
        finish_index(count);
    }
    const uint64_t own_done = now_ns();
    wait_for_finish(count, own_done - started);
    if (small) {
        const uint64_t now = now_ns();
        judge_small_job(found_asleep, own_done - started, now - own_done, now);
    }
    pthread_mutex_unlock(&pool.busy);
}
