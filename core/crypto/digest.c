/* SHA-256 of source files: see digest.h. */
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "mapping.h"

ap_status ap_sha256_stream(ap_read_at_fn rd, const void *ctx, uint64_t size,
                           char hex[AP_SHA256_HEX], ap_err *err)
{
    size_t cap = size < (1u << 20) ? (size ? (size_t)size : 1) : (1u << 20);
    unsigned char *buf = malloc(cap);
    ap_sha256 *h = ap_sha256_new();
    if (!buf || !h) {
        free(buf);
        ap_sha256_free(h);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    ap_status st = AP_OK;
    for (uint64_t off = 0; off < size && !st;) {
        size_t n = size - off < cap ? (size_t)(size - off) : cap;
        st = rd(ctx, off, buf, n, err);
        if (!st) ap_sha256_update(h, buf, n);
        off += n;
    }
    free(buf);
    if (st) {
        ap_sha256_free(h);
        return st;
    }
    ap_sha256_final(h, hex);
    return AP_OK;
}

static ap_status src_read(const void *ctx, uint64_t off, void *buf, size_t len, ap_err *err)
{
    return ap_src_read_at(ctx, off, buf, len, err);
}

ap_status ap_src_sha256(const ap_src *s, char hex[AP_SHA256_HEX], ap_err *err)
{
    ap_status st = ap_crypto_init(err);
    if (st) return st;
    if (ap_is_scanned_file(s->name)) ap_cache_warm(s->fd, s->size);
    return ap_sha256_stream(src_read, s, s->size, hex, err);
}

ap_status ap_src_check_digest(const ap_src *s, uint64_t size, const char *sha256,
                              const char *listed_in, ap_err *err)
{
    const char *in = listed_in ? listed_in : "the manifest";
    if (size != UINT64_MAX && s->size != size)
        return ap_err_set(err, AP_ERR_VERIFY, "%s: size %llu, %s says %llu", s->name,
                          (unsigned long long)s->size, in, (unsigned long long)size);
    char hex[AP_SHA256_HEX];
    ap_status st = ap_src_sha256(s, hex, err);
    if (st) return st;
    if (strcmp(hex, sha256) != 0)
        return ap_err_set(err, AP_ERR_VERIFY, "%s: sha256 mismatch (%s %.16s..., file %.16s...)",
                          s->name, in, sha256, hex);
    return AP_OK;
}
