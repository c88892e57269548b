/* The top-k collector: see include/annpack/search.h. A min-heap of the k best hits, the
 * worst at the root, so a candidate is compared with one hit and most are rejected there
 * (scans also compare with ap_topk_floor before calling push at all). */
#include <assert.h>
#include <stdlib.h>

#include "annpack/search.h"

/* a is worse than b: lower score, or same score and higher id. */
static inline int worse(const ap_hit *a, const ap_hit *b)
{
    return a->score < b->score || (a->score == b->score && a->id > b->id);
}

void ap_topk_init(ap_topk *t, ap_hit *buf, uint32_t k)
{
    assert(buf || k == 0);
    t->h = buf;
    t->k = k;
    t->n = 0;
}

static void sift_down(ap_hit *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(&h[l], &h[w])) w = l;
        if (r < n && worse(&h[r], &h[w])) w = r;
        if (w == i) return;
        ap_hit t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

void ap_topk_push(ap_topk *t, uint64_t id, float score, uint32_t layer)
{
    ap_hit x = {.id = id, .score = score, .layer = layer};
    assert(t->n <= t->k);
    if (t->n < t->k) {
        uint32_t i = t->n++;
        t->h[i] = x;
        while (i > 0) {
            uint32_t p = (i - 1) / 2;
            if (!worse(&t->h[i], &t->h[p])) break;
            ap_hit tmp = t->h[i];
            t->h[i] = t->h[p];
            t->h[p] = tmp;
            i = p;
        }
    } else if (t->k > 0 && worse(&t->h[0], &x)) {
        t->h[0] = x;
        sift_down(t->h, t->n, 0);
    }
}

static int cmp_best_first(const void *a, const void *b)
{
    const ap_hit *x = a, *y = b;
    if (worse(y, x)) return -1;
    if (worse(x, y)) return 1;
    return 0;
}

uint32_t ap_topk_finish(ap_topk *t)
{
    assert(t->n <= t->k);
    if (t->n > 1) qsort(t->h, t->n, sizeof *t->h, cmp_best_first);
    return t->n;
}
