/* pack.filter's id sets: annpack's sorted u64 lists against CRoaring (Debian's
 * libroaring-dev), on synthetic filter columns over N documents grouped into IVF lists.
 *
 * Not part of the meson build (CRoaring is not a dependency of annpack); build and run:
 *   cc -O2 -march=native -o /tmp/filter_bench tools/bench/filter_bench.c -lroaring -lm
 *   nice /tmp/filter_bench [N=1000000] [LISTS=1024] [QUERIES=200] [REPEATS=5]
 *
 * Documents 0..N-1 (ids = row numbers, the default) fall into LISTS lists at random (k-means
 * groups by content, so a list's ids are spread over the whole range), each list's ids
 * ascending as the builder writes them. Columns of 2, 20 and 2,000 values, uniform or Zipf
 * (s = 1). Per column: bytes of the set representation (sorted lists: pack.filter's layout;
 * CRoaring: portable serialisation after run optimisation), time to build them from the
 * column, time to open them (annpack's order check / CRoaring's safe deserialisation), and
 * per query the membership test of every id of probe 8 or 32 random lists (what the scan
 * does for every candidate it keeps when a selective filter keeps the top-k floor low), for
 * a value drawn as a random document's value. Conditions ANDed over two columns: each
 * set tested in turn (stop at the first miss) or, CRoaring only, intersected first.
 * "sorted from a hint" is the lookup the scan makes (ap_filter_value_has_near: outward from
 * where the previous lookup ended, a scanned list's ids being ascending).
 * Also the per-query cost of marking the whole pack (every id tested once), the approach
 * of annpack's first filtered search. Every figure is the median of REPEATS runs. */
#define _GNU_SOURCE
#include <math.h>
#include <roaring/roaring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

/* --- sorted lists, as pack.filter stores them (u64 LE ids, possibly unaligned) ----------- */

typedef struct slist {
    uint8_t *ids; /* count u64 LE */
    uint32_t count;
} slist;

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline int slist_has(const slist *v, uint64_t id)
{
    uint32_t lo = 0, hi = v->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t x = le64(v->ids + 8ull * mid);
        if (x == id) return 1;
        if (x < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* The same from a hint (annpack's ap_filter_value_has_near): outward from where the last
 * lookup ended, then a binary search of the bracket. */
static inline int slist_has_near(const slist *v, uint64_t id, uint32_t *hint)
{
    const uint32_t n = v->count, h = *hint < n ? *hint : 0;
    uint64_t x = le64(v->ids + 8ull * h);
    *hint = h;
    if (x == id) return 1;
    uint32_t lo, hi;
    if (x < id) {
        lo = h + 1;
        hi = n;
        for (uint64_t b = 1; (uint64_t)h + b < n; b <<= 1) {
            if (le64(v->ids + 8ull * (h + b)) >= id) {
                hi = (uint32_t)(h + b) + 1;
                break;
            }
            lo = (uint32_t)(h + b) + 1;
        }
    } else {
        lo = 0;
        hi = h;
        for (uint64_t b = 1; b <= h; b <<= 1) {
            if (le64(v->ids + 8ull * (h - b)) <= id) {
                lo = (uint32_t)(h - b);
                break;
            }
            hi = (uint32_t)(h - b);
        }
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (le64(v->ids + 8ull * mid) < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *hint = lo < n ? lo : n - 1;
    return lo < n && le64(v->ids + 8ull * lo) == id;
}

/* --- one column --------------------------------------------------------------------------- */

typedef struct column {
    const char *name;
    uint32_t nv;
    uint32_t *val; /* per doc */
    slist *sl;     /* per value */
    uint8_t *sl_file;
    size_t sl_bytes;
    roaring_bitmap_t **rb;
    char **rb_ser;
    size_t rb_bytes;
} column;

static uint32_t N, NLISTS, NQ, REP;
static uint32_t *list_of; /* doc -> list */
static uint64_t **lists;  /* list -> ascending ids */
static uint32_t *list_n;

static void make_column(column *c, const char *name, uint32_t nv, int zipf)
{
    c->name = name;
    c->nv = nv;
    c->val = malloc(N * sizeof *c->val);
    double *cum = malloc(nv * sizeof *cum), s = 0;
    for (uint32_t v = 0; v < nv; v++)
        cum[v] = (s += zipf ? 1.0 / (v + 1.0) : 1.0);
    for (uint32_t i = 0; i < N; i++) {
        double u = (double)(next() >> 11) / 9007199254740992.0 * s;
        uint32_t lo = 0, hi = nv - 1;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (cum[mid] > u)
                hi = mid;
            else
                lo = mid + 1;
        }
        c->val[i] = lo;
    }
    free(cum);
}

/* The sorted lists (one buffer laid out as pack.filter: u16 len, value, u32 count, ids). */
static double build_sorted(column *c)
{
    double t0 = now();
    uint32_t *cnt = calloc(c->nv, sizeof *cnt);
    for (uint32_t i = 0; i < N; i++)
        cnt[c->val[i]]++;
    size_t bytes = 16 + 2 + strlen(c->name) + 4;
    uint32_t present = 0;
    for (uint32_t v = 0; v < c->nv; v++)
        if (cnt[v]) {
            char t[16];
            bytes += 2 + (size_t)snprintf(t, sizeof t, "v%u", v) + 4 + 8ull * cnt[v];
            present++;
        }
    uint8_t *f = malloc(bytes), *p = f + 16 + 2 + strlen(c->name) + 4;
    free(c->sl);
    c->sl = calloc(c->nv, sizeof *c->sl);
    uint8_t **at = malloc(c->nv * sizeof *at);
    for (uint32_t v = 0; v < c->nv; v++) {
        if (!cnt[v]) continue;
        char t[16];
        uint16_t l = (uint16_t)snprintf(t, sizeof t, "v%u", v);
        memcpy(p, &l, 2);
        memcpy(p + 2, t, l);
        memcpy(p + 2 + l, &cnt[v], 4);
        c->sl[v].ids = at[v] = p + 6 + l;
        c->sl[v].count = cnt[v];
        p += 6 + l + 8ull * cnt[v];
    }
    for (uint32_t i = 0; i < N; i++) { /* ids ascending: docs in order */
        uint64_t id = i;
        memcpy(at[c->val[i]], &id, 8);
        at[c->val[i]] += 8;
    }
    (void)present;
    free(at);
    free(cnt);
    free(c->sl_file);
    c->sl_file = f;
    c->sl_bytes = bytes;
    return now() - t0;
}

/* What annpack's reader does at open: every id in order (the lists are used in place). */
static double open_sorted(const column *c)
{
    double t0 = now();
    uint64_t bad = 0;
    for (uint32_t v = 0; v < c->nv; v++)
        for (uint32_t i = 1; i < c->sl[v].count; i++)
            bad += le64(c->sl[v].ids + 8ull * (i - 1)) >= le64(c->sl[v].ids + 8ull * i);
    if (bad) abort();
    return now() - t0;
}

static double build_roaring(column *c)
{
    double t0 = now();
    c->rb = calloc(c->nv, sizeof(void *)); /* roaring_bitmap_t pointers */
    c->rb_ser = calloc(c->nv, sizeof *c->rb_ser);
    c->rb_bytes = 0;
    for (uint32_t v = 0; v < c->nv; v++)
        c->rb[v] = roaring_bitmap_create();
    for (uint32_t i = 0; i < N; i++)
        roaring_bitmap_add(c->rb[c->val[i]], i);
    for (uint32_t v = 0; v < c->nv; v++) {
        roaring_bitmap_run_optimize(c->rb[v]);
        size_t n = roaring_bitmap_portable_size_in_bytes(c->rb[v]);
        c->rb_ser[v] = malloc(n);
        roaring_bitmap_portable_serialize(c->rb[v], c->rb_ser[v]);
        c->rb_bytes += n + 2 + 8 + 4; /* + value text ("v%u", ~4 B), its length, size */
    }
    return now() - t0;
}

static double open_roaring(column *c)
{
    double t0 = now();
    for (uint32_t v = 0; v < c->nv; v++) {
        size_t n = roaring_bitmap_portable_size_in_bytes(c->rb[v]);
        roaring_bitmap_t *r = roaring_bitmap_portable_deserialize_safe(c->rb_ser[v], n);
        if (!r) abort();
        roaring_bitmap_free(c->rb[v]);
        c->rb[v] = r;
    }
    return now() - t0;
}

static void free_roaring(column *c)
{
    for (uint32_t v = 0; v < c->nv; v++) {
        roaring_bitmap_free(c->rb[v]);
        free(c->rb_ser[v]);
    }
    free(c->rb);
    free(c->rb_ser);
}

/* --- queries -------------------------------------------------------------------------------- */

typedef struct query {
    uint32_t lists[32];
    uint32_t v1, v2; /* values of the two columns */
} query;

static query *qs;

static void make_queries(const column *a, const column *b)
{
    for (uint32_t q = 0; q < NQ; q++) {
        for (int i = 0; i < 32; i++)
            qs[q].lists[i] = (uint32_t)(next() % NLISTS);
        uint32_t doc = (uint32_t)(next() % N);
        qs[q].v1 = a->val[doc];
        qs[q].v2 = b ? b->val[doc] : 0;
    }
}

static volatile uint64_t sink;

/* Per-query microseconds: every id of the probed lists tested (method 0 sorted, 1
 * CRoaring contains, 2 CRoaring intersection then contains, 3 sorted from a hint). */
static double run_scan(const column *a, const column *b, uint32_t probe, int method)
{
    double t0 = now();
    uint64_t hits = 0;
    for (uint32_t q = 0; q < NQ; q++) {
        const query *Q = &qs[q];
        uint32_t h1 = 0, h2 = 0;
        roaring_bitmap_t *both = NULL;
        if (method == 2 && !(both = roaring_bitmap_and(a->rb[Q->v1], b->rb[Q->v2]))) abort();
        for (uint32_t i = 0; i < probe; i++) {
            uint32_t li = Q->lists[i];
            const uint64_t *ids = lists[li];
            for (uint32_t j = 0; j < list_n[li]; j++) {
                uint64_t id = ids[j];
                int keep;
                if (method == 0)
                    keep = slist_has(&a->sl[Q->v1], id) && (!b || slist_has(&b->sl[Q->v2], id));
                else if (method == 3)
                    keep = slist_has_near(&a->sl[Q->v1], id, &h1) &&
                           (!b || slist_has_near(&b->sl[Q->v2], id, &h2));
                else if (method == 1)
                    keep = roaring_bitmap_contains(a->rb[Q->v1], (uint32_t)id) &&
                           (!b || roaring_bitmap_contains(b->rb[Q->v2], (uint32_t)id));
                else
                    keep = both && roaring_bitmap_contains(both, (uint32_t)id);
                hits += (uint64_t)keep;
            }
        }
        if (both) roaring_bitmap_free(both);
    }
    sink += hits;
    return (now() - t0) / NQ * 1e6;
}

/* Per-query milliseconds: a bit per document of the whole pack, every id tested. */
static double run_whole(const column *a, uint32_t nq, int method)
{
    uint8_t *bits = malloc(N / 8 + 1);
    double t0 = now();
    for (uint32_t q = 0; q < nq; q++) {
        memset(bits, 0, N / 8 + 1);
        const query *Q = &qs[q];
        for (uint32_t li = 0; li < NLISTS; li++)
            for (uint32_t j = 0; j < list_n[li]; j++) {
                uint64_t id = lists[li][j];
                int keep = method == 0 ? slist_has(&a->sl[Q->v1], id)
                                       : roaring_bitmap_contains(a->rb[Q->v1], (uint32_t)id);
                if (!keep) bits[id >> 3] |= (uint8_t)(1u << (id & 7));
            }
        sink += bits[q % (N / 8)];
    }
    free(bits);
    return (now() - t0) / nq * 1e3;
}

int main(int argc, char **argv)
{
    N = argc > 1 ? (uint32_t)atol(argv[1]) : 1000000u;
    NLISTS = argc > 2 ? (uint32_t)atol(argv[2]) : 1024u;
    NQ = argc > 3 ? (uint32_t)atol(argv[3]) : 200u;
    REP = argc > 4 ? (uint32_t)atol(argv[4]) : 5u;
    if (REP > 15) REP = 15;
    list_of = malloc(N * sizeof *list_of);
    list_n = calloc(NLISTS, sizeof *list_n);
    lists = calloc(NLISTS, sizeof *lists);
    for (uint32_t i = 0; i < N; i++)
        list_n[list_of[i] = (uint32_t)(next() % NLISTS)]++;
    uint32_t *fill = calloc(NLISTS, sizeof *fill);
    for (uint32_t l = 0; l < NLISTS; l++)
        lists[l] = malloc((list_n[l] ? list_n[l] : 1) * sizeof **lists);
    for (uint32_t i = 0; i < N; i++)
        lists[list_of[i]][fill[list_of[i]]++] = i;
    free(fill);
    qs = malloc(NQ * sizeof *qs);

    column cols[6];
    const char *names[6] = {"2u", "2z", "20u", "20z", "2000u", "2000z"};
    uint32_t nvs[6] = {2, 2, 20, 20, 2000, 2000};
    for (int c = 0; c < 6; c++) {
        memset(&cols[c], 0, sizeof cols[c]);
        make_column(&cols[c], names[c], nvs[c], c & 1);
    }
    printf("N=%u lists=%u queries=%u repeats=%u (medians)\n", N, NLISTS, NQ, REP);
    printf("%-6s | %10s %10s | %8s %8s | %8s %8s | %9s %9s %9s | %9s %9s %9s | %8s %8s\n", "column",
           "sorted B", "roaring B", "bld s ms", "bld r ms", "open s", "open r", "p8 s us",
           "p8 h us", "p8 r us", "p32 s us", "p32 h us", "p32 r us", "whole s", "whole r");
    for (int c = 0; c < 6; c++) {
        double t[10][15];
        make_queries(&cols[c], NULL);
        for (uint32_t r = 0; r < REP; r++) {
            if (r) free_roaring(&cols[c]);
            t[0][r] = build_sorted(&cols[c]) * 1e3;
            t[1][r] = build_roaring(&cols[c]) * 1e3;
            t[2][r] = open_sorted(&cols[c]) * 1e3;
            t[3][r] = open_roaring(&cols[c]) * 1e3;
            t[4][r] = run_scan(&cols[c], NULL, 8, 0);
            t[5][r] = run_scan(&cols[c], NULL, 8, 1);
            t[6][r] = run_scan(&cols[c], NULL, 32, 0);
            t[7][r] = run_scan(&cols[c], NULL, 32, 1);
            t[8][r] = run_scan(&cols[c], NULL, 8, 3);
            t[9][r] = run_scan(&cols[c], NULL, 32, 3);
        }
        double w[2][15];
        for (uint32_t r = 0; r < REP; r++) {
            w[0][r] = run_whole(&cols[c], 5, 0);
            w[1][r] = run_whole(&cols[c], 5, 1);
        }
        printf("%-6s | %10zu %10zu | %8.1f %8.1f | %8.2f %8.2f | %9.0f %9.0f %9.0f | %9.0f %9.0f "
               "%9.0f | %8.1f %8.1f\n",
               names[c], cols[c].sl_bytes, cols[c].rb_bytes, median(t[0], (int)REP),
               median(t[1], (int)REP), median(t[2], (int)REP), median(t[3], (int)REP),
               median(t[4], (int)REP), median(t[8], (int)REP), median(t[5], (int)REP),
               median(t[6], (int)REP), median(t[9], (int)REP), median(t[7], (int)REP),
               median(w[0], (int)REP), median(w[1], (int)REP));
    }
    /* Two conditions ANDed. */
    const int pairs[3][2] = {{2, 5}, {1, 3}, {4, 5}};
    printf("\nAND of two columns, per query us: sorted (each in turn) / sorted from a hint /"
           " CRoaring contains (each in turn) / CRoaring and() then contains\n");
    for (int pi = 0; pi < 3; pi++) {
        const column *a = &cols[pairs[pi][0]], *b = &cols[pairs[pi][1]];
        make_queries(a, b);
        for (uint32_t probe = 8; probe <= 32; probe *= 4) {
            double t[4][15];
            for (uint32_t r = 0; r < REP; r++)
                for (int m = 0; m < 4; m++)
                    t[m][r] = run_scan(a, b, probe, m);
            printf("%s AND %s, probe %u: %.0f / %.0f / %.0f / %.0f\n", a->name, b->name, probe,
                   median(t[0], (int)REP), median(t[3], (int)REP), median(t[1], (int)REP),
                   median(t[2], (int)REP));
        }
    }
    return (int)(sink & 0);
}
