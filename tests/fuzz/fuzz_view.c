/* Fuzz target: the merged packset view over hostile layer combinations. Once per process
 * a scratch packset directory is filled with small valid layers built through the library
 * (a base with an int8 sidecar, deltas against it, a pack with another embedder and one
 * with another dim, a delta against the other-embedder pack) and tombstone files (valid,
 * overlapping, duplicated, malformed, missing). The input chooses the root manifest: the
 * base layer, then per delta its layer, seq and tombstones file. ap_view_open, then the
 * whole virtual annpack, metadata and sidecar are read and searched.
 *
 * Invariants: a combination the model refuses (seqs not increasing, a delta built against
 * another base hash, another dim or embedder, an id both added and deleted in one layer, a
 * missing, malformed or duplicated tombstones file) is refused; an accepted one is exactly
 * the model's merge (newest mention wins): live count, the virtual JSONL (ascending ids,
 * each row byte-identical to its deciding layer's), the virtual ANNP file (the same live
 * ids, each vector byte-identical to its source, the sidecar valid for it), and an exact
 * brute-force search of the view equals the same search of the virtual ANNP file. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/format.h"
#include "annpack/mount.h"
#include "annpack/pack.h"
#include "annpack/packset.h"
#include "annpack/search.h"
#include "annpack/sq8.h"
#include "fixture.h"
#include "json.h"
#include "manifest.h"
#include "memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NLAYERS 8
#define NTOMBS 8
#define MAX_DELTAS 6
#define MAX_IDS 64

typedef struct layer {
    const char *path; /* relative to the packset */
    int family;       /* same embedder (dim and seed) as another layer of the family */
    uint32_t dim;
    ap_pack *pack;
    uint64_t ids[MAX_IDS]; /* sorted */
    size_t nids;
    cJSON *entry; /* path, annpack, meta, manifest fields with their hashes */
    char sha_annpack[AP_SHA256_HEX];
} layer;

typedef struct tombs {
    const char *path;
    int ok; /* readable, parses, no id twice */
    uint64_t ids[MAX_IDS];
    size_t nids;
    char sha[AP_SHA256_HEX];
} tombs;

static char *ps, *root_path;
static cJSON *root_template;
static layer L[NLAYERS];
static tombs T[NLAYERS + NTOMBS]; /* T[l] = layer l's own tombstones.jsonl, then the extras */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int has(const uint64_t *ids, size_t n, uint64_t id)
{
    return bsearch(&id, ids, n, sizeof id, cmp_u64) != NULL;
}

static void hash_into(cJSON *o, const char *key, const char *rel, char *hex_out)
{
    char *p = fx_path(ps, rel), hex[AP_SHA256_HEX];
    uint64_t sz;
    ap_err err = {0};
    if (ap_sha256_file(p, hex, &sz, &err)) memset(hex, '0', 64), hex[64] = '\0';
    cJSON_AddStringToObject(o, key, hex);
    if (hex_out) memcpy(hex_out, hex, AP_SHA256_HEX);
    free(p);
}

static void add_rel(cJSON *o, const char *key, const char *dir, const char *name)
{
    char rel[512];
    snprintf(rel, sizeof rel, "%s/%s", dir, name);
    cJSON_AddStringToObject(o, key, rel);
}

static void load_tombs(tombs *t, const char *rel)
{
    t->path = rel;
    char *p = fx_path(ps, rel), *text = NULL;
    size_t len = 0;
    uint64_t *ids = NULL, sz;
    size_t n = 0;
    memset(t->sha, '0', 64);
    t->sha[64] = '\0';
    if (ap_read_file(p, 1u << 20, &text, &len, NULL) == AP_OK &&
        ap_parse_id_list(text, len, rel, &ids, &n, NULL) == AP_OK && n <= MAX_IDS) {
        if (n) memcpy(t->ids, ids, n * sizeof *ids);
        qsort(t->ids, n, sizeof *t->ids, cmp_u64);
        t->nids = n;
        t->ok = 1;
        for (size_t i = 1; i < n; i++)
            if (t->ids[i] == t->ids[i - 1]) t->ok = 0;
        ap_sha256_file(p, t->sha, &sz, NULL);
    }
    free(ids);
    free(text);
    free(p);
}

static void load_layer(layer *l, const char *rel, int family)
{
    ap_err err = {0};
    l->path = rel;
    l->family = family;
    char *dir = fx_path(ps, rel);
    if (ap_pack_open(dir, &l->pack, &err)) fx_die(dir, &err);
    const ap_meta *m = ap_pack_meta(l->pack);
    l->dim = ap_annp_get_header(ap_pack_annp(l->pack))->dim;
    l->nids = ap_meta_count(m);
    if (l->nids > MAX_IDS) fx_die("fixture layer too large", NULL);
    for (size_t i = 0; i < l->nids; i++) {
        uint64_t off, len;
        ap_meta_entry(m, i, &l->ids[i], &off, &len);
    }
    qsort(l->ids, l->nids, sizeof *l->ids, cmp_u64);
    ap_pack_manifest pm;
    if (ap_pack_manifest_load(dir, &pm, &err)) fx_die(dir, &err);
    cJSON *e = l->entry = cJSON_CreateObject();
    char rel_meta[512];
    snprintf(rel_meta, sizeof rel_meta, "%s/%s", rel, pm.meta);
    cJSON_AddStringToObject(e, "path", rel);
    add_rel(e, "annpack", rel, AP_ANNPACK);
    snprintf(rel_meta, sizeof rel_meta, "%s/%s", rel, AP_ANNPACK);
    hash_into(e, "sha256_annpack", rel_meta, l->sha_annpack);
    add_rel(e, "meta", rel, pm.meta);
    snprintf(rel_meta, sizeof rel_meta, "%s/%s", rel, pm.meta);
    hash_into(e, "sha256_meta", rel_meta, NULL);
    add_rel(e, "manifest", rel, AP_MANIFEST);
    snprintf(rel_meta, sizeof rel_meta, "%s/%s", rel, AP_MANIFEST);
    hash_into(e, "sha256_manifest", rel_meta, NULL);
    add_rel(e, "delta_manifest", rel, AP_DELTA_MANIFEST);
    snprintf(rel_meta, sizeof rel_meta, "%s/%s", rel, AP_DELTA_MANIFEST);
    hash_into(e, "sha256_delta_manifest", rel_meta, NULL);
    ap_pack_manifest_free(&pm);
    free(dir);
}

static void init(void)
{
    const char *dir = fx_scratch("view");
    char *csv = fx_path(dir, "in.csv"), *p, *q;
    ps = fx_path(dir, "ps");
    root_path = fx_path(ps, AP_MANIFEST);
    /* Base A: 24 rows, dim 8, 3 lists, int8 sidecar; its root manifest is the template. */
    fx_csv(csv, fx_range(0, 24), 24, 0);
    fx_build(csv, ps, 1, 8, 1, 3, 1, AP_META_ZSTD);
    char *base = fx_path(ps, "base");
    static const uint64_t d1[] = {0, 1, 100, 101, 102, 103}, d1x[] = {2, 3};
    static const uint64_t d2x[] = {0, 100, 5, 9999};
    static const uint64_t d3[] = {2, 100, 200}, d3x[] = {1};
    static const uint64_t db[] = {50, 51}, dbx[] = {0};
    p = fx_path(ps, "deltas/0001.delta");
    fx_csv(csv, d1, 6, 1);
    fx_delta(base, p, csv, d1x, 2, AP_META_ZSTD);
    free(p);
    p = fx_path(ps, "deltas/0002.delta");
    fx_delta(base, p, NULL, d2x, 4, AP_META_ZSTD);
    free(p);
    p = fx_path(ps, "deltas/0003.delta");
    fx_csv(csv, d3, 3, 2);
    fx_delta(base, p, csv, d3x, 1, AP_META_ZSTD);
    free(p);
    p = fx_path(ps, "deltas/0004.delta");
    fx_csv(csv, fx_range(0, 4), 4, 3);
    fx_delta(base, p, csv, NULL, 0, AP_META_NONE);
    free(p);
    /* Pack B (another embedder seed), a delta against it, and pack C (another dim). */
    p = fx_path(ps, "more/b");
    q = fx_path(ps, "more");
    ap_err err = {0};
    if (ap_mkdir_p(q, &err)) fx_die(q, &err);
    fx_csv(csv, fx_range(0, 10), 10, 4);
    fx_build(csv, p, 0, 8, 2, 2, 0, AP_META_ZSTD);
    char *db_dir = fx_path(ps, "more/db");
    fx_csv(csv, db, 2, 5);
    fx_delta(p, db_dir, csv, dbx, 1, AP_META_ZSTD);
    free(db_dir);
    free(p);
    free(q);
    p = fx_path(ps, "more/c");
    fx_csv(csv, fx_range(0, 10), 10, 6);
    fx_build(csv, p, 0, 16, 1, 2, 0, AP_META_NONE);
    free(p);
    free(base);
    free(csv);
    /* Extra tombstone files. */
    static const char *extra[NTOMBS][2] = {
        {"tomb/empty.jsonl", ""},
        {"tomb/ints.jsonl", "1\n2\n\n"},
        {"tomb/overlap.jsonl", "{\"id\": 100}\n{\"id\": 101}\n"},
        {"tomb/dup.jsonl", "7\n7\n"},
        {"tomb/bad.jsonl", "{\"id\": -1}\n"},
        {"tomb/big.jsonl", "9007199254740991\n23\n"},
        {"tomb/all.jsonl", "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n"},
        {"tomb/missing.jsonl", NULL},
    };
    p = fx_path(ps, "tomb");
    if (ap_mkdir_p(p, &err)) fx_die(p, &err);
    free(p);
    for (int i = 0; i < NTOMBS; i++) {
        if (extra[i][1]) {
            p = fx_path(ps, extra[i][0]);
            if (fx_put(p, extra[i][1], strlen(extra[i][1]))) fx_die(p, NULL);
            free(p);
        }
        load_tombs(&T[NLAYERS + i], extra[i][0]);
    }
    static const char *paths[NLAYERS] = {"base",
                                         "more/b",
                                         "more/c",
                                         "deltas/0001.delta",
                                         "deltas/0002.delta",
                                         "deltas/0003.delta",
                                         "deltas/0004.delta",
                                         "more/db"};
    static const int family[NLAYERS] = {0, 1, 2, 0, 0, 0, 0, 1};
    static char own[NLAYERS][64];
    for (int i = 0; i < NLAYERS; i++) {
        load_layer(&L[i], paths[i], family[i]);
        snprintf(own[i], sizeof own[i], "%s/%s", paths[i], AP_TOMBSTONES);
        load_tombs(&T[i], own[i]);
    }
    char *raw = NULL;
    size_t len;
    if (ap_read_file(root_path, 1u << 20, &raw, &len, &err)) fx_die(root_path, &err);
    if (!(root_template = cJSON_Parse(raw))) fx_die("root manifest", NULL);
    free(raw);
}

/* The choices an input makes. */
typedef struct choice {
    int base;
    int wrong_base_hash;
    size_t nd;
    uint64_t seq[MAX_DELTAS];
    int layer[MAX_DELTAS], tomb[MAX_DELTAS];
    uint32_t k, probe, scan, chunk, query;
} choice;

static size_t decode(const uint8_t *d, size_t n, choice *c)
{
    size_t at = 0;
#define NEXT() (at < n ? d[at++] : 0)
    uint8_t b = NEXT();
    c->base = b % NLAYERS;
    c->wrong_base_hash = (b & 0x80) != 0;
    c->nd = NEXT() % (MAX_DELTAS + 1);
    uint64_t seq = 0;
    for (size_t i = 0; i < c->nd; i++) {
        uint8_t s = NEXT();
        seq += s % 4 == 0 ? 0 : s % 4 == 3 ? 1000 : s % 4; /* 0: a repeated seq */
        c->seq[i] = seq;
        c->layer[i] = NEXT() % NLAYERS;
        c->tomb[i] = NEXT() % (NTOMBS + 1); /* 0: the layer's own */
    }
    c->k = 1 + NEXT() % 40;
    c->probe = 1 + NEXT() % 4;
    c->scan = NEXT() % 3;
    c->chunk = 1 + NEXT() * 13u;
    c->query = NEXT();
#undef NEXT
    return at;
}

static const tombs *tombs_of(const choice *c, size_t i)
{
    return c->tomb[i] == 0 ? &T[c->layer[i]] : &T[NLAYERS + c->tomb[i] - 1];
}

/* Whether the model refuses the combination. */
static int model_refuses(const choice *c)
{
    const layer *b = &L[c->base];
    for (size_t i = 0; i < c->nd; i++) {
        const layer *l = &L[c->layer[i]];
        const tombs *t = tombs_of(c, i);
        if (c->seq[i] == 0 || (i > 0 && c->seq[i] <= c->seq[i - 1])) return 1;
        if (c->wrong_base_hash || !t->ok || l->dim != b->dim || l->family != b->family) return 1;
        for (size_t j = 0; j < t->nids; j++)
            if (has(l->ids, l->nids, t->ids[j])) return 1;
    }
    return 0;
}

/* The layer (0 = base, i + 1 = delta i) whose row of id is live, or -1. */
static int model_live(const choice *c, uint64_t id)
{
    for (size_t i = c->nd; i-- > 0;) {
        if (has(L[c->layer[i]].ids, L[c->layer[i]].nids, id)) return (int)i + 1;
        const tombs *t = tombs_of(c, i);
        if (has(t->ids, t->nids, id)) return -1;
    }
    return has(L[c->base].ids, L[c->base].nids, id) ? 0 : -1;
}

static const layer *layer_at(const choice *c, int l)
{
    return l == 0 ? &L[c->base] : &L[c->layer[l - 1]];
}

static void write_root(const choice *c)
{
    cJSON *r = cJSON_Duplicate(root_template, 1);
    cJSON *b = cJSON_Duplicate(L[c->base].entry, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(b, "delta_manifest");
    cJSON_DeleteItemFromObjectCaseSensitive(b, "sha256_delta_manifest");
    cJSON_ReplaceItemInObjectCaseSensitive(r, "base", b);
    cJSON *ds = cJSON_CreateArray();
    for (size_t i = 0; i < c->nd; i++) {
        cJSON *e = cJSON_Duplicate(L[c->layer[i]].entry, 1);
        const tombs *t = tombs_of(c, i);
        cJSON_AddNumberToObject(e, "seq", (double)c->seq[i]);
        cJSON_AddStringToObject(e, "tombstones", t->path);
        cJSON_AddStringToObject(e, "sha256_tombstones", t->sha);
        cJSON_AddStringToObject(e, "base_sha256_annpack",
                                c->wrong_base_hash ? L[(c->base + 1) % NLAYERS].sha_annpack
                                                   : L[c->base].sha_annpack);
        cJSON_AddItemToArray(ds, e);
    }
    cJSON_ReplaceItemInObjectCaseSensitive(r, "deltas", ds);
    char *s = cJSON_Print(r);
    if (!s || fx_put(root_path, s, strlen(s))) __builtin_trap();
    free(s);
    cJSON_Delete(r);
}

/* Reads a whole virtual file in chunks of c bytes (NULL when it cannot be read). */
typedef ap_status (*read_fn)(const ap_vpack *, uint64_t, void *, size_t, ap_err *);
static uint8_t *read_all(const ap_vpack *v, read_fn fn, uint64_t size, uint32_t c)
{
    if (size > (64u << 20)) __builtin_trap(); /* the fixture is tiny */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return NULL;
    for (uint64_t at = 0; at < size; at += c) {
        size_t n = size - at < c ? (size_t)(size - at) : c;
        if (fn(v, at, buf + at, n, NULL) != AP_OK) __builtin_trap();
    }
    return buf;
}

/* The stored f16 vector of id in a pack, or NULL. */
static const uint8_t *vec_of(const ap_annp *a, uint64_t id)
{
    const ap_annp_header *h = ap_annp_get_header(a);
    for (uint32_t li = 0; li < h->n_lists; li++) {
        ap_annp_list l;
        ap_annp_list_get(a, li, &l);
        for (uint32_t j = 0; j < l.count; j++)
            if (ap_annp_list_id(&l, j) == id) return l.vecs + 2ull * h->dim * j;
    }
    return NULL;
}

static void check_view(const ap_view *v, const choice *c)
{
    /* The model's live set. */
    uint64_t live[MAX_IDS * (MAX_DELTAS + 1)];
    int from[MAX_IDS * (MAX_DELTAS + 1)];
    size_t nlive = 0;
    uint64_t cand[MAX_IDS * (MAX_DELTAS + 1)];
    size_t ncand = 0;
    for (int l = 0; l <= (int)c->nd; l++) {
        const layer *x = layer_at(c, l);
        for (size_t i = 0; i < x->nids; i++)
            cand[ncand++] = x->ids[i];
    }
    qsort(cand, ncand, sizeof *cand, cmp_u64);
    for (size_t i = 0; i < ncand; i++) {
        if (i && cand[i] == cand[i - 1]) continue;
        int l = model_live(c, cand[i]);
        if (l >= 0) live[nlive] = cand[i], from[nlive++] = l;
    }
    if (ap_view_live_count(v) != nlive) __builtin_trap();
    uint32_t dim = ap_view_dim(v), nl = ap_view_n_lists(v);
    if (dim != L[c->base].dim) __builtin_trap();

    /* Virtual JSONL: exactly the live rows, ascending, each its deciding layer's row. */
    ap_vpack *vp = NULL;
    if (ap_vpack_open(v, &vp, NULL) != AP_OK) __builtin_trap();
    uint64_t msize = ap_vpack_meta_size(vp);
    uint8_t *meta = read_all(vp, ap_vpack_meta_read, msize, c->chunk);
    if (!meta) return;
    size_t at = 0;
    for (size_t i = 0; i < nlive; i++) {
        char *row = NULL;
        size_t rl;
        const ap_pack *p = layer_at(c, from[i])->pack;
        if (ap_meta_get(ap_pack_meta(p), live[i], &row, &rl, NULL) != AP_OK) __builtin_trap();
        if (at + rl + 1 > msize || memcmp(meta + at, row, rl) != 0 || meta[at + rl] != '\n')
            __builtin_trap();
        free(row);
        at += rl + 1;
    }
    if (at != msize) __builtin_trap();
    free(meta);

    /* Virtual ANNP: the live ids, each vector byte-identical to its source. */
    uint64_t asize = ap_vpack_annpack_size(vp);
    uint8_t *ann = read_all(vp, ap_vpack_annpack_read, asize, c->chunk);
    if (!ann) return;
    ap_annp *a = NULL;
    if (ap_annp_open_mem(ann, asize, "virtual.annpack", &a, NULL) != AP_OK) __builtin_trap();
    const ap_annp_header *h = ap_annp_get_header(a);
    if (h->n_vectors != nlive || h->dim != dim || h->n_lists != nl) __builtin_trap();
    for (size_t i = 0; i < nlive; i++) {
        const uint8_t *want = vec_of(ap_pack_annp(layer_at(c, from[i])->pack), live[i]);
        const uint8_t *got = vec_of(a, live[i]);
        if (!want || !got || memcmp(want, got, 2ull * dim) != 0) __builtin_trap();
    }

    /* The virtual sidecar, when the base has one, is valid for the virtual ANNP file. */
    uint64_t ssize = ap_vpack_sq8_size(vp);
    if ((ssize > 0) != ap_view_has_sq8(v)) __builtin_trap();
    if (ssize) {
        uint8_t *sq = read_all(vp, ap_vpack_sq8_read, ssize, c->chunk);
        char path[64];
        int fd = sq ? memfile(sq, ssize, path) : -1;
        ap_sq8 *s = NULL;
        if (fd >= 0) {
            if (ap_sq8_open(path, a, &s, NULL) != AP_OK || ap_sq8_check_codes(s, a, NULL) != AP_OK)
                __builtin_trap();
            ap_sq8_close(s);
            close(fd);
        }
        free(sq);
    }

    /* Exact brute force over the view equals the same search of the virtual file. */
    float *q = calloc(dim, sizeof *q);
    ap_hit hv[40], ha[40];
    uint32_t nv = 0, na = 0;
    if (q) {
        q[c->query % dim] = 1.0f;
        ap_search_params sp = {.k = c->k, .probe = nl, .scan = AP_SCAN_F16};
        if (ap_view_search_ex(v, q, &sp, hv, &nv, NULL, NULL) != AP_OK ||
            ap_annp_search(a, q, c->k, nl, ha, &na, NULL) != AP_OK)
            __builtin_trap();
        if (nv != na || nv != (nlive < c->k ? nlive : c->k)) __builtin_trap();
        for (uint32_t i = 0; i < nv; i++) {
            size_t j = 0;
            while (j < nlive && live[j] != hv[i].id)
                j++;
            if (j == nlive || hv[i].id != ha[i].id || hv[i].score != ha[i].score) __builtin_trap();
            uint32_t seq = from[j] == 0 ? 0 : (uint32_t)c->seq[from[j] - 1];
            if (hv[i].layer != seq) __builtin_trap();
        }
        /* The fuzzed parameters: whatever the scan, hits are live and at most k. */
        sp = (ap_search_params){.k = c->k, .probe = c->probe, .scan = (ap_scan_mode)c->scan};
        if (ap_view_search_ex(v, q, &sp, hv, &nv, NULL, NULL) == AP_OK) {
            if (nv > c->k) __builtin_trap();
            for (uint32_t i = 0; i < nv; i++) {
                size_t j = 0;
                while (j < nlive && live[j] != hv[i].id)
                    j++;
                if (j == nlive) __builtin_trap();
            }
        }
    }
    free(q);
    ap_annp_close(a);
    free(ann);

    char *s = ap_view_status_json(v);
    if (!s) __builtin_trap();
    free(s);
    size_t ml;
    s = ap_vpack_manifest(vp, NULL, &ml, NULL);
    if (!s) __builtin_trap();
    free(s);
    ap_vpack_close(vp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init();
        ready = 1;
    }
    choice c;
    decode(data, size, &c);
    write_root(&c);
    ap_view *v = NULL;
    ap_err err = {0};
    ap_status st = ap_view_open(ps, &v, &err);
    if (st == AP_OK && model_refuses(&c)) __builtin_trap();
    if (st != AP_OK && !err.msg[0]) __builtin_trap();
    if (st == AP_OK) check_view(v, &c);
    ap_view_close(v);
    return 0;
}
