/* The WebAssembly face of core (web/client/ calls it): the parts of a query a reader in a
 * browser needs, all from core's own sources — the ANNP header (format/annp_header.c),
 * the hash embedders (embed/hash.c; version 2: embed/hash2.c with its table,
 * embed/idf_table.c), the choice of lists and the f16 list scan
 * (search/scan.c), the kernels (search/kernel_f16.c, portable: all versions are
 * bit-identical by contract), top-k (search/topk.c) and the merged view's liveness rule
 * (packset/liveness.c). This file only adapts them to
 * flat memory: JavaScript copies bytes in with apw_malloc, calls, and reads results.
 *
 * A browser has no environment: the caps are their defaults (annpack/caps.h). Errors
 * leave their one-line message at apw_error(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/caps.h"
#include "annpack/format.h"
#include "annpack/search.h"
#include "annpack/sign.h"
#include "annpack_wasm.h"
#include "builtin.h"
#include "embedder.h"
#include "fp16.h"
#include "liveness.h"
#include "scan.h"

#define EXPORT(name) __attribute__((export_name(#name)))

static ap_err g_err;

/* core/base/caps.c reads the environment; here the defaults are the caps. */
const ap_caps *ap_caps_get(void)
{
    static const ap_caps caps = {.max_dim = AP_DEFAULT_MAX_DIM,
                                 .max_lists = AP_DEFAULT_MAX_LISTS,
                                 .max_list_bytes = AP_DEFAULT_MAX_LIST_BYTES,
                                 .max_meta_bytes = AP_DEFAULT_MAX_META_BYTES,
                                 .meta_max_line = AP_DEFAULT_META_MAX_LINE,
                                 .allow_large_meta = false};
    return &caps;
}

/* libsodium is initialised by its JavaScript build before this module is instantiated. */
ap_status ap_crypto_init(ap_err *err)
{
    (void)err;
    return AP_OK;
}

EXPORT(apw_malloc) void *apw_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

EXPORT(apw_free) void apw_free(void *p)
{
    free(p);
}

/* The f16 kernel searches use (ap_search_kernel's name). */
EXPORT(apw_kernel) const char *apw_kernel(void)
{
    const char *name;
    ap_kernel_f16(&name);
    return name;
}

EXPORT(apw_error) const char *apw_error(void)
{
    return g_err.msg;
}

/* The header of an ANNP file of file_size bytes from its first len bytes; out receives
 * dim, n_lists, n_vectors (u32) and the offset table's position (u64 at out + 16). */
EXPORT(apw_header)
int apw_header(const uint8_t *buf, size_t len, uint64_t file_size, const char *name, uint8_t *out)
{
    ap_annp_header h;
    ap_status st = ap_annp_header_decode(buf, len, file_size, name, &h, &g_err);
    if (st) return (int)st;
    memcpy(out, &h.dim, 4);
    memcpy(out + 4, &h.n_lists, 4);
    memcpy(out + 8, &h.n_vectors, 4);
    memcpy(out + 16, &h.offset_table_pos, 8);
    return 0;
}

/* The vector count of list i (its len bytes at p, as the file stores them), or -1 when the
 * count does not fit the length or the list exceeds the cap. */
EXPORT(apw_list_count)
int64_t apw_list_count(const uint8_t *p, uint64_t len, uint32_t dim, uint32_t i, const char *name)
{
    if (len < 4) {
        ap_err_set(&g_err, AP_ERR_FORMAT, "%s: list %u is %llu bytes (at least 4)", name, i,
                   (unsigned long long)len);
        return -1;
    }
    if (len > ap_caps_get()->max_list_bytes) {
        ap_err_set(&g_err, AP_ERR_LIMIT, "%s: list %u is %llu bytes, exceeds %llu", name, i,
                   (unsigned long long)len, (unsigned long long)ap_caps_get()->max_list_bytes);
        return -1;
    }
    uint32_t count =
        (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (ap_annp_list_bytes(count, dim) != len) {
        ap_err_set(&g_err, AP_ERR_FORMAT,
                   "%s: list %u count %u does not fit its length %llu (need %llu)", name, i, count,
                   (unsigned long long)len, (unsigned long long)ap_annp_list_bytes(count, dim));
        return -1;
    }
    return count;
}

/* The hash embedder's vector (dim floats into out) of text[0..len), as `annpack embed`. */
EXPORT(apw_embed_hash)
int apw_embed_hash(uint32_t dim, uint64_t seed, const char *text, size_t len, float *out)
{
    ap_embedder *e;
    ap_status st = ap_embed_hash_create(dim, seed, &e, &g_err);
    if (st) return (int)st;
    st = e->ops->embed(e, text, len, out, &g_err);
    e->ops->destroy(e);
    return (int)st;
}

/* The probe lists q scans (best first, ties to the lower index) among n_lists centroids
 * (row-major float32): every centroid scored exactly in float32, in index order. */
EXPORT(apw_probe)
uint32_t apw_probe(const float *centroids, uint32_t n_lists, uint32_t dim, const float *q,
                   uint32_t probe, uint32_t *lists)
{
    if (probe > n_lists) probe = n_lists;
    float *s = malloc((n_lists ? n_lists : 1) * sizeof *s);
    ap_hit *heap = malloc((probe ? probe : 1) * sizeof *heap);
    uint32_t n = 0;
    if (s && heap) {
        for (uint32_t i = 0; i < n_lists; i++) {
            const float *c = centroids + (size_t)i * dim;
            float acc = 0.0f;
            for (uint32_t d = 0; d < dim; d++)
                acc += c[d] * q[d];
            s[i] = acc;
        }
        n = ap_select_lists(s, n_lists, probe, heap, lists);
    }
    free(s);
    free(heap);
    return n;
}

/* A query's top-k: apw_topk_new, apw_scan per list, apw_topk_finish. */
typedef struct apw_topk {
    ap_topk t;
    float buf[AP_SCAN_BLOCK];
    ap_hit hits[];
} apw_topk;

EXPORT(apw_topk_new) apw_topk *apw_topk_new(uint32_t k)
{
    if (k == 0 || k > AP_MAX_K) return NULL;
    apw_topk *t = malloc(sizeof *t + k * sizeof(ap_hit));
    if (t) ap_topk_init(&t->t, t->hits, k);
    return t;
}

/* Scans one list (its stored bytes, count already checked by apw_list_count) into t;
 * dead (NULL: none) marks dead vectors by bit dead_base + j; hits get layer. */
EXPORT(apw_scan)
void apw_scan(apw_topk *t, const float *q, uint32_t dim, const uint8_t *list, uint32_t count,
              const uint8_t *dead, uint64_t dead_base, uint32_t layer)
{
    ap_annp_list l = {.count = count, .ids = list + 4, .vecs = list + 4 + 8ull * count};
    ap_scan_f16(&t->t, ap_kernel_f16(NULL), t->buf, q, dim, &l, dead, dead_base, NULL, layer, NULL,
                0);
}

/* Sorts the hits best first and returns their count; apw_topk_hits points at them
 * (ap_hit: u64 id, f32 score, u32 layer; 16 bytes each). */
EXPORT(apw_topk_finish) uint32_t apw_topk_finish(apw_topk *t)
{
    return ap_topk_finish(&t->t);
}

EXPORT(apw_topk_hits) const ap_hit *apw_topk_hits(const apw_topk *t)
{
    return t->hits;
}

EXPORT(apw_topk_free) void apw_topk_free(apw_topk *t)
{
    free(t);
}

/* --- the merged view of a packset --------------------------------------------------------- */

/* Resolves m[0..n) (ap_mention: u64 id, u32 layer, 4 bytes padding; 16 bytes each) in
 * place to the newest mention per id, sorted by id; returns the count kept. */
EXPORT(apw_mentions_resolve) uint32_t apw_mentions_resolve(ap_mention *m, uint32_t n)
{
    return (uint32_t)ap_mentions_resolve(m, n);
}

/* Dead bits (bit j for the list's j-th vector; dead holds (count + 7) / 8 bytes, zeroed
 * here) of a list stored in layer under resolved mentions m[0..n). Returns the live count. */
EXPORT(apw_dead_bits)
uint32_t apw_dead_bits(const ap_mention *m, uint32_t n, const uint8_t *list, uint32_t count,
                       uint32_t layer, uint8_t *dead)
{
    ap_annp_list l = {.count = count, .ids = list + 4, .vecs = list + 4 + 8ull * count};
    memset(dead, 0, (count + 7) / 8);
    return ap_list_dead_bits(m, n, &l, layer, dead, 0);
}

/* The base list each of n f16 vectors (2 * dim bytes each, at vecs) is grouped under: the
 * nearest centroid by float32 dot product, ties to the lowest list (the builder's rule). */
EXPORT(apw_assign)
int apw_assign(const float *centroids, uint32_t n_lists, uint32_t dim, const uint8_t *vecs,
               uint32_t n, uint32_t *out)
{
    float *v = malloc((dim ? dim : 1) * sizeof *v);
    uint16_t *h = malloc((dim ? dim : 1) * sizeof *h);
    if (!v || !h) {
        free(v);
        free(h);
        return ap_err_set(&g_err, AP_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        memcpy(h, vecs + 2ull * dim * i, 2ull * dim); /* the stored bytes may be unaligned */
        ap_f16_to_f32_n(v, h, dim);
        uint32_t best = 0;
        float bs = 0.0f;
        for (uint32_t c = 0; c < n_lists; c++) {
            const float *cc = centroids + (size_t)c * dim;
            float acc = 0.0f;
            for (uint32_t d = 0; d < dim; d++)
                acc += cc[d] * v[d];
            if (c == 0 || acc > bs) {
                bs = acc;
                best = c;
            }
        }
        out[i] = best;
    }
    free(v);
    free(h);
    return 0;
}

/* --- the hash embedder version 2 (embed/hash2.c, its table embed/idf_table.c) ----------- */

/* A resident hash v2 embedder loaded with its pack.idf table (bytes[0..len), already
 * checked by the client against the signed manifest's files["pack.idf"]); idf_sha256 is
 * the embedder block's idf.sha256, which the core checks again. NULL on error. Free with
 * apw_embedder_free. */
EXPORT(apw_hash2_new)
ap_embedder *apw_hash2_new(uint32_t dim, uint64_t seed, const char *idf_sha256,
                           const uint8_t *bytes, size_t len, const char *name)
{
    ap_embedder *e;
    if (ap_embed_hash2_create(dim, seed, idf_sha256, &e, &g_err)) return NULL;
    if (e->ops->corpus->load(e, bytes, len, name, &g_err)) {
        e->ops->destroy(e);
        return NULL;
    }
    return e;
}

/* The vector (dim floats into out) of text[0..len) under e, as `annpack embed`. */
EXPORT(apw_embed)
int apw_embed(const ap_embedder *e, const char *text, size_t len, float *out)
{
    return (int)e->ops->embed(e, text, len, out, &g_err);
}

EXPORT(apw_embedder_free) void apw_embedder_free(ap_embedder *e)
{
    if (e) e->ops->destroy(e);
}
