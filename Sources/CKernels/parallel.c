/* A small pool of worker threads for the kernels' parallel loops (see cparallel.h).

   One run at a time holds the pool (`busy`). The caller publishes the run under the mutex (task, context, count,
   a new generation) and then claims indices like any worker. An index is claimed by a compare-and-swap on `ticket`
   = generation << 32 | next index, against a (generation, count) snapshot taken under the mutex: a claim succeeds
   only while the ticket still belongs to that run and the index is below its count, so a worker that is late to a
   run can never take an index of the next one. The caller returns when `done` reaches the count; a run's fields
   are replaced only after that, when every claimed index has finished. */
#include "cparallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CKP_PAUSE() _mm_pause()
#else
#define CKP_PAUSE() ((void)0)
#endif

#define CKP_MAX_WORKERS 63
/* How long an idle worker spins before it sleeps. */
#define CKP_SPIN_NS 2000000L

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static atomic_int busy;
static size_t workers;  /* started so far (under mutex) */
static int sleepers;    /* workers waiting on `wake` (under mutex) */

/* The current run (written under mutex before its generation is published). */
static uint32_t run_generation;
static size_t run_count, run_helpers;
static ck_task run_task;
static void *run_context;

static _Atomic uint32_t generation; /* mirrors run_generation, for spinning without the mutex */
static _Atomic uint64_t ticket;
static _Atomic size_t done;

static _Thread_local int inside_run;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Claims and runs indices of run `gen` (of `count` tasks) until none is left. */
static void work(uint32_t gen, size_t count, ck_task task, void *context) {
    uint64_t t = atomic_load_explicit(&ticket, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(t >> 32) != gen || (t & 0xffffffffu) >= count) return;
        if (!atomic_compare_exchange_weak_explicit(&ticket, &t, t + 1, memory_order_acq_rel, memory_order_acquire))
            continue;
        task(context, (size_t)(t & 0xffffffffu));
        atomic_fetch_add_explicit(&done, 1, memory_order_release);
        t = atomic_load_explicit(&ticket, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    size_t id = (size_t)(uintptr_t)arg;
    inside_run = 1;
    uint32_t seen = 0;
    for (;;) {
        /* Spin for a while, then sleep until a new run is published. */
        long long start = now_ns();
        unsigned spins = 0;
        while (atomic_load_explicit(&generation, memory_order_acquire) == seen) {
            CKP_PAUSE();
            if (++spins % 256 == 0 && now_ns() - start > CKP_SPIN_NS) break;
        }
        pthread_mutex_lock(&mutex);
        while (run_generation == seen) {
            sleepers++;
            pthread_cond_wait(&wake, &mutex);
            sleepers--;
        }
        uint32_t gen = run_generation;
        size_t count = run_count, helpers = run_helpers;
        ck_task task = run_task;
        void *context = run_context;
        pthread_mutex_unlock(&mutex);
        seen = gen;
        if (id < helpers) work(gen, count, task, context);
    }
    return NULL;
}

int ck_parallel_run(size_t count, size_t threads, ck_task task, void *context) {
    if (count == 0) return 1;
    if (inside_run) return 0;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&busy, &expected, 1)) return 0;
    size_t helpers = threads > 1 ? threads - 1 : 0;
    if (helpers > count - 1) helpers = count - 1;
    if (helpers > CKP_MAX_WORKERS) helpers = CKP_MAX_WORKERS;

    pthread_mutex_lock(&mutex);
    while (workers < helpers) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, worker_main, (void *)(uintptr_t)workers);
        pthread_attr_destroy(&attr);
        if (failed) break;
        workers++;
    }
    if (helpers > workers) helpers = workers;
    uint32_t gen = run_generation + 1;
    if (gen == 0) gen = 1; /* 0 is the workers' initial "seen" */
    run_generation = gen;
    run_count = count;
    run_helpers = helpers;
    run_task = task;
    run_context = context;
    atomic_store_explicit(&done, 0, memory_order_relaxed);
    atomic_store_explicit(&ticket, (uint64_t)gen << 32, memory_order_release);
    atomic_store_explicit(&generation, gen, memory_order_release);
    if (sleepers > 0 && helpers > 0) pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&mutex);

    inside_run = 1;
    work(gen, count, task, context);
    inside_run = 0;
    /* A worker may still be running a claimed index; yield now and then in case it waits for this core. */
    for (unsigned spins = 1; atomic_load_explicit(&done, memory_order_acquire) < count; spins++) {
        CKP_PAUSE();
        if (spins % 4096 == 0) sched_yield();
    }
    atomic_store(&busy, 0);
    return 1;
}
