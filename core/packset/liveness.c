/* The merged view's liveness rule: see liveness.h. */
#include <stdlib.h>

#include "liveness.h"

static int cmp_mention(const void *a, const void *b)
{
    const ap_mention *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->layer < y->layer) - (x->layer > y->layer); /* newest layer first */
}

size_t ap_mentions_resolve(ap_mention *m, size_t n)
{
    if (n > 1) qsort(m, n, sizeof *m, cmp_mention);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (w == 0 || m[w - 1].id != m[i].id) m[w++] = m[i];
    return w;
}

int32_t ap_mentions_newest(const ap_mention *m, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && m[lo].id == id ? (int32_t)m[lo].layer : -1;
}

uint32_t ap_list_dead_bits(const ap_mention *m, size_t n, const ap_annp_list *l, uint32_t layer,
                           uint8_t *dead, uint64_t pos0)
{
    uint32_t live = 0;
    for (uint32_t j = 0; j < l->count; j++) {
        int32_t nm = ap_mentions_newest(m, n, ap_annp_list_id(l, j));
        if (layer == 0 ? nm < 0 : nm == (int32_t)layer) {
            live++;
        } else {
            uint64_t pos = pos0 + j;
            dead[pos >> 3] |= (uint8_t)(1u << (pos & 7));
        }
    }
    return live;
}
