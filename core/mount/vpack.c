/* The merged virtual pack of a view: a byte-exact ANNP v1 file and plain JSONL generated
 * lazily per byte range, and their schema-2 manifest (docs/MOUNT.md, "The virtual tree").
 *
 * Merged list i = the live base vectors of base list i, then the live delta vectors whose
 * nearest base centroid is i, in (seq, position) order; vector bytes are copied, never
 * re-quantised. Rows: every live row, ascending id, each line byte-identical to its
 * source. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/mount.h"
#include "annpack/packset.h"
#include "annpack/sign.h"
#include "corpus.h"
#include "digest.h"
#include "endian.h"
#include "json.h"
#include "merge.h"
#include "sidecar.h"
#include "view.h"

struct ap_vpack {
    const ap_view *v; /* borrowed: outlives the vpack */
    ap_merged x;      /* the merged tables this view needs */
    int annp_pass;    /* single canonical layer: pack.annpack (and pack.sq8) are its bytes */
    int meta_pass;    /* single layer whose row stream is already the merged JSONL */
    ap_sq8_layout sq; /* the merged sidecar's layout (the writer's); sq.size 0: none */
};

/* Whether a's bytes are exactly what the merged writer produces for its lists: the header
 * as encoded, lists back to back in order after the centroids, the offset table right
 * after them, nothing else. (Our writer's files are; a single-layer view of one is then
 * served straight from the file.) */
static int annp_canonical(const ap_annp *a)
{
    const ap_annp_header *h = ap_annp_get_header(a);
    uint8_t hdr[AP_ANNP_HEADER_SIZE];
    ap_annp_header_encode(h, hdr);
    if (memcmp(hdr, ap_annp_bytes(a), AP_ANNP_HEADER_SIZE) != 0) return 0;
    uint64_t off = AP_ANNP_HEADER_SIZE + (uint64_t)h->n_lists * h->dim * 4;
    for (uint32_t i = 0; i < h->n_lists; i++) {
        ap_annp_list l;
        ap_annp_list_get(a, i, &l);
        if (l.offset != off) return 0;
        off += ap_annp_list_bytes(l.count, h->dim);
    }
    return h->offset_table_pos == off && ap_annp_file_size(a) == off + 16ull * h->n_lists;
}

/* Whether a layer's row stream is already the merged JSONL: rows in ascending id order,
 * each followed by one newline, nothing else. */
static int meta_canonical(const ap_meta *m)
{
    uint64_t at = 0;
    for (uint64_t i = 0; i < ap_meta_count(m); i++) {
        uint64_t id, off, len;
        ap_meta_entry(m, i, &id, &off, &len);
        if (off != at) return 0;
        at = off + len + 1;
    }
    return at == ap_meta_stream_size(m);
}

static ap_status build(ap_vpack *p, ap_err *err)
{
    const ap_view *v = p->v;
    ap_merged *x = &p->x;
    const ap_annp *base = ap_pack_annp(v->layers[0].pack);
    if (v->live > UINT32_MAX)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: %llu live vectors exceed the ANNP u32 count",
                          v->dir, (unsigned long long)v->live);
    /* A single pack needs no merging: no per-vector or per-row tables then. */
    p->annp_pass = v->nlayers == 1 && annp_canonical(base);
    p->meta_pass = v->nlayers == 1 && meta_canonical(ap_pack_meta(v->layers[0].pack));
    if (p->annp_pass) {
        x->annp_size = ap_annp_file_size(base);
    } else {
        ap_status st = ap_merged_lists(v, x, err);
        if (st) return st;
    }
    /* The merged sidecar has the base's params and the merged counts, in the writer's
     * layout. */
    const ap_sq8 *sq = ap_pack_sq8(v->layers[0].pack);
    if (sq) p->sq = ap_sq8_layout_for(ap_sq8_dim(sq), ap_view_n_lists(v), (uint32_t)v->live);
    if (p->meta_pass) {
        x->nrows = ap_meta_count(ap_pack_meta(v->layers[0].pack));
        if (x->nrows != v->live)
            return ap_err_set(err, AP_ERR_VERIFY, "%s: %llu rows but %llu vectors", v->dir,
                              (unsigned long long)x->nrows, (unsigned long long)v->live);
        return AP_OK;
    }
    return ap_merged_rows(v, x, err);
}

ap_status ap_vpack_open(const ap_view *v, ap_vpack **out, ap_err *err)
{
    *out = NULL;
    ap_vpack *p = calloc(1, sizeof *p);
    if (!p) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    p->v = v;
    ap_status st = build(p, err);
    if (st) {
        ap_vpack_close(p);
        return st;
    }
    *out = p;
    return AP_OK;
}

void ap_vpack_close(ap_vpack *p)
{
    if (!p) return;
    ap_merged_clear(&p->x);
    free(p);
}

uint64_t ap_vpack_annpack_size(const ap_vpack *vp)
{
    return vp->x.annp_size;
}

/* Copies up to len bytes of the merged file at off; returns the count copied (> 0). */
static size_t piece(const ap_vpack *vp, uint64_t off, uint8_t *buf, size_t len)
{
    const ap_view *v = vp->v;
    const ap_merged *x = &vp->x;
    const ap_annp *base = ap_pack_annp(v->layers[0].pack);
    const ap_annp_header *bh = ap_annp_get_header(base);
    uint32_t nl = bh->n_lists, dim = bh->dim;
    uint64_t cent_end = AP_ANNP_HEADER_SIZE + (uint64_t)nl * dim * 4;
    if (off < AP_ANNP_HEADER_SIZE) {
        uint8_t hdr[AP_ANNP_HEADER_SIZE];
        ap_annp_header h = {.dim = dim,
                            .n_lists = nl,
                            .n_vectors = (uint32_t)v->live,
                            .offset_table_pos = x->list_off[nl]};
        ap_annp_header_encode(&h, hdr);
        size_t n = AP_ANNP_HEADER_SIZE - off < len ? AP_ANNP_HEADER_SIZE - off : len;
        memcpy(buf, hdr + off, n);
        return n;
    }
    if (off < cent_end) {
        size_t n = cent_end - off < len ? cent_end - off : len;
        memcpy(buf, ap_annp_bytes(base) + off, n);
        return n;
    }
    if (off >= x->list_off[nl]) { /* offset table */
        uint64_t rel = off - x->list_off[nl];
        uint32_t i = (uint32_t)(rel / 16);
        uint8_t e[16];
        ap_put64(e, x->list_off[i]);
        ap_put64(e + 8, x->list_off[i + 1] - x->list_off[i]);
        size_t n = 16 - rel % 16 < len ? 16 - rel % 16 : len;
        memcpy(buf, e + rel % 16, n);
        return n;
    }
    /* A list: find it by binary search over the offsets. */
    uint32_t lo = 0, hi = nl;
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (x->list_off[mid] <= off)
            lo = mid;
        else
            hi = mid;
    }
    uint64_t rel = off - x->list_off[lo];
    uint64_t first = x->list_first[lo], count = x->list_first[lo + 1] - first;
    if (rel < 4) {
        uint8_t c[4];
        ap_put32(c, (uint32_t)count);
        size_t n = 4 - rel < len ? 4 - rel : len;
        memcpy(buf, c + rel, n);
        return n;
    }
    rel -= 4;
    if (rel < 8 * count) {
        const ap_item *it = &x->items[first + rel / 8];
        size_t n = 8 - rel % 8 < len ? 8 - rel % 8 : len;
        memcpy(buf, it->idp + rel % 8, n);
        return n;
    }
    rel -= 8 * count;
    uint64_t vb = 2ull * dim;
    const ap_item *it = &x->items[first + rel / vb];
    size_t n = vb - rel % vb < len ? vb - rel % vb : len;
    memcpy(buf, it->vec + rel % vb, n);
    return n;
}

ap_status ap_vpack_annpack_read(const ap_vpack *vp, uint64_t off, void *buf, size_t len,
                                ap_err *err)
{
    const ap_view *v = vp->v;
    if (off > vp->x.annp_size || len > vp->x.annp_size - off)
        return ap_err_set(err, AP_ERR_ARG, "read of %zu bytes at %llu beyond the merged file", len,
                          (unsigned long long)off);
    if (vp->annp_pass) {
        const ap_pack *b = v->layers[0].pack;
        ap_status st = ap_pack_check_bytes(b, AP_ANNPACK, off, len, err);
        if (!st) memcpy(buf, ap_annp_bytes(ap_pack_annp(b)) + off, len);
        return st;
    }
    uint8_t *p = buf;
    while (len) {
        size_t n = piece(vp, off, p, len);
        p += n;
        off += n;
        len -= n;
    }
    return AP_OK;
}

/* --- the merged int8 sidecar ------------------------------------------------------------- */

uint64_t ap_vpack_sq8_size(const ap_vpack *vp)
{
    return vp->sq.size;
}

/* Codes of merged vector k (in merged list li): a base vector's own codes, or the codes a
 * delta vector got under the base's params (view.c encode_list). */
static const uint8_t *merged_codes(const ap_vpack *vp, uint32_t li, uint64_t k, uint32_t stride)
{
    const ap_view *v = vp->v;
    const ap_merged *x = &vp->x;
    const ap_sq8 *sq = ap_pack_sq8(v->layers[0].pack);
    uint64_t ndelta = v->dstart[li + 1] - v->dstart[li];
    uint64_t nbase = x->list_first[li + 1] - x->list_first[li] - ndelta;
    uint64_t r = k - x->list_first[li];
    if (r < nbase) {
        ap_annp_list l;
        ap_annp_list_get(ap_pack_annp(v->layers[0].pack), li, &l);
        uint64_t j = (uint64_t)(x->items[k].vec - l.vecs) / (2ull * ap_sq8_dim(sq));
        return ap_sq8_list_codes(sq, li) + j * stride;
    }
    return v->dcodes + (v->dstart[li] + (r - nbase)) * stride;
}

static size_t sq8_piece(const ap_vpack *vp, const ap_sq8_layout *L, uint64_t off, uint8_t *buf,
                        size_t len)
{
    const ap_view *v = vp->v;
    const ap_sq8 *sq = ap_pack_sq8(v->layers[0].pack);
    const ap_merged *x = &vp->x;
    if (off < L->codes) {
        /* Header, params and counts are small: render the whole prefix word by word. */
        uint8_t w[8] = {0};
        uint64_t at = off & ~3ull;
        if (at < AP_SQ8_HEADER_SIZE) {
            uint8_t h[AP_SQ8_HEADER_SIZE];
            ap_sq8_header_encode(L, h);
            memcpy(w, h + at, 4);
        } else if (at < L->params + 8ull * L->dim) {
            uint64_t d = (at - L->params) / 4;
            float f = d < L->dim ? ap_sq8_vmin(sq)[d] : ap_sq8_step(sq)[d - L->dim];
            uint32_t u;
            memcpy(&u, &f, 4);
            ap_put32(w, u);
        } else if (at >= L->counts && at < L->counts + 4ull * L->n_lists) {
            uint64_t i = (at - L->counts) / 4;
            ap_put32(w, (uint32_t)(x->list_first[i + 1] - x->list_first[i]));
        } /* else zero padding */
        size_t n = 4 - (off - at) < len ? 4 - (off - at) : len;
        memcpy(buf, w + (off - at), n);
        return n;
    }
    uint64_t k = (off - L->codes) / L->stride, in = (off - L->codes) % L->stride;
    uint32_t lo = 0, hi = L->n_lists;
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (x->list_first[mid] <= k)
            lo = mid;
        else
            hi = mid;
    }
    while (lo < L->n_lists && x->list_first[lo + 1] <= k)
        lo++; /* skip empty lists */
    size_t n = L->stride - in < len ? L->stride - in : len;
    memcpy(buf, merged_codes(vp, lo, k, L->stride) + in, n);
    return n;
}

ap_status ap_vpack_sq8_read(const ap_vpack *vp, uint64_t off, void *buf, size_t len, ap_err *err)
{
    const ap_view *v = vp->v;
    ap_sq8_layout L = vp->sq;
    if (!L.size)
        return ap_err_set(err, AP_ERR_NOTFOUND, "%s: the base has no int8 sidecar", v->dir);
    if (off > L.size || len > L.size - off)
        return ap_err_set(err, AP_ERR_ARG, "read of %zu bytes at %llu beyond the merged sidecar",
                          len, (unsigned long long)off);
    if (vp->annp_pass) {
        /* Same lists, same params, our writer's layout: the base's own bytes. */
        size_t size;
        const uint8_t *b = ap_sq8_bytes(ap_pack_sq8(v->layers[0].pack), &size);
        if (size != L.size)
            return ap_err_set(err, AP_ERR_INTERNAL, "%s: sidecar of %zu bytes, merged %llu", v->dir,
                              size, (unsigned long long)L.size);
        ap_status st = ap_pack_check_bytes(v->layers[0].pack, AP_SQ8, off, len, err);
        if (!st) memcpy(buf, b + off, len);
        return st;
    }
    uint8_t *p = buf;
    while (len) {
        size_t n = sq8_piece(vp, &L, off, p, len);
        p += n;
        off += n;
        len -= n;
    }
    return AP_OK;
}

uint64_t ap_vpack_meta_size(const ap_vpack *vp)
{
    const ap_view *v = vp->v;
    return vp->meta_pass ? ap_meta_stream_size(ap_pack_meta(v->layers[0].pack))
                         : vp->x.row_off[vp->x.nrows];
}

ap_status ap_vpack_meta_read(const ap_vpack *vp, uint64_t off, void *buf, size_t len, ap_err *err)
{
    const ap_view *v = vp->v;
    ap_status st = AP_OK;
    const ap_merged *x = &vp->x;
    if (vp->meta_pass) {
        const ap_meta *m = ap_pack_meta(v->layers[0].pack);
        if (off > ap_meta_stream_size(m) || len > ap_meta_stream_size(m) - off)
            return ap_err_set(err, AP_ERR_ARG, "read of %zu bytes at %llu beyond the merged rows",
                              len, (unsigned long long)off);
        return ap_meta_read_stream(m, off, buf, len, err);
    }
    if (off > x->row_off[x->nrows] || len > x->row_off[x->nrows] - off)
        return ap_err_set(err, AP_ERR_ARG, "read of %zu bytes at %llu beyond the merged rows", len,
                          (unsigned long long)off);
    uint64_t lo = 0, hi = x->nrows;
    while (hi - lo > 1) {
        uint64_t mid = (lo + hi) / 2;
        if (x->row_off[mid] <= off)
            lo = mid;
        else
            hi = mid;
    }
    uint8_t *p = buf;
    for (uint64_t r = lo; len; r++) {
        char *row = NULL;
        size_t rl = 0;
        st = ap_meta_get(ap_pack_meta(v->layers[x->row_layer[r]].pack), x->row_id[r], &row, &rl,
                         err);
        if (st) return st;
        if (rl + 1 != x->row_off[r + 1] - x->row_off[r]) {
            free(row);
            return ap_err_set(err, AP_ERR_IO, "row of id %llu changed length under the view",
                              (unsigned long long)x->row_id[r]);
        }
        uint64_t in = off - x->row_off[r];
        size_t n = rl + 1 - in < len ? rl + 1 - in : len;
        if (in < rl) memcpy(p, row + in, n <= rl - in ? n : rl - in);
        if (in + n == rl + 1) p[n - 1] = '\n';
        free(row);
        p += n;
        off += n;
        len -= n;
    }
    return AP_OK;
}

typedef ap_status (*reader_fn)(const ap_vpack *, uint64_t, void *, size_t, ap_err *);

/* A reader of the vpack, as ap_sha256_stream reads. */
typedef struct vreader {
    const ap_vpack *vp;
    reader_fn rd;
} vreader;

static ap_status vread(const void *ctx, uint64_t off, void *buf, size_t len, ap_err *err)
{
    const vreader *r = ctx;
    return r->rd(r->vp, off, buf, len, err);
}

static ap_status hash_virtual(const ap_vpack *vp, reader_fn rd, uint64_t size,
                              char hex[AP_SHA256_HEX], ap_err *err)
{
    vreader r = {vp, rd};
    return ap_sha256_stream(vread, &r, size, hex, err);
}

/* The "packset" block: where the merged pack comes from, then the caller's fields. */
static ap_status provenance(const ap_vpack *vp, const char *extra, cJSON **out, ap_err *err)
{
    const ap_view *v = vp->v;
    char hr[AP_SHA256_HEX];
    ap_sha256_hex(v->root.raw, v->root.raw_len, hr);
    cJSON *prov = cJSON_CreateObject();
    *out = NULL;
    if (!prov) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(prov, "root_manifest_sha256", hr);
    ap_json_add_u64(prov, "version", v->version);
    cJSON *seqs = cJSON_AddArrayToObject(prov, "delta_seqs");
    for (uint32_t l = 1; l < v->nlayers; l++) {
        char b[24];
        snprintf(b, sizeof b, "%llu", (unsigned long long)v->layers[l].seq);
        cJSON_AddItemToArray(seqs, cJSON_CreateRaw(b));
    }
    if (extra) {
        cJSON *x = NULL;
        ap_status st = ap_json_parse_strict(extra, strlen(extra), "provenance", &x, err);
        if (st) {
            cJSON_Delete(prov);
            return st;
        }
        cJSON *c = x->child;
        while (c) {
            cJSON *next = c->next;
            cJSON_AddItemToObject(prov, c->string, cJSON_DetachItemViaPointer(x, c));
            c = next;
        }
        cJSON_Delete(x);
    }
    *out = prov;
    return AP_OK;
}

/* The listed size and hash of a merged file that is a base file's own bytes (its hash is
 * in the base manifest, checked at mount with verify=full: no need to read it again), else
 * the hash of the merged bytes. */
static ap_status merged_file(const ap_vpack *vp, const char *name, bool pass, reader_fn rd,
                             uint64_t size, char hex[AP_SHA256_HEX], ap_manifest_file *f,
                             ap_err *err)
{
    *f = (ap_manifest_file){.path = name, .size = size, .sha256 = hex};
    const ap_manifest_file *own = pass ? ap_pack_listed(vp->v->layers[0].pack, name) : NULL;
    if (own && own->size == size) {
        snprintf(hex, AP_SHA256_HEX, "%s", own->sha256);
        return AP_OK;
    }
    return hash_virtual(vp, rd, size, hex, err);
}

void ap_vpack_idf(const ap_vpack *vp, const void **bytes, size_t *len)
{
    ap_embedder_table_bytes(ap_view_embedder(vp->v), bytes, len);
}

char *ap_vpack_manifest(const ap_vpack *vp, const char *extra, size_t *len, ap_err *err)
{
    const ap_view *v = vp->v;
    /* Sorted by name: pack.annpack, pack.idf, pack.meta.jsonl, pack.sq8. */
    char hex[4][AP_SHA256_HEX];
    ap_manifest_file files[4];
    uint64_t sq8_size = ap_vpack_sq8_size(vp);
    const void *idf;
    size_t idf_len, nfiles = 0;
    ap_vpack_idf(vp, &idf, &idf_len);
    if (merged_file(vp, AP_ANNPACK, vp->annp_pass, ap_vpack_annpack_read, vp->x.annp_size,
                    hex[nfiles], &files[nfiles], err))
        return NULL;
    nfiles++;
    if (idf_len) {
        ap_sha256_hex(idf, idf_len, hex[nfiles]);
        files[nfiles] = (ap_manifest_file){.path = AP_IDF, .size = idf_len, .sha256 = hex[nfiles]};
        nfiles++;
    }
    if (merged_file(vp, AP_META_JSONL, vp->meta_pass, ap_vpack_meta_read, ap_vpack_meta_size(vp),
                    hex[nfiles], &files[nfiles], err))
        return NULL;
    nfiles++;
    if (sq8_size && merged_file(vp, AP_SQ8, vp->annp_pass, ap_vpack_sq8_read, sq8_size, hex[nfiles],
                                &files[nfiles], err))
        return NULL;
    if (sq8_size) nfiles++;
    char *emb = ap_embedder_describe(ap_view_embedder(v)), *out = NULL;
    cJSON *prov = NULL;
    ap_status st =
        emb ? provenance(vp, extra, &prov, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    /* The calibration the view searches with, so that a copy of the virtual pack (cp -r out
     * of the mount) defaults to the same probe: the merged lists are the view's lists. */
    const cJSON *cal = ap_view_calibration(v);
    cJSON *build = cal ? cJSON_CreateObject() : NULL;
    if (!st && cal &&
        (!build || !cJSON_AddItemToObject(build, "calibration", cJSON_Duplicate(cal, true))))
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_pack_manifest_spec ms = {.dim = ap_view_dim(v),
                                .n_lists = ap_view_n_lists(v),
                                .n_vectors = v->live,
                                .meta = AP_META_JSONL,
                                .files = files,
                                .nfiles = nfiles,
                                .embedder = emb,
                                .build = build,
                                .packset = prov};
    if (!st) ap_pack_manifest_write(&ms, &out, len, err);
    cJSON_Delete(build);
    free(emb);
    cJSON_Delete(prov);
    return out;
}
