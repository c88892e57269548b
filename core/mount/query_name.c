/* Query file names: see include/annpack/query.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "annpack/embed.h"
#include "annpack/query.h"
#include "annpack/search.h"
#include "fp16.h"
#include "utf8.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t ap_percent_decode(const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (i + 2 >= len) return (size_t)-1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return (size_t)-1;
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return o;
}

static int parse_uint(const char *s, size_t n, uint32_t min, uint32_t max, uint32_t *out)
{
    if (n == 0 || n > 9) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < min || v > max) return 0;
    *out = (uint32_t)v;
    return 1;
}

ap_status ap_query_params(const char *s, size_t len, uint32_t *k, uint32_t *probe, ap_err *err)
{
    int have_k = 0, have_probe = 0;
    const char *p = s, *end = s + len;
    while (p && p <= end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        size_t klen = eq ? (size_t)(eq - p) : (size_t)(pe - p);
        const char *v = eq ? eq + 1 : pe;
        size_t vlen = (size_t)(pe - v);
        if (pe == p) {
            /* An empty segment ("text?" or "k=1&&probe=2"): nothing to set. */
        } else if (klen == 1 && p[0] == 'k' && eq && !have_k) {
            have_k = 1;
            if (!parse_uint(v, vlen, 1, AP_MAX_K, k))
                return ap_err_set(err, AP_ERR_ARG, "k must be an integer in [1, %u]", AP_MAX_K);
        } else if (klen == 5 && !memcmp(p, "probe", 5) && eq && !have_probe) {
            have_probe = 1;
            if (!parse_uint(v, vlen, 1, AP_MAX_PROBE, probe))
                return ap_err_set(err, AP_ERR_ARG, "probe must be an integer in [1, %u]",
                                  AP_MAX_PROBE);
        } else {
            return ap_err_set(err, AP_ERR_ARG, "unknown or repeated query parameter \"%.*s\"",
                              (int)(klen > 32 ? 32 : klen), p);
        }
        p = amp ? amp + 1 : NULL;
    }
    return AP_OK;
}

/* The Unicode White_Space code points. */
static int is_space_cp(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

ap_status ap_query_text_check(const char *text, size_t len, ap_err *err)
{
    if (len > 0 && (memchr(text, '\0', len) || ap_utf8_invalid_at(text, len) != len))
        return ap_err_set(err, AP_ERR_ARG, "query text is not valid UTF-8");
    /* Valid UTF-8 from here on: decode code points to find one that is not a space. */
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    while (p < end) {
        uint32_t c = *p;
        int n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (n > end - p) break; /* cannot happen: checked valid above */
        if (n > 1) c &= 0x3fu >> (n - 1);
        for (int i = 1; i < n; i++)
            c = c << 6 | (p[i] & 0x3fu);
        if (!is_space_cp(c)) return AP_OK;
        p += n;
    }
    return ap_err_set(err, AP_ERR_ARG, "query text is empty or only whitespace");
}

ap_status ap_query_parse(const char *name, size_t len, uint32_t def_k, uint32_t def_probe,
                         ap_query *out, ap_err *err)
{
    memset(out, 0, sizeof *out);
    if (len > AP_QUERY_RAW_MAX)
        return ap_err_set(err, AP_ERR_LIMIT, "query name of %zu bytes exceeds the cap of %u", len,
                          AP_QUERY_RAW_MAX);
    const char *q = memchr(name, '?', len);
    size_t tlen = q ? (size_t)(q - name) : len;
    char *text = malloc(tlen + 1);
    if (!text) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    size_t dl = ap_percent_decode(name, tlen, text);
    ap_status st = AP_OK;
    if (dl == (size_t)-1)
        st = ap_err_set(err, AP_ERR_ARG, "query name has a malformed %%-escape");
    else if (dl > AP_QUERY_NAME_MAX)
        st = ap_err_set(err, AP_ERR_LIMIT, "query text of %zu bytes exceeds the cap of %u", dl,
                        AP_QUERY_NAME_MAX);
    else
        st = ap_query_text_check(text, dl, err);
    uint32_t k = def_k, probe = def_probe;
    if (!st && q) st = ap_query_params(q + 1, (size_t)(name + len - (q + 1)), &k, &probe, err);
    if (st) {
        free(text);
        return st;
    }
    out->text = text;
    out->len = dl;
    out->k = k;
    out->probe = probe;
    return AP_OK;
}

void ap_query_free(ap_query *q)
{
    free(q->text);
    q->text = NULL;
}

/* base64url without padding (RFC 4648 §5) of s[0..len) into bin (cap bytes): the byte
 * count, or -1 when s is not that or decodes to more than cap bytes. The alphabet is
 * checked first and mapped onto the standard one for OpenSSL's table decoder (10x faster
 * than libsodium's constant-time one, which a public query name does not need: this is on
 * every vector query's path); the unused low bits of a last partial group must be zero,
 * so that one vector has one name, as libsodium required. */
static long b64url_decode(const char *s, size_t len, unsigned char *bin, size_t cap)
{
    if (len % 4 == 1) return -1;
    size_t padded = (len + 3) / 4 * 4, n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (n > cap) return -1;
    if (len == 0) return 0;
    unsigned char *std = malloc(padded + 3 * (padded / 4)); /* the mapped text, then 3*4/3 */
    if (!std) return -2;
    /* By table, without a branch per character (random digits defeat the predictor). */
    static const char STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    /* Each byte's base64url digit, -1 for a byte outside the alphabet. */
    static const signed char val[256] = {
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, 62, -1, -1, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1, -1, 0,
        1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
        23, 24, 25, -1, -1, -1, -1, 63, -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38,
        39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    int bad = 0;
    signed char v = 0;
    for (size_t i = 0; i < len; i++) {
        v = val[(unsigned char)s[i]];
        bad |= v;                            /* negative once any is not base64url */
        std[i] = (unsigned char)STD[v & 63]; /* (meaningless when bad) */
    }
    unsigned char last = (unsigned char)v;
    if (bad < 0) {
        free(std);
        return -1;
    }
    /* 2 characters carry 8 bits (4 unused), 3 carry 16 (2 unused). */
    if ((len % 4 == 2 && (last & 0x0f)) || (len % 4 == 3 && (last & 0x03))) {
        free(std);
        return -1;
    }
    memset(std + len, '=', padded - len);
    unsigned char *out = std + padded;
    int got = EVP_DecodeBlock(out, std, (int)padded);
    if (got >= 0 && (size_t)got >= n) memcpy(bin, out, n);
    free(std);
    return got < 0 || (size_t)got < n ? -1 : (long)n;
}

ap_status ap_query_vector_decode(const char *b64, size_t len, uint32_t dim, float *out, ap_err *err)
{
    size_t cap = 4 * (size_t)dim;
    if (len > ap_query_vector_len(2 * dim) + 4)
        return ap_err_set(err, AP_ERR_LIMIT, "vector query: %zu characters is too long for dim %u",
                          len, dim);
    unsigned char *bin = malloc(cap ? cap : 1);
    if (!bin) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = AP_OK;
    long got = b64url_decode(b64, len, bin, cap);
    if (got == -2) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (got < 0) {
        st = ap_err_set(err, AP_ERR_ARG,
                        "vector query: not base64url (A-Z a-z 0-9 - _, no padding) of %u float16 "
                        "or float32 values",
                        dim);
        goto out;
    }
    size_t n = (size_t)got;
    if (n != 2 * (size_t)dim && n != 4 * (size_t)dim) {
        st = ap_err_set(err, AP_ERR_ARG,
                        "vector query: %zu bytes; dim %u needs %zu (float16) or %zu (float32)", n,
                        dim, 2 * (size_t)dim, 4 * (size_t)dim);
        goto out;
    }
    /* NOLINTBEGIN(clang-analyzer-core.UndefinedBinaryOperatorResult): b64url_decode
     * filled bin's first n bytes, 2 or 4 per value */
    for (uint32_t i = 0; i < dim; i++) {
        if (n == 2 * (size_t)dim) {
            out[i] = ap_f16_to_f32((uint16_t)(bin[2 * i] | bin[2 * i + 1] << 8));
        } else {
            uint32_t u = (uint32_t)bin[4 * i] | (uint32_t)bin[4 * i + 1] << 8 |
                         (uint32_t)bin[4 * i + 2] << 16 | (uint32_t)bin[4 * i + 3] << 24;
            memcpy(&out[i], &u, 4);
        }
        /* NOLINTEND(clang-analyzer-core.UndefinedBinaryOperatorResult) */
        if (!isfinite(out[i])) {
            st = ap_err_set(err, AP_ERR_ARG, "vector query: value %u is not finite", i);
            goto out;
        }
    }
    if (ap_l2_normalize(out, dim) == 0)
        st = ap_err_set(err, AP_ERR_ARG, "vector query: the zero vector has no direction");
out:
    free(bin);
    return st;
}

void ap_query_vector_encode(const float *v, uint32_t dim, char *out)
{
    unsigned char *bin = malloc(2 * (size_t)dim + 1);
    if (!bin) {
        out[0] = '\0';
        return;
    }
    for (uint32_t i = 0; i < dim; i++) {
        uint16_t h = ap_f32_to_f16(v[i]);
        bin[2 * i] = (unsigned char)(h & 0xff);
        bin[2 * i + 1] = (unsigned char)(h >> 8);
    }
    sodium_bin2base64(out, ap_query_vector_len(dim) + 1, bin, 2 * (size_t)dim,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(bin);
}
