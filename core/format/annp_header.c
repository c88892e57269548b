/* The ANNP v1 header, encoded and decoded (see include/annpack/format.h): pure functions
 * of bytes, apart from the file reader in annp.c so that builds without files, mappings or
 * threads (the WebAssembly core, web/wasm/) decode headers with the same code. */
#include <string.h>

#include "annpack/caps.h"
#include "annpack/format.h"
#include "endian.h"

void ap_annp_header_encode(const ap_annp_header *h, uint8_t out[AP_ANNP_HEADER_SIZE])
{
    memset(out, 0, AP_ANNP_HEADER_SIZE);
    ap_put64(out + 0, AP_ANNP_MAGIC);
    ap_put32(out + 8, AP_ANNP_VERSION);
    ap_put32(out + 12, 1);
    ap_put32(out + 16, AP_ANNP_HEADER_SIZE);
    ap_put32(out + 20, h->dim);
    ap_put32(out + 24, AP_ANNP_METRIC_DOT);
    ap_put32(out + 28, h->n_lists);
    ap_put32(out + 32, h->n_vectors);
    ap_put64(out + 36, h->offset_table_pos);
}

ap_status ap_annp_header_decode(const uint8_t *buf, size_t len, uint64_t file_size,
                                const char *name, ap_annp_header *h, ap_err *err)
{
    const ap_caps *caps = ap_caps_get();
    if (len < AP_ANNP_HEADER_SIZE || file_size < AP_ANNP_HEADER_SIZE)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: truncated: %llu bytes, header needs %u", name,
                          (unsigned long long)file_size, AP_ANNP_HEADER_SIZE);
    if (ap_le64(buf) != AP_ANNP_MAGIC)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: wrong magic (not an ANNP file)", name);
    uint32_t version = ap_le32(buf + 8), endian = ap_le32(buf + 12), hsize = ap_le32(buf + 16);
    uint32_t metric = ap_le32(buf + 24);
    if (version != AP_ANNP_VERSION)
        return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s: ANNP version %u not supported (need 1)",
                          name, version);
    if (endian != 1)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: endian field %u (need 1 = little)", name,
                          endian);
    if (hsize != AP_ANNP_HEADER_SIZE)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: header_size %u (need 72)", name, hsize);
    if (metric != AP_ANNP_METRIC_DOT)
        return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s: metric %u not supported (need 1 = dot)",
                          name, metric);
    h->dim = ap_le32(buf + 20);
    h->n_lists = ap_le32(buf + 28);
    h->n_vectors = ap_le32(buf + 32);
    h->offset_table_pos = ap_le64(buf + 36);
    if (h->dim == 0) return ap_err_set(err, AP_ERR_FORMAT, "%s: dim is 0", name);
    if (h->dim > caps->max_dim)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: dim %u exceeds ANNPACK_MAX_DIM (%u)", name,
                          h->dim, caps->max_dim);
    if (h->n_lists == 0) return ap_err_set(err, AP_ERR_FORMAT, "%s: n_lists is 0", name);
    if (h->n_lists > caps->max_lists)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: n_lists %u exceeds ANNPACK_MAX_LISTS (%u)", name,
                          h->n_lists, caps->max_lists);
    uint64_t cent_end = AP_ANNP_HEADER_SIZE + (uint64_t)h->n_lists * h->dim * 4;
    if (cent_end > file_size)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: truncated: centroids end at %llu, file has %llu bytes", name,
                          (unsigned long long)cent_end, (unsigned long long)file_size);
    uint64_t table_bytes = (uint64_t)h->n_lists * 16;
    if (h->offset_table_pos < cent_end || h->offset_table_pos > file_size ||
        file_size - h->offset_table_pos < table_bytes)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: offset table at %llu (%llu bytes) outside the file (%llu bytes)",
                          name, (unsigned long long)h->offset_table_pos,
                          (unsigned long long)table_bytes, (unsigned long long)file_size);
    return AP_OK;
}
