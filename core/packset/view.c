/* The merged view of a packset (or of a single pack): see include/annpack/packset.h.
 *
 * Opening resolves, once, which stored vector is live: the newest layer mentioning an id
 * decides. Search then scans base lists with a per-position dead bitmap and the live
 * delta vectors grouped under their nearest base centroid — the same grouping as the
 * merged virtual ANNP file, so copying that file out gives identical answers. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annp_mapping.h"
#include "annpack/caps.h"
#include "annpack/packset.h"
#include "annpack/sign.h"
#include "delta.h"
#include "delta_group.h"
#include "delta_lists.h"
#include "fp16.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "view.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The newest layer mentioning id among deltas, or -1. */
static int32_t newest_mention(const ap_view *v, uint64_t id)
{
    return ap_mentions_newest(v->mentions, v->nmentions, id);
}

/* Delta vectors grouped under base list i get their int8 codes (the base's params): the
 * codes ap_sq8_encode gives, converted with the vector unit. */
static ap_status encode_list(const ap_view *v, uint32_t i, ap_err *err)
{
    const ap_sq8 *sq = ap_pack_sq8(v->layers[0].pack);
    uint32_t dim = ap_sq8_dim(sq), stride = ap_sq8_stride(sq);
    if (v->dstart[i] == v->dstart[i + 1]) return AP_OK;
    float *tmp = malloc(dim * sizeof *tmp);
    if (!tmp) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t d = v->dstart[i]; d < v->dstart[i + 1]; d++) {
        ap_f16_to_f32_n(tmp, (const uint16_t *)(const void *)v->ditems[d].vec, dim);
        ap_sq8_encode_f32(ap_sq8_vmin(sq), ap_sq8_step(sq), dim, stride, tmp,
                          v->dcodes + d * stride);
    }
    free(tmp);
    return AP_OK;
}

ap_status ap_view_ready_list(const ap_view *v, uint32_t i, ap_err *err)
{
    const ap_layer *L = &v->layers[0];
    ap_status st = ap_pack_check_list(L->pack, i, err);
    if (st || !v->list_done || __atomic_load_n(&v->list_done[i], __ATOMIC_ACQUIRE)) return st;
    ap_view *w = (ap_view *)(uintptr_t)v; /* the lazily set parts only, under list_mu */
    pthread_mutex_lock(&w->list_mu);
    if (!w->list_done[i]) {
        if (v->base_lazy) {
            const ap_annp *a = ap_pack_annp(L->pack);
            ap_annp_list list;
            ap_annp_list_get(a, i, &list);
            ap_list_dead_bits(v->mentions, v->nmentions, &list, 0, L->dead,
                              ap_annp_list_start(a, i));
        }
        if (v->dcodes) st = encode_list(v, i, err);
        if (!st) __atomic_store_n(&w->list_done[i], 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&w->list_mu);
    return st;
}

/* The base's lists are ready (checked, dead bits set) before a query scans them. */
static ap_status base_list_guard(const void *ctx, uint32_t list, ap_err *err)
{
    return ap_view_ready_list(ctx, list, err);
}

static ap_status resolve_liveness(ap_view *v, ap_err *err)
{
    /* Every id each delta mentions (adds and tombstones), newest layer first per id. */
    size_t total = 0;
    for (uint32_t l = 1; l < v->nlayers; l++)
        total += ap_meta_count(ap_pack_meta(v->layers[l].pack)) + v->layers[l].ntomb;
    v->mentions = malloc((total ? total : 1) * sizeof *v->mentions);
    if (!v->mentions) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    size_t at = 0;
    for (uint32_t l = 1; l < v->nlayers; l++) {
        const ap_meta *m = ap_pack_meta(v->layers[l].pack);
        for (uint64_t i = 0; i < ap_meta_count(m); i++) {
            uint64_t id, off, len;
            ap_meta_entry(m, i, &id, &off, &len);
            v->mentions[at++] = (ap_mention){id, l};
        }
        for (size_t i = 0; i < v->layers[l].ntomb; i++)
            v->mentions[at++] = (ap_mention){v->layers[l].tomb[i], l};
    }
    v->nmentions = ap_mentions_resolve(v->mentions, at);

    v->live = 0;
    for (uint32_t l = 0; l < v->nlayers; l++) {
        ap_layer *L = &v->layers[l];
        const ap_annp *a = ap_pack_annp(L->pack);
        const ap_annp_header *h = ap_annp_get_header(a);
        L->dead = calloc(h->n_vectors / 8 + 1, 1);
        if (!L->dead) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        if (v->nmentions == 0) {
            /* Nothing newer mentions any id: every vector is live (and the ids need not
             * be read, which keeps a single pack's open from touching its lists). */
            v->live += h->n_vectors;
            continue;
        }
        if (l == 0 && v->base_lazy) {
            /* The base's lists are not read now (they are checked on first use): a base
             * vector is dead when a delta mentions its id, and the base's ids are its rows'
             * (the index, checked whole at open); the merged files confirm the count once
             * every list is read (mount/vpack.c). */
            const ap_meta *bm = ap_pack_meta(L->pack);
            uint64_t gone = 0;
            for (size_t i = 0; i < v->nmentions; i++)
                gone += ap_meta_has(bm, v->mentions[i].id);
            if (gone > h->n_vectors)
                return ap_err_set(err, AP_ERR_VERIFY, "%s: deltas mention %llu base ids of %u",
                                  v->dir, (unsigned long long)gone, h->n_vectors);
            v->live += h->n_vectors - gone;
            continue;
        }
        uint64_t pos = 0;
        for (uint32_t li = 0; li < h->n_lists; li++) {
            ap_annp_list list;
            ap_annp_list_get(a, li, &list);
            v->live += ap_list_dead_bits(v->mentions, v->nmentions, &list, l, L->dead, pos);
            pos += list.count;
        }
    }
    return AP_OK;
}

/* Nearest base list of the live delta vectors whose delta has no delta.lists (built
 * before it existed): assign[i] UINT32_MAX is computed, by the builder's rule. */
static ap_status group_unlisted(const ap_view *v, uint32_t *assign, size_t k, size_t unknown,
                                ap_err *err)
{
    if (!unknown) return AP_OK;
    const uint8_t **vecs = malloc(unknown * sizeof *vecs);
    uint32_t *got = malloc(unknown * sizeof *got);
    ap_status st = AP_OK;
    if (!vecs || !got) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0, u = 0; i < k; i++)
        if (assign[i] == UINT32_MAX) vecs[u++] = v->ditems[i].vec;
    if ((st = ap_group_under(ap_pack_annp(v->layers[0].pack), vecs, unknown, got, err))) goto out;
    for (size_t i = 0, u = 0; i < k; i++)
        if (assign[i] == UINT32_MAX) assign[i] = got[u++];
out:
    free(vecs);
    free(got);
    return st;
}

/* Groups live delta vectors under their base list (delta.lists, or computed), in (seq,
 * position) order. */
static ap_status group_deltas(ap_view *v, ap_err *err)
{
    const ap_annp *base = ap_pack_annp(v->layers[0].pack);
    const ap_annp_header *bh = ap_annp_get_header(base);
    uint32_t nl = bh->n_lists, dim = bh->dim;
    size_t n = 0;
    for (uint32_t l = 1; l < v->nlayers; l++)
        n += ap_annp_get_header(ap_pack_annp(v->layers[l].pack))->n_vectors;
    v->dstart = calloc(nl + 1ull, sizeof *v->dstart);
    v->ditems = malloc((n ? n : 1) * sizeof *v->ditems);
    uint32_t *assign = malloc((n ? n : 1) * sizeof *assign);
    ap_status st = AP_OK;
    if (!v->dstart || !v->ditems || !assign) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t k = 0, unknown = 0;
    for (uint32_t l = 1; l < v->nlayers; l++) {
        const ap_annp *a = ap_pack_annp(v->layers[l].pack);
        const ap_annp_header *h = ap_annp_get_header(a);
        uint32_t under = 0;
        const uint8_t *g = ap_pack_delta_lists(v->layers[l].pack, &under);
        if (g && under != nl) {
            st = ap_err_set(err, AP_ERR_VERIFY,
                            "%s/%s: grouped under %u base lists, the base has %u", v->layers[l].dir,
                            AP_DELTA_LISTS, under, nl);
            goto out;
        }
        uint64_t pos = 0;
        for (uint32_t li = 0; li < h->n_lists; li++) {
            ap_annp_list list;
            ap_annp_list_get(a, li, &list);
            for (uint32_t j = 0; j < list.count; j++, pos++) {
                if (v->layers[l].dead[pos >> 3] & (1u << (pos & 7))) continue;
                v->ditems[k] = (ap_item){
                    .idp = list.ids + 8ull * j, .vec = list.vecs + 2ull * dim * j, .layer = l};
                assign[k++] = g ? ap_delta_lists_at(g, pos) : UINT32_MAX;
                unknown += !g;
            }
        }
    }
    if ((st = group_unlisted(v, assign, k, unknown, err))) goto out;
    v->nditems = k;
    /* Counting sort by list, stable. */
    for (size_t i = 0; i < k; i++) {
        assert(assign[i] < nl);
        v->dstart[assign[i] + 1]++;
    }
    for (uint32_t c = 0; c < nl; c++)
        v->dstart[c + 1] += v->dstart[c];
    assert(v->dstart[nl] == k);
    ap_item *sorted = malloc((k ? k : 1) * sizeof *sorted);
    size_t *fill = malloc((nl + 1ull) * sizeof *fill);
    if (!sorted || !fill) {
        free(sorted);
        free(fill);
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(fill, v->dstart, (nl + 1ull) * sizeof *fill);
    for (size_t i = 0; i < k; i++)
        sorted[fill[assign[i]]++] = v->ditems[i];
    assert(fill[nl - 1] == k); /* every list filled up to where the next one starts */
    free(v->ditems);
    v->ditems = sorted;
    free(fill);
out:
    free(assign);
    return st;
}

/* With the base's int8 sidecar, live delta vectors get codes under the base's params, so
 * an sq8 search treats them exactly like base vectors (and like the merged virtual
 * sidecar, in which they are encoded the same way). They are encoded list by list when a
 * list is first used (ap_view_ready_list): the pages of codes never used are never
 * touched. */
static ap_status alloc_delta_codes(ap_view *v, ap_err *err)
{
    const ap_sq8 *sq = ap_pack_sq8(v->layers[0].pack);
    if (!sq || v->nditems == 0) return AP_OK;
    if (!(v->dcodes = malloc(v->nditems * ap_sq8_stride(sq))))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %zu delta codes", v->nditems);
    return AP_OK;
}

ap_status ap_view_open(const char *dir, ap_view **out, ap_err *err)
{
    return ap_view_open_ex(dir, NULL, out, NULL, err);
}

ap_status ap_view_finish(ap_view *v, ap_err *err)
{
    ap_status st;
    for (uint32_t l = 1; l < v->nlayers; l++)
        if ((st = ap_delta_fits_base(v->layers[0].pack, v->layers[l].pack, v->layers[l].tomb,
                                     v->layers[l].ntomb, v->layers[l].dir, err)))
            return st;
    v->base_lazy = v->nlayers > 1 && ap_pack_is_lazy(v->layers[0].pack);
    if ((st = resolve_liveness(v, err))) return st;
    if ((st = group_deltas(v, err))) return st;
    /* Opening read every delta list's ids (through 2 MiB folios: whole files); searches
     * use a few vectors of each at a time. */
    for (uint32_t l = 1; l < v->nlayers; l++)
        ap_annp_release_pages(ap_pack_annp(v->layers[l].pack));
    if (!(v->layer_seq = malloc(v->nlayers * sizeof *v->layer_seq)))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (uint32_t l = 0; l < v->nlayers; l++)
        v->layer_seq[l] = v->layers[l].seq;
    if ((st = alloc_delta_codes(v, err))) return st;
    uint32_t nl = ap_annp_get_header(ap_pack_annp(v->layers[0].pack))->n_lists;
    if ((v->base_lazy || v->dcodes) && !(v->list_done = calloc(nl ? nl : 1, 1)))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    v->ivf = (ap_ivf){.annp = ap_pack_annp(v->layers[0].pack),
                      .coarse = &v->coarse,
                      .sq8 = ap_pack_sq8(v->layers[0].pack),
                      .bits = ap_pack_bits(v->layers[0].pack),
                      .dead = v->nlayers > 1 ? v->layers[0].dead : NULL,
                      .xstart = v->nditems ? v->dstart : NULL,
                      .x = v->ditems,
                      .xcodes = v->dcodes,
                      .layer_seq = v->layer_seq,
                      .guard = base_list_guard,
                      .guard_ctx = v};
    return AP_OK;
}

void ap_view_close(ap_view *v)
{
    if (!v) return;
    for (uint32_t l = 0; v->layers && l < v->nlayers; l++) {
        ap_pack_close(v->layers[l].pack);
        free(v->layers[l].dir);
        free(v->layers[l].tomb);
        free(v->layers[l].dead);
        cJSON_Delete(v->layers[l].calibration);
    }
    free(v->layers);
    free(v->mentions);
    free(v->dstart);
    free(v->ditems);
    free(v->layer_seq);
    free(v->dcodes);
    free(v->list_done);
    pthread_mutex_destroy(&v->list_mu);
    ap_coarse_cache_free(&v->coarse);
    ap_root_manifest_free(&v->root);
    free(v->dir);
    free(v);
}

bool ap_view_is_packset(const ap_view *v)
{
    return v->packset;
}

uint64_t ap_view_version(const ap_view *v)
{
    return v->version;
}

uint32_t ap_view_dim(const ap_view *v)
{
    return ap_annp_get_header(ap_pack_annp(v->layers[0].pack))->dim;
}

uint32_t ap_view_n_lists(const ap_view *v)
{
    return ap_annp_get_header(ap_pack_annp(v->layers[0].pack))->n_lists;
}

uint64_t ap_view_live_count(const ap_view *v)
{
    return v->live;
}

uint32_t ap_view_n_deltas(const ap_view *v)
{
    return v->nlayers - 1;
}

uint64_t ap_view_delta_seq(const ap_view *v, uint32_t i)
{
    return v->layers[i + 1].seq;
}

const ap_embedder *ap_view_embedder(const ap_view *v)
{
    return ap_pack_embedder(v->layers[0].pack);
}

const char *ap_view_base_dir(const ap_view *v)
{
    return v->layers[0].dir;
}

const char *ap_view_manifest_raw(const ap_view *v, size_t *len)
{
    if (len) *len = v->root.raw_len;
    return v->root.raw;
}

ap_status ap_view_expires(const ap_view *v, long long *t, ap_err *err)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(v->root.root, "expires");
    if (!e) return AP_ERR_NOTFOUND;
    if (!cJSON_IsString(e))
        return ap_err_set(err, AP_ERR_FORMAT, "%s/%s: \"expires\" is not a string", v->dir,
                          AP_MANIFEST);
    return ap_parse_rfc3339_utc(e->valuestring, t, err);
}

ap_status ap_view_embed(const ap_view *v, const char *text, size_t len, float *q, ap_err *err)
{
    return ap_embedder_embed(ap_view_embedder(v), text, len, q, err);
}

ap_status ap_view_search(const ap_view *v, const float *q, uint32_t k, uint32_t probe, ap_hit *hits,
                         uint32_t *n, ap_err *err)
{
    ap_search_params p = {.k = k, .probe = probe, .scan = AP_SCAN_AUTO};
    return ap_ivf_search(&v->ivf, q, &p, hits, n, NULL, err);
}

ap_status ap_view_search_ex(const ap_view *v, const float *q, const ap_search_params *p,
                            ap_hit *hits, uint32_t *n, ap_search_stats *stats, ap_err *err)
{
    return ap_ivf_search(&v->ivf, q, p, hits, n, stats, err);
}

ap_status ap_view_search_batch(const ap_view *v, const float *q, size_t nq,
                               const ap_search_params *p, ap_hit *hits, uint32_t *n,
                               ap_search_stats *stats, ap_err *err)
{
    return ap_ivf_search_batch(&v->ivf, q, nq, p, hits, n, stats, err);
}

void ap_view_verify_info(const ap_view *v, ap_view_verify *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t l = 0; l < v->nlayers; l++) {
        ap_verify_counts c;
        ap_pack_verify_counts(v->layers[l].pack, &c);
        if (!c.digests) continue;
        out->digests = true;
        out->ranges_total += c.total;
        out->ranges_hashed += c.hashed;
        out->ranges_bad += c.bad;
        if (!out->first_bad[0] && c.bad_msg[0])
            snprintf(out->first_bad, sizeof out->first_bad, "%s", c.bad_msg);
    }
}

ap_status ap_view_verify_step(const ap_view *v, uint64_t max_bytes, bool *done, ap_err *err)
{
    /* Deltas are checked whole at open: only the base can have unchecked ranges. */
    return ap_pack_verify_step(v->layers[0].pack, max_bytes, done, err);
}

bool ap_view_has_sq8(const ap_view *v)
{
    return v->ivf.sq8 != NULL;
}

bool ap_view_has_bits(const ap_view *v)
{
    return v->ivf.bits != NULL;
}

int32_t ap_view_live_layer(const ap_view *v, uint64_t id)
{
    int32_t nm = newest_mention(v, id);
    if (nm > 0) return ap_meta_has(ap_pack_meta(v->layers[nm].pack), id) ? nm : -1;
    return ap_meta_has(ap_pack_meta(v->layers[0].pack), id) ? 0 : -1;
}

ap_status ap_view_get_row(const ap_view *v, uint64_t id, char **row, size_t *len, uint32_t *layer,
                          ap_err *err)
{
    int32_t l = ap_view_live_layer(v, id);
    if (l < 0)
        return ap_err_set(err, AP_ERR_NOTFOUND, "id %llu is deleted", (unsigned long long)id);
    ap_status st = ap_meta_get(ap_pack_meta(v->layers[l].pack), id, row, len, err);
    if (st == AP_ERR_NOTFOUND)
        return ap_err_set(err, AP_ERR_NOTFOUND, "id %llu not found", (unsigned long long)id);
    if (!st && layer) *layer = v->layers[l].seq;
    return st;
}

ap_status ap_view_row_of(void *view, uint64_t id, uint32_t layer, char **row, ap_err *err)
{
    const ap_view *v = view;
    size_t len;
    /* A search hit names the layer (seq) its live vector came from, and that layer holds
     * its row: look there directly instead of resolving liveness again. */
    for (uint32_t l = 0; l < v->nlayers; l++)
        if (v->layers[l].seq == layer) {
            ap_status st = ap_meta_get(ap_pack_meta(v->layers[l].pack), id, row, &len, err);
            if (st == AP_ERR_NOTFOUND)
                st = ap_err_set(err, AP_ERR_VERIFY, "%s: search hit id %llu has no row",
                                v->layers[l].dir, (unsigned long long)id);
            return st;
        }
    return ap_view_get_row(view, id, row, &len, NULL, err);
}

static cJSON *layer_counts(const ap_view *v, uint32_t l)
{
    /* adds = ids new to the live set before this layer; updates = ids that were live. */
    const ap_meta *m = ap_pack_meta(v->layers[l].pack);
    uint64_t adds = 0, updates = 0;
    for (uint64_t i = 0; i < ap_meta_count(m); i++) {
        uint64_t id, off, len;
        ap_meta_entry(m, i, &id, &off, &len);
        if (ap_view_live_before(v, id, l))
            updates++;
        else
            adds++;
    }
    cJSON *o = cJSON_CreateObject();
    ap_json_add_u64(o, "seq", v->layers[l].seq);
    cJSON_AddStringToObject(o, "path",
                            l == 0 ? (v->root.base_path ? v->root.base_path : ".")
                                   : v->root.deltas[l - 1].path);
    ap_json_add_u64(o, "rows", ap_meta_count(m));
    if (l > 0) {
        ap_json_add_u64(o, "adds", adds);
        ap_json_add_u64(o, "updates", updates);
        ap_json_add_u64(o, "tombstones", v->layers[l].ntomb);
    }
    return o;
}

/* Whether id is live in the layers strictly older than l (used for add/update counts). */
int ap_view_live_before(const ap_view *v, uint64_t id, uint32_t l)
{
    for (int32_t k = (int32_t)l - 1; k >= 0; k--) {
        const ap_layer *L = &v->layers[k];
        if (k > 0 && L->ntomb && bsearch(&id, L->tomb, L->ntomb, sizeof id, cmp_u64)) return 0;
        if (ap_meta_has(ap_pack_meta(L->pack), id)) return 1;
    }
    return 0;
}

char *ap_view_status_json(const ap_view *v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "path", v->dir);
    cJSON_AddStringToObject(o, "kind", v->packset ? "packset" : "pack");
    ap_json_add_u64(o, "version", v->version);
    ap_json_add_u64(o, "dim", ap_view_dim(v));
    ap_json_add_u64(o, "n_lists", ap_view_n_lists(v));
    cJSON_AddItemToObject(o, "base", layer_counts(v, 0));
    cJSON *d = cJSON_AddArrayToObject(o, "deltas");
    for (uint32_t l = 1; l < v->nlayers; l++)
        cJSON_AddItemToArray(d, layer_counts(v, l));
    ap_json_add_u64(o, "live", v->live);
    char *s = ap_json_render(o, NULL);
    cJSON_Delete(o);
    return s;
}

char *ap_view_inspect_json(const ap_view *v)
{
    char *base = ap_pack_inspect_json(v->layers[0].pack);
    if (!v->packset || !base) return base;
    cJSON *o = NULL;
    if (ap_json_parse_strict(base, strlen(base), "inspect", &o, NULL)) {
        free(base);
        return NULL;
    }
    free(base);
    cJSON_ReplaceItemInObjectCaseSensitive(o, "path", cJSON_CreateString(v->dir));
    cJSON_ReplaceItemInObjectCaseSensitive(o, "kind", cJSON_CreateString("packset"));
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v->live);
    cJSON_ReplaceItemInObjectCaseSensitive(o, "n_vectors", cJSON_CreateRaw(buf));
    ap_json_add_u64(o, "version", v->version);
    ap_json_add_u64(o, "n_deltas", v->nlayers - 1);
    char *s = ap_json_render(o, NULL);
    cJSON_Delete(o);
    return s;
}
