/* Fork/join: see parallel.h. */
#include <pthread.h>
#include <stdbool.h>

#include "env.h"
#include "parallel.h"

uint32_t ap_parallel_threads(void)
{
    uint32_t t = ap_env_get()->threads; /* at least 1 */
    return t > AP_PARALLEL_MAX ? AP_PARALLEL_MAX : t < 1 ? 1 : t;
}

uint32_t ap_parallel_parts(size_t n, size_t grain)
{
    uint32_t t = ap_parallel_threads();
    size_t most = grain ? (n + grain - 1) / grain : n;
    if (most < t) t = (uint32_t)most;
    return t ? t : 1;
}

typedef struct part_arg {
    ap_part_fn fn;
    void *ctx;
    uint32_t p, nparts;
} part_arg;

static void *run_part(void *arg)
{
    const part_arg *a = arg;
    a->fn(a->ctx, a->p, a->nparts);
    return NULL;
}

void ap_parallel_for(uint32_t nparts, ap_part_fn fn, void *ctx)
{
    part_arg args[AP_PARALLEL_MAX];
    pthread_t tid[AP_PARALLEL_MAX];
    bool started[AP_PARALLEL_MAX] = {false};
    uint32_t nthreads = nparts < AP_PARALLEL_MAX ? nparts : AP_PARALLEL_MAX;
    for (uint32_t p = 1; p < nthreads; p++) {
        args[p] = (part_arg){fn, ctx, p, nparts};
        started[p] = pthread_create(&tid[p], NULL, run_part, &args[p]) == 0;
    }
    if (nparts) fn(ctx, 0, nparts);
    for (uint32_t p = 1; p < nthreads; p++)
        if (started[p]) pthread_join(tid[p], NULL);
    for (uint32_t p = 1; p < nparts; p++)
        if (p >= nthreads || !started[p]) fn(ctx, p, nparts);
}
