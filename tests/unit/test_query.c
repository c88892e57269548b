/* Query file names: percent-decoding, parameters, bounds, caps; vector query names
 * (base64url of float16 or float32 values): decoding, refusals, encode/decode round trip. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <math.h>
#include <stdlib.h>

#include <sodium.h>

#include "annpack/embed.h"
#include "annpack/query.h"
#include "annpack/search.h"
#include "check.h"
#include "fp16.h"
#include "kmeans.h"

/* base64url (no padding) of n raw bytes, malloc'd. */
static char *b64(const void *bin, size_t n)
{
    size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = malloc(cap);
    sodium_bin2base64(s, cap, bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return s;
}

static ap_status vdecode(const char *s, uint32_t dim, float *out, ap_err *err)
{
    return ap_query_vector_decode(s, strlen(s), dim, out, err);
}

static void vector_queries(void)
{
    ap_err err;
    uint64_t rng = 42;
    const uint32_t dims[] = {1, 2, 3, 4, 5, 7, 16, 31, 64, 100, 384};
    for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
        uint32_t dim = dims[t];
        float *v = malloc(dim * sizeof *v), *got = malloc(dim * sizeof *got),
              *want = malloc(dim * sizeof *want);
        for (uint32_t d = 0; d < dim; d++)
            v[d] = (float)((ap_splitmix64(&rng) >> 11) * 0x1p-53 - 0.5) * 3.0f;
        v[0] = 1.0f; /* never the zero vector */
        /* encode: float16 base64url of exactly ap_query_vector_len(dim) characters. */
        char *enc = malloc(ap_query_vector_len(dim) + 1);
        ap_query_vector_encode(v, dim, enc);
        CHECK(strlen(enc) == ap_query_vector_len(dim));
        CHECK(strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
              strlen(enc));
        /* It is the little-endian f16 bytes, so decoding gives the normalised f16 values. */
        uint16_t *h = malloc(2 * dim);
        for (uint32_t d = 0; d < dim; d++)
            h[d] = ap_f32_to_f16(v[d]);
        char *ref = b64(h, 2 * (size_t)dim);
        CHECK(!strcmp(enc, ref));
        for (uint32_t d = 0; d < dim; d++)
            want[d] = ap_f16_to_f32(h[d]);
        ap_l2_normalize(want, dim);
        CHECK_OK(vdecode(enc, dim, got, &err), &err);
        CHECK(!memcmp(got, want, dim * sizeof *got));
        double norm = 0;
        for (uint32_t d = 0; d < dim; d++)
            norm += (double)got[d] * got[d];
        CHECK(fabs(norm - 1.0) < 1e-6);
        /* Round trip: re-encoding the decoded direction of a normalised vector is stable. */
        ap_l2_normalize(v, dim);
        ap_query_vector_encode(v, dim, enc);
        CHECK_OK(vdecode(enc, dim, got, &err), &err);
        char *enc2 = malloc(ap_query_vector_len(dim) + 1);
        ap_query_vector_encode(got, dim, enc2);
        float *got2 = malloc(dim * sizeof *got2);
        CHECK_OK(vdecode(enc2, dim, got2, &err), &err);
        double maxdiff = 0;
        for (uint32_t d = 0; d < dim; d++) {
            double e = fabs((double)got2[d] - v[d]);
            if (e > maxdiff) maxdiff = e;
        }
        CHECK(maxdiff < 2e-3); /* float16 precision of values below 1 */
        /* float32: 4 * dim bytes, decoded to the normalised float32 values exactly. */
        for (uint32_t d = 0; d < dim; d++)
            v[d] = (float)((ap_splitmix64(&rng) >> 11) * 0x1p-40) + 0.1f;
        char *e32 = b64(v, 4 * (size_t)dim);
        memcpy(want, v, dim * sizeof *want);
        ap_l2_normalize(want, dim);
        CHECK_OK(vdecode(e32, dim, got, &err), &err);
        CHECK(!memcmp(got, want, dim * sizeof *got));
        /* Wrong lengths: one value short or long, in either width. */
        char *shortv = b64(h, 2 * (size_t)dim - 2);
        CHECK_ERR(vdecode(shortv, dim, got, &err), AP_ERR_ARG, &err, "(float16)");
        if (dim > 1 && dim != 2) {
            char *e32s = b64(v, 4 * (size_t)dim - 4);
            ap_status st = vdecode(e32s, dim, got, &err);
            /* 4 * (dim - 1) bytes is the float16 length of 2 * (dim - 1) values: only a
             * wrong length when that is not 2 * dim. */
            CHECK(st == AP_ERR_ARG);
            free(e32s);
        }
        free(shortv);
        free(e32);
        free(ref);
        free(h);
        free(enc);
        free(enc2);
        free(got2);
        free(v);
        free(got);
        free(want);
    }
    float out[8];
    /* Not base64url: the standard alphabet's + and /, padding, spaces, other bytes. */
    uint16_t h4[4] = {0x3c00, 0xfbff, 0xfbff, 0xfbff}; /* bytes ff fb encode to "_-" */
    char *good = b64(h4, 8);
    CHECK(strpbrk(good, "-_") != NULL);
    CHECK_OK(vdecode(good, 4, out, &err), &err);
    char *bad = strdup(good);
    for (char *c = bad; *c; c++)
        *c = *c == '-' ? '+' : *c == '_' ? '/' : *c;
    CHECK_ERR(vdecode(bad, 4, out, &err), AP_ERR_ARG, &err, "not base64url");
    const char *notb64[] = {"!!!!!!!!!!!", "AAAAAAAAAAA=", "AAAA AAAAAA", "AAAAAAAAAA\n",
                            "AAA%AAAAAAA",
                            "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                            "A",
                            /* bytes >= 0x80 (libsodium 1.0.18 took them for digits) */
                            "\xff"
                            "AAAAAAAAAA",
                            "AAAAAAAAA\xfe"
                            "A",
                            "\x80"
                            "AAAAAAAAAA"};
    for (size_t i = 0; i < sizeof notb64 / sizeof notb64[0]; i++)
        CHECK_ERR(vdecode(notb64[i], 4, out, &err), AP_ERR_ARG, &err, "not base64url");
    /* Wrong lengths: empty, a length that is neither width, far too long. */
    CHECK_ERR(vdecode("", 4, out, &err), AP_ERR_ARG, &err, "0 bytes");
    CHECK_ERR(vdecode("AAAAAAAA", 4, out, &err), AP_ERR_ARG, &err,
              "6 bytes; dim 4 needs 8 (float16) or 16");
    char longname[200];
    memset(longname, 'A', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CHECK_ERR(vdecode(longname, 4, out, &err), AP_ERR_LIMIT, &err, "too long");
    /* Non-finite values (f16 Inf and NaN, f32 NaN and Inf) name the value. */
    uint16_t hinf[4] = {0x3c00, 0x3c00, 0x7c00, 0}, hnan[4] = {0x7e00, 0, 0, 0};
    char *s1 = b64(hinf, 8), *s2 = b64(hnan, 8);
    CHECK_ERR(vdecode(s1, 4, out, &err), AP_ERR_ARG, &err, "value 2 is not finite");
    CHECK_ERR(vdecode(s2, 4, out, &err), AP_ERR_ARG, &err, "value 0 is not finite");
    float fbad[4] = {1, 2, 3, NAN}, finf[4] = {1, -INFINITY, 0, 0};
    char *s3 = b64(fbad, 16), *s4 = b64(finf, 16);
    CHECK_ERR(vdecode(s3, 4, out, &err), AP_ERR_ARG, &err, "value 3 is not finite");
    CHECK_ERR(vdecode(s4, 4, out, &err), AP_ERR_ARG, &err, "value 1 is not finite");
    /* The zero vector (and -0) has no direction; a subnormal-only vector does. */
    uint16_t hz[4] = {0, 0x8000, 0, 0}, hsub[4] = {0, 0x0001, 0, 0};
    float fz[4] = {0, 0, -0.0f, 0};
    char *s5 = b64(hz, 8), *s6 = b64(fz, 16), *s7 = b64(hsub, 8);
    CHECK_ERR(vdecode(s5, 4, out, &err), AP_ERR_ARG, &err, "zero vector");
    CHECK_ERR(vdecode(s6, 4, out, &err), AP_ERR_ARG, &err, "zero vector");
    CHECK_OK(vdecode(s7, 4, out, &err), &err);
    CHECK(out[0] == 0 && out[1] == 1.0f && out[2] == 0 && out[3] == 0);
    free(s1);
    free(s2);
    free(s3);
    free(s4);
    free(s5);
    free(s6);
    free(s7);
    free(bad);
    free(good);

    /* The parameter part alone (the mount's /vquery/k=N&probe=N/ directories). */
    uint32_t k = 10, probe = 8;
    CHECK_OK(ap_query_params("k=3&probe=5", 11, &k, &probe, &err), &err);
    CHECK(k == 3 && probe == 5);
    k = 10, probe = 8;
    CHECK_OK(ap_query_params("probe=64", 8, &k, &probe, &err), &err);
    CHECK(k == 10 && probe == 64);
    CHECK_OK(ap_query_params("&k=1000&", 8, &k, &probe, &err), &err);
    CHECK(k == 1000 && probe == 64);
    CHECK_OK(ap_query_params("", 0, &k, &probe, &err), &err);
    CHECK(k == 1000 && probe == 64);
    /* Only the first len bytes count. */
    CHECK_OK(ap_query_params("k=2&junk", 3, &k, &probe, &err), &err);
    CHECK(k == 2);
    const char *badp[] = {"k=0", "k=1001", "probe=0", "probe=65537", "k=1&k=2", "x=1",
                          "k",   "k=",     "k=+1",    "probe=1e3",   "K=1",     "k=1;probe=2"};
    for (size_t i = 0; i < sizeof badp / sizeof badp[0]; i++) {
        k = 10, probe = 8;
        ap_status st = ap_query_params(badp[i], strlen(badp[i]), &k, &probe, &err);
        if (st != AP_ERR_ARG) fprintf(stderr, "accepted params: %s\n", badp[i]);
        CHECK(st == AP_ERR_ARG);
    }
}

static ap_status parse(const char *s, ap_query *q, ap_err *err)
{
    return ap_query_parse(s, strlen(s), 10, 8, q, err);
}

int main(void)
{
    ap_err err;
    ap_query q;
    CHECK_OK(parse("hello world", &q, &err), &err);
    CHECK(!strcmp(q.text, "hello world") && q.k == 10 && q.probe == 8);
    ap_query_free(&q);
    CHECK_OK(parse("a%2Fb%3Fc%25d%C3%A9?k=3&probe=64", &q, &err), &err);
    CHECK(!strcmp(q.text, "a/b?c%d\xc3\xa9") && q.k == 3 && q.probe == 64);
    ap_query_free(&q);
    CHECK_OK(parse("x?", &q, &err), &err);
    ap_query_free(&q);
    CHECK_OK(parse("x?probe=2&&k=1000", &q, &err), &err);
    CHECK(q.k == 1000 && q.probe == 2);
    ap_query_free(&q);
    CHECK_OK(parse("plus+sign", &q, &err), &err);
    CHECK(!strcmp(q.text, "plus+sign"));
    ap_query_free(&q);
    const char *bad[] = {
        "x?k=0", "x?k=1001", "x?probe=0", "x?probe=65537", "x?k=1&k=2",      "x?kk=1",
        "x?k",   "x?k=",     "x?k=1x",    "bad%zz",        "trunc%4",        "?k=3",
        "",      "nul%00",   "inv%FF",    "x?k=-1",        "x?k=99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ap_status st = parse(bad[i], &q, &err);
        if (st != AP_ERR_ARG) fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK(st == AP_ERR_ARG);
    }
    char *longname = malloc(AP_QUERY_NAME_MAX + 2);
    memset(longname, 'a', AP_QUERY_NAME_MAX + 1);
    longname[AP_QUERY_NAME_MAX + 1] = 0;
    CHECK_ERR(parse(longname, &q, &err), AP_ERR_LIMIT, &err, "1025 bytes");
    longname[AP_QUERY_NAME_MAX] = 0;
    CHECK_OK(parse(longname, &q, &err), &err);
    ap_query_free(&q);
    free(longname);
    char dec[16];
    CHECK(ap_percent_decode("%41%62", 6, dec) == 2 && !strcmp(dec, "Ab"));
    CHECK(ap_percent_decode("%4", 2, dec) == (size_t)-1);
    vector_queries();
    return check_done();
}
