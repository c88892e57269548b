/* The "hash" embedder: signed feature hashing of words and character trigrams.
 *
 * Specification (docs/FORMAT.md repeats it for re-implementers):
 *  1. Tokens: scan the UTF-8 bytes; ASCII 'A'-'Z' are lowered; a token is a maximal run
 *     of bytes in [a-z0-9] or >= 0x80 (so non-ASCII letters stay whole, unnormalised).
 *  2. Features, in order of appearance: for each token t, the word feature
 *     "w" 0x1F t with weight 1.0, then every 3-byte window of '<' t '>' as the feature
 *     "g" 0x1F window with weight 0.5. A text without tokens has the single feature
 *     "e" 0x1F with weight 1.0.
 *  3. h = SipHash-2-4 (libsodium crypto_shorthash) of the feature bytes under the 16-byte
 *     key (seed as u64 little-endian, then the ASCII bytes "annphash"), read as u64 LE.
 *     v[h mod dim] += (h >> 63 ? -weight : +weight), accumulated in double.
 *  4. The result is divided by its L2 norm (double) and rounded to float.
 * Shared words dominate the score, trigrams make near-spellings overlap. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "annpack/sign.h"
#include "builtin.h"
#include "endian.h"

typedef struct hash_impl {
    unsigned char key[crypto_shorthash_KEYBYTES];
} hash_impl;

static inline int word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static void add_feature(const hash_impl *hi, double *acc, uint32_t dim, const unsigned char *f,
                        size_t n, double w)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, f, n, hi->key);
    uint64_t h = ap_le64(out);
    acc[h % dim] += (h >> 63) ? -w : w;
}

static ap_status hash_embed(const ap_embedder *e, const char *text, size_t len, float *out,
                            ap_err *err)
{
    const hash_impl *hi = e->impl;
    uint32_t dim = e->dim;
    double stack_acc[1024];
    double *acc = dim <= 1024 ? stack_acc : calloc(dim, sizeof *acc);
    if (!acc) return ap_err_set(err, AP_ERR_NOMEM, "embedder: out of memory");
    memset(acc, 0, dim * sizeof *acc);
    /* Feature buffer: the longest feature is "w" 0x1F + token; tokens are bounded by the
     * text, so grow on demand. */
    unsigned char sbuf[256];
    unsigned char *buf = sbuf;
    size_t cap = sizeof sbuf;
    ap_status st = AP_OK;
    int any = 0;
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        while (i < len && !word_byte(lower(s[i])))
            i++;
        size_t start = i;
        while (i < len && word_byte(lower(s[i])))
            i++;
        size_t tl = i - start;
        if (tl == 0) break;
        any = 1;
        if (tl + 4 > cap) {
            size_t ncap = tl + 4;
            unsigned char *nb = malloc(ncap);
            if (!nb) {
                st = ap_err_set(err, AP_ERR_NOMEM, "embedder: out of memory");
                goto out;
            }
            if (buf != sbuf) free(buf);
            buf = nb;
            cap = ncap;
        }
        buf[0] = 'w';
        buf[1] = 0x1f;
        for (size_t k = 0; k < tl; k++)
            buf[2 + k] = lower(s[start + k]);
        add_feature(hi, acc, dim, buf, tl + 2, 1.0);
        /* Padded token '<' t '>' laid out at buf+1 so trigram windows are contiguous. */
        unsigned char *p = buf + 1;
        p[0] = '<';
        p[tl + 1] = '>';
        for (size_t k = 0; k + 3 <= tl + 2; k++) {
            unsigned char g[5] = {'g', 0x1f, p[k], p[k + 1], p[k + 2]};
            add_feature(hi, acc, dim, g, 5, 0.5);
        }
    }
    double norm2 = 0;
    for (uint32_t d = 0; d < dim; d++)
        norm2 += acc[d] * acc[d];
    if (!any || norm2 == 0) {
        memset(acc, 0, dim * sizeof *acc);
        const unsigned char ef[2] = {'e', 0x1f};
        add_feature(hi, acc, dim, ef, 2, 1.0);
        norm2 = 1.0;
    }
    double inv = 1.0 / sqrt(norm2);
    for (uint32_t d = 0; d < dim; d++)
        out[d] = (float)(acc[d] * inv);
out:
    if (buf != sbuf) free(buf);
    if (acc != stack_acc) free(acc);
    return st;
}

static char *hash_describe(const ap_embedder *e)
{
    char *s = malloc(256);
    if (!s) return NULL;
    snprintf(s, 256,
             "{\"name\":\"hash\",\"version\":%u,\"dim\":%u,\"seed\":%llu,"
             "\"features\":\"word+char3\",\"hash\":\"siphash24\"}",
             1u, e->dim, (unsigned long long)e->seed);
    return s;
}

static void hash_destroy(ap_embedder *e)
{
    free(e->impl);
    free(e);
}

static const ap_embedder_ops hash_ops = {
    .name = "hash", .embed = hash_embed, .describe = hash_describe, .destroy = hash_destroy};

ap_status ap_embed_hash_create(uint32_t dim, uint64_t seed, ap_embedder **out, ap_err *err)
{
    ap_status st = ap_crypto_init(err);
    if (st) return st;
    ap_embedder *e = calloc(1, sizeof *e);
    hash_impl *hi = calloc(1, sizeof *hi);
    if (!e || !hi) {
        free(e);
        free(hi);
        return ap_err_set(err, AP_ERR_NOMEM, "embedder: out of memory");
    }
    ap_put64(hi->key, seed);
    memcpy(hi->key + 8, "annphash", 8);
    e->ops = &hash_ops;
    e->dim = dim;
    e->seed = seed;
    e->impl = hi;
    *out = e;
    return AP_OK;
}
