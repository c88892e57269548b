/* Search: top-k order and ties, probing, brute-force equivalence, identical kernels. */
#include <stdlib.h>

#include "annpack/embed.h"
#include "annpack/search.h"
#include "check.h"
#include "fp16.h"
#include "fsops.h"
#include "kmeans.h"

static int cmp_hit(const void *a, const void *b)
{
    const ap_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static void run(uint32_t dim, ap_err *err)
{
    uint64_t rng = dim;
    const uint32_t n = 3000, nl = 7, k = 10;
    float *v = malloc((size_t)n * dim * sizeof *v), *cent = malloc((size_t)nl * dim * sizeof *cent);
    uint64_t *ids = malloc(n * sizeof *ids);
    uint16_t *h = malloc((size_t)n * dim * sizeof *h);
    uint32_t counts[7] = {0};
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t d = 0; d < dim; d++)
            v[(size_t)i * dim + d] = (float)((ap_splitmix64(&rng) >> 11) * 0x1p-53 - 0.5);
        ap_l2_normalize(v + (size_t)i * dim, dim);
        ids[i] = (i * 7919u) % 100000;
        counts[i % nl]++;
    }
    for (uint32_t c = 0; c < nl * dim; c++) cent[c] = v[c];
    /* Lists in order: vector i belongs to list i % nl; write grouped. */
    uint64_t *gid = malloc(n * sizeof *gid);
    uint32_t at = 0;
    for (uint32_t l = 0; l < nl; l++)
        for (uint32_t i = l; i < n; i += nl) {
            gid[at] = ids[i];
            ap_f32_to_f16_n(h + (size_t)at * dim, v + (size_t)i * dim, dim);
            at++;
        }
    char dir[] = "/tmp/annpack-search-XXXXXX";
    mkdtemp(dir);
    char *path = ap_path_join(dir, "p.annpack");
    CHECK_OK(ap_annp_write(path, dim, nl, cent, counts, gid, h, err), err);
    ap_annp *a;
    CHECK_OK(ap_annp_open(path, &a, err), err);
    float *q = malloc(dim * sizeof *q);
    for (int trial = 0; trial < 20; trial++) {
        for (uint32_t d = 0; d < dim; d++) q[d] = (float)((ap_splitmix64(&rng) >> 11) * 0x1p-53 - 0.5);
        ap_l2_normalize(q, dim);
        ap_hit got[10], got2[10], *all = malloc(n * sizeof *all);
        uint32_t ng, ng2;
        CHECK_OK(ap_annp_search(a, q, k, nl, got, &ng, err), err);
        ap_search_force_portable(1);
        CHECK_OK(ap_annp_search(a, q, k, nl, got2, &ng2, err), err);
        ap_search_force_portable(0);
        CHECK(ng == k && ng2 == k && memcmp(got, got2, sizeof got) == 0);
        for (uint32_t i = 0; i < n; i++)
            all[i] = (ap_hit){.id = gid[i], .score = ap_dot_f16(q, (const uint8_t *)(h + (size_t)i * dim), dim)};
        qsort(all, n, sizeof *all, cmp_hit);
        int same = 1;
        for (uint32_t i = 0; i < k; i++) same &= all[i].id == got[i].id && all[i].score == got[i].score;
        CHECK(same);
        free(all);
    }
    /* Fewer probes scan fewer lists but stay ordered. */
    ap_hit got[10];
    uint32_t ng;
    CHECK_OK(ap_annp_search(a, q, k, 1, got, &ng, err), err);
    for (uint32_t i = 1; i < ng; i++) CHECK(got[i - 1].score >= got[i].score);
    CHECK_ERR(ap_annp_search(a, q, 0, 1, got, &ng, err), AP_ERR_ARG, err, "k = 0");
    CHECK_ERR(ap_annp_search(a, q, 5, 0, got, &ng, err), AP_ERR_ARG, err, "probe");
    ap_annp_close(a);
    free(q);
    free(path);
    ap_rmtree(dir);
    free(v);
    free(cent);
    free(ids);
    free(gid);
    free(h);
}

int main(void)
{
    ap_err err;
    /* Top-k with many ties: equals a full sort by (score desc, id asc). */
    ap_hit buf[10], ref[1000];
    ap_topk t;
    ap_topk_init(&t, buf, 10);
    uint64_t rng = 1;
    for (int i = 0; i < 1000; i++) {
        float s = (float)(ap_splitmix64(&rng) % 20);
        ref[i] = (ap_hit){.id = ap_splitmix64(&rng) % 100000, .score = s};
        ap_topk_push(&t, ref[i].id, s, 0);
    }
    CHECK(ap_topk_finish(&t) == 10);
    qsort(ref, 1000, sizeof *ref, cmp_hit);
    int same = 1;
    for (int i = 0; i < 10; i++) same &= ref[i].id == buf[i].id && ref[i].score == buf[i].score;
    CHECK(same);

    /* Probing: best centroids first, ties to the lower index. */
    float cent[4 * 2] = {1, 0, 0, 1, 1, 0, -1, 0}, q[2] = {1, 0};
    uint32_t lists[4];
    CHECK(ap_probe_lists(cent, 4, 2, q, 3, lists) == 3);
    CHECK(lists[0] == 0 && lists[1] == 2 && lists[2] == 1);
    CHECK(ap_probe_lists(cent, 4, 2, q, 9, lists) == 4);

    /* Dead bitmap skipping. */
    uint16_t hv[3 * 16];
    float qq[16];
    for (int i = 0; i < 16; i++) qq[i] = 0.25f;
    for (int i = 0; i < 48; i++) hv[i] = ap_f32_to_f16(i < 16 ? 0.25f : i < 32 ? 0.5f : 0.1f);
    uint8_t idb[24];
    for (int i = 0; i < 3; i++) {
        uint64_t id = 100 + (uint64_t)i;
        memcpy(idb + 8 * i, &id, 8);
    }
    ap_annp_list l = {.count = 3, .ids = idb, .vecs = (const uint8_t *)hv};
    uint8_t dead = 0x2 << 1; /* position 1 + base 1 = bit 2 */
    ap_topk_init(&t, buf, 3);
    ap_scan_list(&t, qq, 16, &l, &dead, 1, 0);
    CHECK(ap_topk_finish(&t) == 2 && buf[0].id == 100 && buf[1].id == 102);

    run(100, &err);
    run(384, &err);
    return check_done();
}
