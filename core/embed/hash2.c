/* The "hash" embedder, version 2: BM25-weighted feature hashing (docs/FORMAT.md repeats
 * this specification for re-implementers; "pack.idf" is its table).
 *
 *  1. Tokens as in version 1: ASCII 'A'-'Z' lowered; a token is a maximal run of bytes in
 *     [a-z0-9] or >= 0x80.
 *  2. Features of a token t: the word "w" 0x1F t; when t mixes ASCII digits and other
 *     bytes, also the word "w" 0x1F r of each maximal run r of digits or of non-digits
 *     ("ssh2" gives ssh2, ssh and 2); then every 3-byte window of '<' t '>' as the trigram
 *     "g" 0x1F window. The document length dl is the number of word features.
 *  3. h = SipHash-2-4 of the feature bytes under version 1's key; a feature's identity is
 *     h, tf its number of occurrences in the text; its bucket (h >> 32) mod n_buckets.
 *  4. With the table's N documents, avgdl = total_len / N (1 when N = 0), df the bucket's
 *     count and idf = ln(1 + (N - df + 0.5) / (df + 0.5)), each distinct feature weighs
 *     c * sqrt(idf) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)), k1 = 1.2,
 *     b = 0.75, c = 1 for words and 0.5 for trigrams, all in double.
 *  5. In increasing order of h: v[h mod dim] += (h >> 63 ? -w : +w). Then as version 1: a
 *     zero result becomes the single feature "e" 0x1F with weight 1; divided by its L2 norm
 *     and rounded to float.
 * Queries are embedded the same way, so a shared word weighs its idf once in the cosine
 * (sqrt on each side): rare words dominate, common words ("server", "engine") count
 * little. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "annpack/sign.h"
#include "builtin.h"
#include "endian.h"
#include "idf_table.h"

#define K1 1.2
#define B 0.75
#define C_WORD 1.0
#define C_GRAM 0.5
/* Marks a count's bucket as seen in the current document while fitting. */
#define SEEN 0x80000000u

typedef struct hash2_impl {
    unsigned char key[crypto_shorthash_KEYBYTES];
    bool loaded;
    char want_sha256[AP_SHA256_HEX]; /* from the manifest block; "" for a new build */
    ap_idf_table t;
} hash2_impl;

/* One feature occurrence. */
typedef struct feat {
    uint64_t h;
    unsigned char gram; /* 1 for a trigram */
} feat;

typedef struct feats {
    feat *v, stack[512];
    size_t n, cap;
    size_t words; /* dl */
} feats;

static inline int word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static inline int digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static uint64_t hash_of(const hash2_impl *hi, const unsigned char *f, size_t n)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, f, n, hi->key);
    return ap_le64(out);
}

static int push(feats *fs, uint64_t h, unsigned char gram)
{
    if (fs->n == fs->cap) {
        size_t ncap = fs->cap * 2;
        feat *nv =
            fs->v == fs->stack ? malloc(ncap * sizeof *nv) : realloc(fs->v, ncap * sizeof *nv);
        if (!nv) return -1;
        if (fs->v == fs->stack) memcpy(nv, fs->stack, sizeof fs->stack);
        fs->v = nv;
        fs->cap = ncap;
    }
    fs->v[fs->n++] = (feat){h, gram};
    fs->words += !gram;
    return 0;
}

/* The word feature of t[0..n) ("w" 0x1F t) into buf (n + 2 bytes). */
static int push_word(const hash2_impl *hi, feats *fs, unsigned char *buf, const unsigned char *t,
                     size_t n)
{
    buf[0] = 'w';
    buf[1] = 0x1f;
    memcpy(buf + 2, t, n);
    return push(fs, hash_of(hi, buf, n + 2), 0);
}

/* Every feature of one lowered token tok[0..tl); buf holds tl + 4 bytes. */
static int token_features(const hash2_impl *hi, feats *fs, const unsigned char *tok, size_t tl,
                          unsigned char *buf)
{
    if (push_word(hi, fs, buf, tok, tl)) return -1;
    bool digits = false, others = false;
    for (size_t k = 0; k < tl; k++)
        digit(tok[k]) ? (digits = true) : (others = true);
    if (digits && others)
        for (size_t a = 0; a < tl;) {
            size_t z = a + 1;
            while (z < tl && digit(tok[z]) == digit(tok[a]))
                z++;
            if (push_word(hi, fs, buf, tok + a, z - a)) return -1;
            a = z;
        }
    buf[0] = '<';
    memcpy(buf + 1, tok, tl);
    buf[tl + 1] = '>';
    for (size_t k = 0; k + 3 <= tl + 2; k++) {
        unsigned char g[5] = {'g', 0x1f, buf[k], buf[k + 1], buf[k + 2]};
        if (push(fs, hash_of(hi, g, 5), 1)) return -1;
    }
    return 0;
}

static int cmp_feat(const void *a, const void *b)
{
    const feat *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return (x->gram > y->gram) - (x->gram < y->gram);
}

/* The features of text[0..len), sorted by h (fs->v; free with feats_free). */
static ap_status text_features(const hash2_impl *hi, const char *text, size_t len, feats *fs,
                               ap_err *err)
{
    fs->v = fs->stack;
    fs->cap = sizeof fs->stack / sizeof fs->stack[0];
    fs->n = fs->words = 0;
    unsigned char sbuf[256], *buf = sbuf;
    size_t cap = sizeof sbuf;
    const unsigned char *s = (const unsigned char *)text;
    ap_status st = AP_OK;
    for (size_t i = 0; i < len && !st;) {
        while (i < len && !word_byte(lower(s[i])))
            i++;
        size_t start = i;
        while (i < len && word_byte(lower(s[i])))
            i++;
        size_t tl = i - start;
        if (tl == 0) break;
        /* buf: the features' bytes (tl + 4), then the lowered token (tl). */
        if (2 * tl + 4 > cap) {
            unsigned char *nb = malloc(2 * tl + 4);
            if (!nb) {
                st = ap_err_set(err, AP_ERR_NOMEM, "embedder: out of memory");
                break;
            }
            if (buf != sbuf) free(buf);
            buf = nb;
            cap = 2 * tl + 4;
        }
        unsigned char *tok = buf + tl + 4;
        for (size_t k = 0; k < tl; k++)
            tok[k] = lower(s[start + k]);
        if (token_features(hi, fs, tok, tl, buf))
            st = ap_err_set(err, AP_ERR_NOMEM, "embedder: out of memory");
    }
    if (buf != sbuf) free(buf);
    if (!st) qsort(fs->v, fs->n, sizeof *fs->v, cmp_feat);
    return st;
}

static void feats_free(feats *fs)
{
    if (fs->v != fs->stack) free(fs->v);
}

static ap_status hash2_embed(const ap_embedder *e, const char *text, size_t len, float *out,
                             ap_err *err)
{
    const hash2_impl *hi = e->impl;
    if (!hi->loaded)
        return ap_err_set(err, AP_ERR_NOTFOUND,
                          "hash embedder version 2: its idf table (%s) is not loaded", AP_IDF);
    uint32_t dim = e->dim;
    double stack_acc[1024];
    double *acc = dim <= 1024 ? stack_acc : calloc(dim, sizeof *acc);
    if (!acc) return ap_err_set(err, AP_ERR_NOMEM, "embedder: out of memory");
    memset(acc, 0, dim * sizeof *acc);
    feats fs;
    ap_status st = text_features(hi, text, len, &fs, err);
    if (!st) {
        const ap_idf_table *t = &hi->t;
        double avgdl = t->n_docs ? (double)t->total_len / (double)t->n_docs : 1.0;
        double kd = K1 * (1.0 - B + B * (double)fs.words / avgdl);
        for (size_t i = 0; i < fs.n;) {
            size_t j = i + 1;
            while (j < fs.n && fs.v[j].h == fs.v[i].h)
                j++;
            double tf = (double)(j - i);
            uint64_t h = fs.v[i].h;
            /* sqrt: the query is weighted too, so the cosine weighs each shared feature by
             * its idf once; idf squared let rare colliding trigrams swamp the words. */
            double w = (fs.v[i].gram ? C_GRAM : C_WORD) *
                       sqrt(t->idf[ap_idf_bucket(h, t->n_buckets)]) * tf * (K1 + 1.0) / (tf + kd);
            acc[h % dim] += (h >> 63) ? -w : w;
            i = j;
        }
        double norm2 = 0;
        for (uint32_t d = 0; d < dim; d++)
            norm2 += acc[d] * acc[d];
        if (norm2 == 0) {
            const unsigned char ef[2] = {'e', 0x1f};
            uint64_t h = hash_of(hi, ef, 2);
            acc[h % dim] = (h >> 63) ? -1.0 : 1.0;
            norm2 = 1.0;
        }
        double inv = 1.0 / sqrt(norm2);
        for (uint32_t d = 0; d < dim; d++)
            out[d] = (float)(acc[d] * inv);
    }
    feats_free(&fs);
    if (acc != stack_acc) free(acc);
    return st;
}

static char *hash2_describe(const ap_embedder *e)
{
    const hash2_impl *hi = e->impl;
    char *s = malloc(512);
    if (!s) return NULL;
    snprintf(s, 512,
             "{\"name\":\"hash\",\"version\":2,\"dim\":%u,\"seed\":%llu,"
             "\"features\":\"word+part+char3\",\"hash\":\"siphash24\","
             "\"weighting\":\"bm25(k1=1.2,b=0.75,char3=0.5,sqrt-idf)\","
             "\"idf\":{\"file\":\"%s\",\"sha256\":\"%s\"}}",
             e->dim, (unsigned long long)e->seed, AP_IDF,
             hi->loaded ? hi->t.sha256 : hi->want_sha256);
    return s;
}

static void hash2_destroy(ap_embedder *e)
{
    hash2_impl *hi = e->impl;
    ap_idf_free(&hi->t);
    free(hi);
    free(e);
}

static bool hash2_missing(const ap_embedder *e)
{
    return !((const hash2_impl *)e->impl)->loaded;
}

static ap_status hash2_fit(ap_embedder *e, char *const *texts, const size_t *lens, size_t n,
                           ap_err *err)
{
    hash2_impl *hi = e->impl;
    if (hi->loaded || hi->want_sha256[0])
        return ap_err_set(err, AP_ERR_INTERNAL, "hash embedder version 2: its idf table is fixed");
    if (n >= SEEN)
        return ap_err_set(err, AP_ERR_LIMIT, "hash embedder version 2: %zu documents; at most %u",
                          n, SEEN - 1);
    uint32_t full = 1u << AP_IDF_FULL_BITS;
    uint32_t *df = calloc(full, sizeof *df);
    uint32_t *seen = NULL;
    size_t seen_cap = 0;
    if (!df) return ap_err_set(err, AP_ERR_NOMEM, "out of memory for the idf counts");
    uint64_t total = 0;
    ap_status st = AP_OK;
    for (size_t d = 0; d < n && !st; d++) {
        feats fs;
        if ((st = text_features(hi, texts[d], lens[d], &fs, err))) break;
        total += fs.words;
        /* Each bucket once per document: fs is sorted by h, not by bucket. */
        if (fs.n > seen_cap) {
            uint32_t *ns = realloc(seen, fs.n * sizeof *ns);
            if (!ns) {
                feats_free(&fs);
                st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
                break;
            }
            seen = ns;
            seen_cap = fs.n;
        }
        size_t m = 0;
        for (size_t i = 0; i < fs.n; i++) {
            uint32_t b = ap_idf_bucket(fs.v[i].h, full);
            if (df[b] & SEEN) continue; /* counted for this document already */
            df[b] |= SEEN;
            seen[m++] = b;
        }
        feats_free(&fs);
        for (size_t i = 0; i < m; i++)
            df[seen[i]] = (df[seen[i]] & ~SEEN) + 1;
    }
    free(seen);
    if (!st) st = ap_idf_from_counts(df, n, total, &hi->t, err);
    free(df);
    if (!st) hi->loaded = true;
    return st;
}

static ap_status hash2_load(ap_embedder *e, const void *bytes, size_t len, const char *name,
                            ap_err *err)
{
    hash2_impl *hi = e->impl;
    if (hi->loaded) return AP_OK;
    ap_idf_table t;
    ap_status st = ap_idf_parse(bytes, len, name, &t, err);
    if (st) return st;
    if (hi->want_sha256[0] && strcmp(t.sha256, hi->want_sha256) != 0) {
        st = ap_err_set(err, AP_ERR_VERIFY,
                        "%s: sha256 %.16s... differs from the embedder block's %.16s...", name,
                        t.sha256, hi->want_sha256);
        ap_idf_free(&t);
        return st;
    }
    hi->t = t;
    hi->loaded = true;
    return AP_OK;
}

static void hash2_bytes(const ap_embedder *e, const void **bytes, size_t *len)
{
    const hash2_impl *hi = e->impl;
    *bytes = hi->t.bytes;
    *len = hi->t.len;
}

static const ap_embedder_corpus_ops hash2_corpus = {.file = AP_IDF,
                                                    .missing = hash2_missing,
                                                    .fit = hash2_fit,
                                                    .load = hash2_load,
                                                    .bytes = hash2_bytes};

static const ap_embedder_ops hash2_ops = {.name = "hash",
                                          .embed = hash2_embed,
                                          .describe = hash2_describe,
                                          .destroy = hash2_destroy,
                                          .corpus = &hash2_corpus};

ap_status ap_embed_hash2_create(uint32_t dim, uint64_t seed, const char *idf_sha256,
                                ap_embedder **out, ap_err *err)
{
    ap_status st = ap_crypto_init(err);
    if (st) return st;
    ap_embedder *e = calloc(1, sizeof *e);
    hash2_impl *hi = calloc(1, sizeof *hi);
    if (!e || !hi) {
        free(e);
        free(hi);
        return ap_err_set(err, AP_ERR_NOMEM, "embedder: out of memory");
    }
    ap_put64(hi->key, seed);
    memcpy(hi->key + 8, "annphash", 8);
    if (idf_sha256) snprintf(hi->want_sha256, sizeof hi->want_sha256, "%s", idf_sha256);
    e->ops = &hash2_ops;
    e->dim = dim;
    e->seed = seed;
    e->impl = hi;
    *out = e;
    return AP_OK;
}
