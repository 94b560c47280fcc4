#ifndef CKERNELS_CPARALLEL_H
#define CKERNELS_CPARALLEL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One task of a parallel run: `index` in [0, count). */
typedef void (*ck_task)(void *context, size_t index);

/* Runs task(context, i) for every i in [0, count) on the calling thread and up to threads − 1 pool workers, and
   returns 1 once all have finished. Workers wait for the next run by spinning briefly (about a millisecond) before
   they sleep, so the back-to-back runs of a network's layers do not pay a thread wake-up each. Which thread runs
   which index is not fixed: a task must depend on its index only.
   Returns 0 without running anything when the pool is already running another call's tasks (a concurrent caller,
   or a task that starts a run of its own): the caller then runs them some other way. */
int ck_parallel_run(size_t count, size_t threads, ck_task task, void *context);

#ifdef __cplusplus
}
#endif

#endif
