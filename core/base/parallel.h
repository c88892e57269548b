/* Fork/join (internal to core): the one way core runs work on several threads.
 *
 * The caller cuts its work into parts that do not depend on one another and that it
 * combines in part order, so a result never depends on how many threads ran the parts (or
 * whether a thread could be started at all). The thread count comes from the environment
 * snapshot (env.c: ANNPACK_THREADS); it changes speed only. */
#ifndef ANNPACK_CORE_PARALLEL_H
#define ANNPACK_CORE_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

/* At most this many parts (and threads) per call. */
#define AP_PARALLEL_MAX 64u

/* The worker thread count: ANNPACK_THREADS (default 1), at most AP_PARALLEL_MAX. */
uint32_t ap_parallel_threads(void);

/* How many parts to cut n items into so that a part has about grain items or more: the
 * thread count, fewer when n is small, at least 1. */
uint32_t ap_parallel_parts(size_t n, size_t grain);

/* Part p of nparts: called once for every p < nparts. */
typedef void (*ap_part_fn)(void *ctx, uint32_t p, uint32_t nparts);

/* Runs fn(ctx, p, nparts) for every part p < nparts, each on its own thread, part 0 on the
 * calling thread; a part whose thread cannot be started (or past AP_PARALLEL_MAX) runs on
 * the calling thread once the others are joined. Returns when every part has run. */
void ap_parallel_for(uint32_t nparts, ap_part_fn fn, void *ctx);

/* The items [*from, *to) of part p when n items are cut into nparts contiguous ranges. */
static inline void ap_part_range(size_t n, uint32_t p, uint32_t nparts, size_t *from, size_t *to)
{
    *from = (size_t)((uint64_t)n * p / nparts);
    *to = (size_t)((uint64_t)n * (p + 1) / nparts);
}

#endif
