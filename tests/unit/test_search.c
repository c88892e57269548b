/* Search: top-k order and ties, probing, brute-force equivalence, identical kernels;
 * every f16 kernel (by name, ap_kernel_f16_for) against the canonical summation order for
 * many dims and unaligned pointers; coarse probing (int8 centroid codes) choosing the exact float32
 * top-probe lists; batch searches equal single ones; searches on two threads equal one. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <pthread.h>
#include <stdlib.h>

#include "annpack/embed.h"
#include "annpack/pack.h"
#include "annpack/packset.h"
#include "annpack/search.h"
#include "check.h"
#include "coarse.h"
#include "fp16.h"
#include "fsops.h"
#include "kernels.h"
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
    for (uint32_t c = 0; c < nl * dim; c++)
        cent[c] = v[c];
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
        for (uint32_t d = 0; d < dim; d++)
            q[d] = (float)((ap_splitmix64(&rng) >> 11) * 0x1p-53 - 0.5);
        ap_l2_normalize(q, dim);
        ap_hit got[10], got2[10], *all = malloc(n * sizeof *all);
        uint32_t ng, ng2;
        CHECK_OK(ap_annp_search(a, q, k, nl, got, &ng, err), err);
        ap_search_force_portable(1);
        CHECK_OK(ap_annp_search(a, q, k, nl, got2, &ng2, err), err);
        ap_search_force_portable(0);
        CHECK(ng == k && ng2 == k && memcmp(got, got2, sizeof got) == 0);
        for (uint32_t i = 0; i < n; i++)
            all[i] = (ap_hit){.id = gid[i],
                              .score = ap_dot_f16(q, (const uint8_t *)(h + (size_t)i * dim), dim)};
        qsort(all, n, sizeof *all, cmp_hit);
        int same = 1;
        for (uint32_t i = 0; i < k; i++)
            same &= all[i].id == got[i].id && all[i].score == got[i].score;
        CHECK(same);
        free(all);
    }
    /* Fewer probes scan fewer lists but stay ordered. */
    ap_hit got[10];
    uint32_t ng;
    CHECK_OK(ap_annp_search(a, q, k, 1, got, &ng, err), err);
    for (uint32_t i = 1; i < ng; i++)
        CHECK(got[i - 1].score >= got[i].score);
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

/* --- f16 kernels ------------------------------------------------------------------------ */

static float h2f(const uint8_t *v, uint32_t i)
{
    uint16_t h;
    memcpy(&h, v + 2 * i, 2);
    return ap_f16_to_f32(h);
}

/* The canonical order of search.h / kernel_f16.c, written out from its description:
 * 32 lane sums over the 32-element chunks, folded to 16 lanes, one more 16-chunk if
 * dim & 16, the fixed pairwise reduction, then the last dim & 15 products in order.
 * Every product is rounded before it is added (the test is built with -ffp-contract=off). */
static float canonical_dot(const float *q, const uint8_t *v, uint32_t dim)
{
    float a[32] = {0}, s[16];
    const uint32_t m32 = dim / 32 * 32;
    for (uint32_t i = 0; i < m32; i += 32)
        for (uint32_t l = 0; l < 32; l++) {
            float p = q[i + l] * h2f(v, i + l);
            a[l] = a[l] + p;
        }
    for (uint32_t l = 0; l < 16; l++)
        s[l] = a[l] + a[l + 16];
    if (dim % 32 >= 16)
        for (uint32_t l = 0; l < 16; l++) {
            float p = q[m32 + l] * h2f(v, m32 + l);
            s[l] = s[l] + p;
        }
    float r = (((s[0] + s[8]) + (s[4] + s[12])) + ((s[2] + s[10]) + (s[6] + s[14]))) +
              (((s[1] + s[9]) + (s[5] + s[13])) + ((s[3] + s[11]) + (s[7] + s[15])));
    for (uint32_t i = dim / 16 * 16; i < dim; i++) {
        float p = q[i] * h2f(v, i);
        r = r + p;
    }
    return r;
}

static void f16_kernels(void)
{
    typedef struct {
        const char *name;
        ap_f16_block_fn fn;
        int have;
    } kern;
    /* Every version by name (ap_kernel_f16_for): there exactly when the CPU runs it. */
    kern ks[] = {
        {"portable", ap_kernel_f16_for("portable"), 1},
#if defined(__x86_64__)
        {"avx2", ap_kernel_f16_for("avx2"), ap_cpu_has("avx2") && ap_cpu_has("f16c")},
        {"avx512", ap_kernel_f16_for("avx512"), ap_cpu_has("avx512f")},
#endif
    };
    const size_t nk = sizeof ks / sizeof ks[0];
    int tested = 0;
    for (size_t k = 0; k < nk; k++) {
        CHECK((ks[k].fn != NULL) == ks[k].have);
        tested += ks[k].fn != NULL;
    }
    CHECK(!ap_kernel_f16_for("avx512vnni") && !ap_kernel_f16_for("") && !ap_kernel_f16_for("AVX2"));
    fprintf(stderr, "f16 kernels on this CPU: %d of %zu (dispatch: %s)\n", tested, nk,
            ap_search_kernel());
    uint32_t dims[80], nd = 0;
    for (uint32_t d = 1; d <= 70; d++)
        dims[nd++] = d;
    dims[nd++] = 95, dims[nd++] = 96, dims[nd++] = 97, dims[nd++] = 100, dims[nd++] = 127;
    dims[nd++] = 128, dims[nd++] = 384, dims[nd++] = 1000, dims[nd++] = 1024, dims[nd++] = 4096;
    uint64_t rng = 99;
    const uint32_t n = 7;
    uint8_t *vbuf = malloc((size_t)n * 2 * 4096 + 64);
    float *qbuf = malloc((4096 + 16) * sizeof *qbuf);
    float want[7], got[7];
    int bad = 0;
    for (uint32_t t = 0; t < nd; t++) {
        const uint32_t dim = dims[t];
        for (int align = 0; align < 3; align++) {
            /* align 0: aligned; 1: vectors at an odd address; 2: the query off by a float. */
            uint8_t *v = vbuf + (align == 1 ? 1 : 0);
            float *q = qbuf + (align == 2 ? 1 : 0);
            for (uint32_t d = 0; d < dim; d++)
                q[d] = (float)((ap_splitmix64(&rng) >> 11) * 0x1p-53 - 0.5);
            for (uint32_t i = 0; i < n * dim; i++) {
                uint64_t r = ap_splitmix64(&rng);
                float x = (float)((r >> 11) * 0x1p-53 - 0.5);
                /* Some large values, subnormals and negative zeros too. */
                if (r % 97 == 0) x *= 60000.0f;
                if (r % 89 == 0) x *= 1e-5f;
                if (r % 83 == 0) x = -0.0f;
                uint16_t h = ap_f32_to_f16(x);
                memcpy(v + 2 * i, &h, 2);
            }
            for (uint32_t j = 0; j < n; j++)
                want[j] = canonical_dot(q, v + (size_t)j * 2 * dim, dim);
            for (size_t k = 0; k < nk; k++) {
                if (!ks[k].fn) continue;
                memset(got, 0x7f, sizeof got);
                ks[k].fn(q, v, n, dim, got);
                if (memcmp(got, want, n * sizeof *got)) {
                    if (bad++ < 10)
                        fprintf(stderr, "f16 kernel %s, dim %u, align %d: %.9g, canonical %.9g\n",
                                ks[k].name, dim, align, (double)got[0], (double)want[0]);
                }
            }
            /* The public entry points: dispatched, and forced portable. */
            ap_dot_f16_block(q, v, n, dim, got);
            bad += memcmp(got, want, n * sizeof *got) != 0;
            bad += ap_dot_f16(q, v + 2 * dim, dim) != want[1];
            ap_search_force_portable(1);
            ap_dot_f16_block(q, v, n, dim, got);
            ap_search_force_portable(0);
            bad += memcmp(got, want, n * sizeof *got) != 0;
        }
    }
    CHECK(bad == 0);
    /* Dispatch names, and force_portable switching both families. */
    const char *best = ap_search_kernel();
#if defined(__x86_64__)
    CHECK(!strcmp(best, ks[2].have ? "avx512" : ks[1].have ? "avx2" : "portable"));
#endif
    ap_search_force_portable(1);
    CHECK(!strcmp(ap_search_kernel(), "portable") && !strcmp(ap_search_kernel_sq8(), "portable"));
    ap_search_force_portable(0);
    CHECK(!strcmp(ap_search_kernel(), best));
    free(vbuf);
    free(qbuf);
}

/* --- coarse probing ---------------------------------------------------------------------- */

static float frand(uint64_t *rng)
{
    return (float)((ap_splitmix64(rng) >> 11) * 0x1p-53 - 0.5);
}

/* A seeded random pack with 1024 lists: the lists a search scans are the exact float32
 * top-probe (ap_probe_lists), both from ap_coarse_probe directly and as observed through
 * ap_annp_search with k large enough to return every vector of the scanned lists. */
static void coarse(const char *dir, ap_err *err)
{
    enum { NL = 1024, DIM = 64, PER = 3, N = NL * PER, NQ = 200 };
    uint64_t rng = 2024;
    float *cent = malloc((size_t)NL * DIM * sizeof *cent), *v = malloc((size_t)N * DIM * sizeof *v);
    uint16_t *h = malloc((size_t)N * DIM * sizeof *h);
    uint64_t *ids = malloc(N * sizeof *ids);
    uint32_t *counts = malloc(NL * sizeof *counts);
    for (uint32_t l = 0; l < NL; l++) {
        for (uint32_t d = 0; d < DIM; d++)
            cent[(size_t)l * DIM + d] = frand(&rng);
        ap_l2_normalize(cent + (size_t)l * DIM, DIM);
        counts[l] = PER;
    }
    for (uint32_t i = 0; i < N; i++) {
        uint32_t l = i / PER;
        for (uint32_t d = 0; d < DIM; d++)
            v[(size_t)i * DIM + d] = cent[(size_t)l * DIM + d] + 0.3f * frand(&rng);
        ap_l2_normalize(v + (size_t)i * DIM, DIM);
        ids[i] = (uint64_t)(i * 7u) % N; /* ids unrelated to the lists */
    }
    ap_f32_to_f16_n(h, v, (size_t)N * DIM);
    char *path = ap_path_join(dir, "coarse.annpack");
    CHECK_OK(ap_annp_write(path, DIM, NL, cent, counts, ids, h, err), err);
    ap_annp *a = NULL;
    CHECK_OK(ap_annp_open(path, &a, err), err);
    ap_coarse_cache cc;
    ap_coarse_cache_init(&cc);
    const ap_coarse *co = a ? ap_coarse_cache_get(&cc, a) : NULL;
    CHECK(co != NULL); /* >= AP_COARSE_MIN_LISTS lists get codes */
    if (!co) {
        ap_coarse_cache_free(&cc);
        ap_annp_close(a);
        free(path), free(cent), free(v), free(h), free(ids), free(counts);
        return;
    }
    /* AP_COARSE_USE(probe, 1024) holds up to probe 50; 51 and 64 score every centroid. */
    const uint32_t probes[] = {1, 8, 16, 32, 50, 64, 128, 221, 222};
    uint32_t want[256], got[256 + 256 / 8 + 8];
    int8_t *w = aligned_alloc(64, ap_coarse_stride(co));
    int32_t *is = malloc((4 * NL + 8) * sizeof *is);
    ap_hit heap[256], *hits = malloc(1000 * sizeof *hits), *ref = malloc(N * sizeof *ref);
    float q[DIM];
    int list_mismatch = 0, result_mismatch = 0, used_coarse = 0;
    for (int t = 0; t < NQ; t++) {
        /* Half near a centroid (a clear winner), half anywhere. */
        for (uint32_t d = 0; d < DIM; d++)
            q[d] = (t % 2 ? cent[(size_t)(t * 5) * DIM + d] : 0) + frand(&rng);
        ap_l2_normalize(q, DIM);
        for (size_t pi = 0; pi < sizeof probes / sizeof probes[0]; pi++) {
            const uint32_t probe = probes[pi];
            uint32_t nw = ap_probe_lists(ap_annp_centroids(a), NL, DIM, q, probe, want);
            if (AP_COARSE_USE(probe, NL)) {
                used_coarse++;
                ap_coarse_work wk = {.w = w, .is = is, .tmp = is + NL, .heap = heap};
                uint32_t ng = ap_coarse_probe(co, ap_annp_centroids(a), q, probe, &wk, got);
                /* The same lists, possibly in another order where two centroid scores
                 * differ only by rounding (cblas_sdot versus sgemv): the same vectors. */
                int same_set = ng == nw;
                for (uint32_t i = 0; i < nw && same_set; i++) {
                    int found = 0;
                    for (uint32_t j = 0; j < ng; j++)
                        found |= got[j] == want[i];
                    same_set &= found;
                }
                if (!same_set && list_mismatch++ < 5)
                    fprintf(stderr,
                            "coarse probe %u, query %d: other lists than the exact top-probe\n",
                            probe, t);
            }
            /* Observed through a search: k = 1000 returns every vector of the scanned
             * lists, which must be exactly those of the exact top-probe lists. */
            uint32_t nh = 0, nr = 0;
            CHECK_OK(ap_annp_search(a, q, 1000, probe, hits, &nh, err), err);
            for (uint32_t i = 0; i < nw; i++)
                for (uint32_t j = 0; j < PER; j++) {
                    size_t at = (size_t)want[i] * PER + j;
                    ref[nr++] =
                        (ap_hit){.id = ids[at],
                                 .score = ap_dot_f16(q, (const uint8_t *)(h + at * DIM), DIM)};
                }
            qsort(ref, nr, sizeof *ref, cmp_hit);
            if (nh != nr || memcmp(hits, ref, nr * sizeof *ref)) result_mismatch++;
        }
    }
    fprintf(stderr, "coarse probing: %d probes checked, %d list choices and %d results differ\n",
            used_coarse, list_mismatch, result_mismatch);
    /* probe 222 does not fit AP_COARSE_USE for 1024 lists (a shortlist of 257 > 1024 / 4) */
    CHECK(used_coarse == NQ * 8);
    CHECK(list_mismatch == 0 && result_mismatch == 0);
    /* Above the coarse range, and at probe >= n_lists, the search is still exact. */
    uint32_t nh = 0;
    CHECK_OK(ap_annp_search(a, q, 1000, 1024, hits, &nh, err), err);
    for (uint32_t i = 0; i < N; i++)
        ref[i] = (ap_hit){.id = ids[i],
                          .score = ap_dot_f16(q, (const uint8_t *)(h + (size_t)i * DIM), DIM)};
    qsort(ref, N, sizeof *ref, cmp_hit);
    CHECK(nh == 1000 && !memcmp(hits, ref, 1000 * sizeof *ref));
    /* A pack below AP_COARSE_MIN_LISTS gets no codes. */
    char *small = ap_path_join(dir, "small.annpack");
    CHECK_OK(ap_annp_write(small, DIM, AP_COARSE_MIN_LISTS - 1, cent, counts, ids, h, err), err);
    ap_annp *b = NULL;
    CHECK_OK(ap_annp_open(small, &b, err), err);
    ap_coarse_cache cb;
    ap_coarse_cache_init(&cb);
    CHECK(b && ap_coarse_cache_get(&cb, b) == NULL);
    ap_coarse_cache_free(&cb);
    ap_annp_close(b);
    free(small);
    free(w);
    free(is);
    free(hits);
    free(ref);
    ap_coarse_cache_free(&cc);
    ap_annp_close(a);
    free(path);
    free(cent);
    free(v);
    free(h);
    free(ids);
    free(counts);
}

/* --- batches and threads over a built pack ---------------------------------------------- */

typedef struct thread_job {
    const ap_view *v;
    const float *q;
    const ap_search_params *p;
    int from, step, nq;
    ap_hit *hits;
    uint32_t *n;
    ap_status st;
} thread_job;

static void *search_thread(void *arg)
{
    thread_job *j = arg;
    ap_err err;
    const uint32_t dim = ap_view_dim(j->v);
    for (int i = j->from; i < j->nq && !j->st; i += j->step)
        j->st = ap_view_search_ex(j->v, j->q + (size_t)i * dim, j->p, j->hits + (size_t)i * j->p->k,
                                  &j->n[i], NULL, &err);
    return NULL;
}

static void batch_and_threads(const char *dir, uint32_t lists, ap_err *err)
{
    enum { N = 3000, DIM = 64, NQ = 200, K = 10 };
    uint64_t rng = 77 + lists;
    char *fv = ap_path_join(dir, "b.fvecs"), *out = ap_path_join(dir, "bpack");
    float *x = malloc((size_t)N * DIM * sizeof *x), *q = malloc((size_t)NQ * DIM * sizeof *q);
    FILE *f = fopen(fv, "wb");
    for (uint32_t i = 0; i < N; i++) {
        int32_t d = DIM;
        fwrite(&d, 4, 1, f);
        for (uint32_t j = 0; j < DIM; j++)
            x[(size_t)i * DIM + j] = frand(&rng) + (i % 13 == j % 13 ? 0.5f : 0);
        fwrite(x + (size_t)i * DIM, 4, DIM, f);
    }
    fclose(f);
    for (uint32_t i = 0; i < NQ; i++) {
        for (uint32_t j = 0; j < DIM; j++)
            q[(size_t)i * DIM + j] = x[(size_t)(i * 11) * DIM + j] + frand(&rng);
        ap_l2_normalize(q + (size_t)i * DIM, DIM);
    }
    ap_rmtree(out);
    ap_build_opts o = {.vectors = fv,
                       .output_dir = out,
                       .lists = lists,
                       .seed = 1,
                       .sq8 = true,
                       .meta_codec = AP_META_NONE,
                       .kmeans_iters = 3};
    CHECK_OK(ap_pack_build(&o, NULL, err), err);
    ap_view *v = NULL;
    CHECK_OK(ap_view_open(out, &v, err), err);
    ap_hit *one = malloc((size_t)NQ * K * sizeof *one), *bat = malloc((size_t)NQ * K * sizeof *bat),
           *thr = malloc((size_t)NQ * K * sizeof *thr);
    uint32_t n1[NQ], nb[NQ], nt[NQ];
    const uint32_t probes[] = {1, 4, 8, 9, 20, 64, 100000};
    const ap_scan_mode scans[] = {AP_SCAN_F16, AP_SCAN_SQ8};
    int batch_diff = 0, thread_diff = 0;
    for (size_t pi = 0; v && pi < sizeof probes / sizeof probes[0]; pi++)
        for (int si = 0; si < 2; si++) {
            ap_search_params p = {.k = K, .probe = probes[pi], .scan = scans[si]};
            memset(one, 0, (size_t)NQ * K * sizeof *one);
            memset(bat, 0, (size_t)NQ * K * sizeof *bat);
            memset(thr, 0, (size_t)NQ * K * sizeof *thr);
            for (int i = 0; i < NQ; i++)
                CHECK_OK(ap_view_search_ex(v, q + (size_t)i * DIM, &p, one + (size_t)i * K, &n1[i],
                                           NULL, err),
                         err);
            ap_search_stats st = {0};
            CHECK_OK(ap_view_search_batch(v, q, NQ, &p, bat, nb, &st, err), err);
            CHECK(st.searches == NQ);
            if (memcmp(n1, nb, sizeof n1) || memcmp(one, bat, (size_t)NQ * K * sizeof *one)) {
                batch_diff++;
                fprintf(stderr, "batch differs: %u lists, probe %u, scan %d\n", lists, probes[pi],
                        si);
            }
            /* Two client threads, interleaved queries. */
            thread_job j[2] = {{v, q, &p, 0, 2, NQ, thr, nt, AP_OK},
                               {v, q, &p, 1, 2, NQ, thr, nt, AP_OK}};
            pthread_t tid;
            pthread_create(&tid, NULL, search_thread, &j[1]);
            search_thread(&j[0]);
            pthread_join(tid, NULL);
            CHECK(j[0].st == AP_OK && j[1].st == AP_OK);
            if (memcmp(n1, nt, sizeof n1) || memcmp(one, thr, (size_t)NQ * K * sizeof *one)) {
                thread_diff++;
                fprintf(stderr, "2 threads differ: %u lists, probe %u, scan %d\n", lists,
                        probes[pi], si);
            }
        }
    CHECK(batch_diff == 0 && thread_diff == 0);
    /* Batch refusals are those of a single search. */
    ap_search_params bad = {.k = 0, .probe = 4};
    if (v)
        CHECK_ERR(ap_view_search_batch(v, q, NQ, &bad, bat, nb, NULL, err), AP_ERR_ARG, err,
                  "k = 0");
    ap_view_close(v);
    ap_rmtree(out);
    free(one);
    free(bat);
    free(thr);
    free(x);
    free(q);
    free(fv);
    free(out);
}

int main(void)
{
    ap_err err;
    f16_kernels();
    {
        char dir[] = "/tmp/annpack-search2-XXXXXX";
        if (mkdtemp(dir)) {
            coarse(dir, &err);
            batch_and_threads(dir, 16, &err);
            batch_and_threads(dir, 300, &err);
            ap_rmtree(dir);
        }
    }
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
    for (int i = 0; i < 10; i++)
        same &= ref[i].id == buf[i].id && ref[i].score == buf[i].score;
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
    for (int i = 0; i < 16; i++)
        qq[i] = 0.25f;
    for (int i = 0; i < 48; i++)
        hv[i] = ap_f32_to_f16(i < 16 ? 0.25f : i < 32 ? 0.5f : 0.1f);
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
