/* The ranges of each pack file in pack.digests: see digest_layout.h. */
#include <stdlib.h>
#include <string.h>

#include "annpack/bits.h"
#include "annpack/meta.h"
#include "annpack/sq8.h"
#include "bits_layout.h"
#include "digest_layout.h"
#include "digest_table.h"
#include "endian.h"
#include "meta_format.h"
#include "sidecar.h"

static ap_status alloc_ranges(ap_digest_layout *l, uint64_t n, ap_err *err)
{
    if (n > UINT32_MAX)
        return ap_err_set(err, AP_ERR_LIMIT, "%llu digest ranges", (unsigned long long)n);
    l->n = (uint32_t)n;
    l->off = malloc((n ? n : 1) * sizeof *l->off);
    l->len = malloc((n ? n : 1) * sizeof *l->len);
    if (!l->off || !l->len) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    return AP_OK;
}

static void set(ap_digest_layout *l, uint32_t k, uint64_t off, uint64_t len)
{
    l->off[k] = off;
    l->len[k] = len;
}

static ap_status annpack_layout(const char *name, uint64_t size, const ap_annp *a,
                                ap_digest_layout *l, ap_err *err)
{
    const ap_annp_header *h = ap_annp_get_header(a);
    ap_status st = alloc_ranges(l, (uint64_t)h->n_lists + 2, err);
    if (st) return st;
    uint64_t at = AP_ANNP_HEADER_SIZE + 4ull * h->n_lists * h->dim;
    set(l, 0, 0, at);
    for (uint32_t i = 0; i < h->n_lists; i++) {
        ap_annp_list li;
        ap_annp_list_get(a, i, &li);
        if (li.offset != at)
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: list %u at %llu, not right after the previous part (%llu): "
                              "lists must lie back to back for %s",
                              name, i, (unsigned long long)li.offset, (unsigned long long)at,
                              AP_DIGESTS);
        uint64_t n = ap_annp_list_bytes(li.count, h->dim);
        set(l, i + 1, at, n);
        at += n;
    }
    if (h->offset_table_pos != at || size - at != 16ull * h->n_lists)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: the offset table (at %llu) must follow the last list (ending at "
                          "%llu) and end the file for %s",
                          name, (unsigned long long)h->offset_table_pos, (unsigned long long)at,
                          AP_DIGESTS);
    set(l, h->n_lists + 1, at, size - at);
    return AP_OK;
}

/* A per-list sidecar of want bytes: its head (before data), then each list's
 * count x per_vector + per_list bytes. */
static ap_status list_sidecar_layout(const char *name, uint64_t size, const ap_annp *a,
                                     uint64_t want, uint64_t data, uint64_t per_vector,
                                     uint64_t per_list, ap_digest_layout *l, ap_err *err)
{
    const ap_annp_header *h = ap_annp_get_header(a);
    if (want != size)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %llu bytes, its layout needs %llu", name,
                          (unsigned long long)size, (unsigned long long)want);
    ap_status st = alloc_ranges(l, (uint64_t)h->n_lists + 1, err);
    if (st) return st;
    set(l, 0, 0, data);
    uint64_t at = data;
    for (uint32_t i = 0; i < h->n_lists; i++) {
        ap_annp_list li;
        ap_annp_list_get(a, i, &li);
        uint64_t n = (uint64_t)li.count * per_vector + per_list;
        set(l, i + 1, at, n);
        at += n;
    }
    return AP_OK;
}

/* Header, params and counts, then each list's codes. */
static ap_status sq8_layout(const char *name, uint64_t size, const ap_annp *a, ap_digest_layout *l,
                            ap_err *err)
{
    const ap_annp_header *h = ap_annp_get_header(a);
    ap_sq8_layout L = ap_sq8_layout_for(h->dim, h->n_lists, h->n_vectors);
    return list_sidecar_layout(name, size, a, L.size, L.codes, L.stride, 0, l, err);
}

/* Header and counts, then each list: count x (dpad/8 + 8) bytes of codes, F and G, and its
 * 4-byte alpha. */
static ap_status bits_layout(const char *name, uint64_t size, const ap_annp *a, ap_digest_layout *l,
                             ap_err *err)
{
    const ap_annp_header *h = ap_annp_get_header(a);
    ap_bits_layout L = ap_bits_layout_for(h->dim, h->n_lists, h->n_vectors, 0, 1);
    return list_sidecar_layout(name, size, a, L.size, L.data, L.record, 4, l, err);
}

static ap_status zst_layout(const char *name, const uint8_t *b, uint64_t size, ap_digest_layout *l,
                            ap_err *err)
{
    if (size < AP_META_FOOTER_BYTES + 8 ||
        ap_le32(b + size - AP_META_FOOTER_BYTES + 5) != AP_META_SEEKABLE_MAGIC)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: no zstd seekable footer", name);
    const uint8_t *f = b + size - AP_META_FOOTER_BYTES;
    uint64_t es = (f[4] & 0x80) ? 12 : 8, nf = ap_le32(f);
    if (nf > (size - AP_META_FOOTER_BYTES - 8) / es)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: seek table claims %llu frames", name,
                          (unsigned long long)nf);
    uint64_t tsize = 8 + nf * es + AP_META_FOOTER_BYTES;
    const uint8_t *t = b + size - tsize;
    ap_status st = alloc_ranges(l, nf + 1, err);
    if (st) return st;
    uint64_t at = 0;
    for (uint64_t i = 0; i < nf; i++) {
        uint64_t cs = ap_le32(t + 8 + es * i);
        if (cs > size - tsize - at)
            return ap_err_set(err, AP_ERR_FORMAT, "%s: frame %llu overruns the file", name,
                              (unsigned long long)i);
        set(l, (uint32_t)i, at, cs);
        at += cs;
    }
    if (at != size - tsize)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: frames cover %llu bytes, file holds %llu", name,
                          (unsigned long long)at, (unsigned long long)(size - tsize));
    set(l, (uint32_t)nf, at, tsize);
    return AP_OK;
}

static ap_status chunk_layout(uint64_t size, ap_digest_layout *l, ap_err *err)
{
    uint64_t n = (size + AP_DIGEST_CHUNK - 1) / AP_DIGEST_CHUNK;
    ap_status st = alloc_ranges(l, n, err);
    for (uint64_t k = 0; !st && k < n; k++) {
        uint64_t off = k * AP_DIGEST_CHUNK;
        set(l, (uint32_t)k, off, size - off < AP_DIGEST_CHUNK ? size - off : AP_DIGEST_CHUNK);
    }
    return st;
}

ap_status ap_digest_layout_of(const char *name, const uint8_t *bytes, uint64_t size,
                              const ap_annp *annp, ap_digest_layout *out, ap_err *err)
{
    *out = (ap_digest_layout){0};
    ap_status st;
    if (strcmp(name, AP_ANNPACK) == 0 && annp)
        st = annpack_layout(name, size, annp, out, err);
    else if (strcmp(name, AP_SQ8) == 0 && annp)
        st = sq8_layout(name, size, annp, out, err);
    else if (strcmp(name, AP_BITS) == 0 && annp)
        st = bits_layout(name, size, annp, out, err);
    else if (strcmp(name, AP_META_ZST) == 0)
        st = zst_layout(name, bytes, size, out, err);
    else
        st = chunk_layout(size, out, err);
    if (st) ap_digest_layout_free(out);
    return st;
}

void ap_digest_layout_free(ap_digest_layout *l)
{
    free(l->off);
    free(l->len);
    *l = (ap_digest_layout){0};
}
