/* Scanning f16 lists and choosing lists: see scan.h. */
#include <assert.h>

#include "scan.h"

#define BLOCK AP_SCAN_BLOCK

/* The probe best of n_lists scores, best first (ties: lower index). */
uint32_t ap_select_lists(const float *s, uint32_t n_lists, uint32_t probe, ap_hit *heap,
                         uint32_t *lists)
{
    ap_topk t;
    ap_topk_init(&t, heap, probe);
    for (uint32_t i = 0; i < n_lists; i++)
        if (s[i] >= ap_topk_floor(&t)) ap_topk_push(&t, i, s[i], 0);
    uint32_t n = ap_topk_finish(&t);
    assert(n <= probe); /* fewer when scores are NaN (an unverified pack) */
    for (uint32_t i = 0; i < n; i++)
        lists[i] = (uint32_t)heap[i].id;
    return n;
}

void ap_scan_f16(ap_topk *t, ap_f16_block_fn fn, float *buf, const float *q, uint32_t dim,
                 const ap_annp_list *l, const uint8_t *dead, uint64_t dead_base,
                 const ap_keep *keep, uint32_t layer, const uint8_t *next, uint64_t next_len)
{
    const size_t stride = 2ull * dim;
    for (uint32_t j0 = 0; j0 < l->count; j0 += BLOCK) {
        uint32_t m = l->count - j0 < BLOCK ? l->count - j0 : BLOCK;
        if (next && j0 + BLOCK >= l->count) ap_prefetch_range(next, next_len);
        fn(q, l->vecs + j0 * stride, m, dim, buf);
        float floor = ap_topk_floor(t);
        for (uint32_t j = 0; j < m; j++) {
            if (buf[j] < floor || ap_is_dead(dead, dead_base + j0 + j)) continue;
            uint64_t id = ap_annp_list_id(l, j0 + j);
            if (keep && !keep->fn(keep->ctx, 0, id)) continue;
            ap_topk_push(t, id, buf[j], layer);
            floor = ap_topk_floor(t);
        }
    }
}

void ap_scan_list(ap_topk *t, const float *q, uint32_t dim, const ap_annp_list *list,
                  const uint8_t *dead, uint64_t dead_base, uint32_t layer)
{
    float buf[BLOCK];
    ap_scan_f16(t, ap_kernel_f16(NULL), buf, q, dim, list, dead, dead_base, NULL, layer, NULL, 0);
}
