/* The hash embedder and JSON/fp16/k-means helpers it relies on. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <math.h>
#include <stdlib.h>

#include "annpack/embed.h"
#include "check.h"
#include "env.h"
#include "fp16.h"
#include "json.h"
#include "kmeans.h"
#include "utf8.h"

static float dot(const float *a, const float *b, uint32_t d)
{
    float s = 0;
    for (uint32_t i = 0; i < d; i++)
        s += a[i] * b[i];
    return s;
}

static void emb(const ap_embedder *e, const char *t, float *out)
{
    ap_embedder_embed(e, t, strlen(t), out, NULL);
}

int main(void)
{
    ap_err err;
    ap_embedder *e, *e2, *e3;
    /* Version 1 ("hash:1"; plain "hash" is version 2: test_hash2.c). */
    CHECK_OK(ap_embedder_create("hash:1", 0, 0, &e, &err), &err);
    CHECK(ap_embedder_dim(e) == 256);
    float a[256], b[256], c[256];
    emb(e, "Hello World", a);
    emb(e, "hello, world!", b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(fabsf(dot(a, a, 256) - 1) < 1e-5f);
    emb(e, "", a);
    emb(e, "!!! ...", b);
    CHECK(memcmp(a, b, sizeof a) == 0 && fabsf(dot(a, a, 256) - 1) < 1e-5f);
    emb(e, "the quick brown fox jumps", a);
    emb(e, "a brown fox sleeps", b);
    emb(e, "solar inverter current", c);
    CHECK(dot(a, b, 256) > dot(a, c, 256) + 0.2f);
    /* Golden values pin the documented algorithm (docs/FORMAT.md). */
    ap_embedder *g;
    CHECK_OK(ap_embedder_create("hash:1", 16, 0, &g, &err), &err);
    float gv[16];
    emb(g, "annpack golden", gv);
    float norm = 0;
    for (int i = 0; i < 16; i++)
        norm += gv[i] * gv[i];
    CHECK(fabsf(norm - 1) < 1e-5f);
    CHECK(fabsf(gv[0] - 0.258198887f) < 1e-7f && fabsf(gv[1] - 0.516397774f) < 1e-7f);
    CHECK(gv[2] == 0.0f && fabsf(gv[3] - 0.258198887f) < 1e-7f);
    /* Seeds matter; describe/from_json round trip gives the same vectors. */
    CHECK_OK(ap_embedder_create("hash:1", 256, 7, &e2, &err), &err);
    emb(e2, "the quick brown fox jumps", b);
    emb(e, "the quick brown fox jumps", a);
    CHECK(memcmp(a, b, sizeof a) != 0);
    char *d = ap_embedder_describe(e2);
    CHECK_OK(ap_embedder_from_json(d, strlen(d), "m", &e3, &err), &err);
    emb(e3, "the quick brown fox jumps", c);
    CHECK(memcmp(b, c, sizeof b) == 0);
    free(d);
    const char *bad[] = {"{\"name\":\"bert\",\"dim\":8,\"seed\":0}",
                         "{\"name\":\"hash\",\"version\":3,\"dim\":8,\"seed\":0}",
                         "{\"name\":\"hash\",\"version\":1,\"dim\":8}",
                         "{\"name\":\"hash\",\"version\":1,\"dim\":5000,\"seed\":0}"};
    const char *needles[] = {"known: hash", "version 3", "\"seed\" missing", "ANNPACK_MAX_DIM"};
    for (int i = 0; i < 4; i++) {
        ap_embedder *x;
        CHECK(ap_embedder_from_json(bad[i], strlen(bad[i]), "m", &x, &err) != AP_OK);
        CHECK(strstr(err.msg, needles[i]) != NULL);
    }
    ap_embedder_free(e);
    ap_embedder_free(e2);
    ap_embedder_free(e3);
    ap_embedder_free(g);

    /* Strict JSON. */
    cJSON *j;
    CHECK_OK(ap_json_parse_strict("{\"a\":{\"b\":1}}", 13, "j", &j, &err), &err);
    cJSON_Delete(j);
    CHECK_ERR(ap_json_parse_strict("{\"a\":1,\"a\":2}", 13, "j", &j, &err), AP_ERR_FORMAT, &err,
              "duplicate key \"a\"");
    CHECK_ERR(ap_json_parse_strict("{\"a\":{\"b\":1,\"b\":1}}", 19, "j", &j, &err), AP_ERR_FORMAT,
              &err, "duplicate key \"b\"");
    CHECK_ERR(ap_json_parse_strict("{} x", 4, "j", &j, &err), AP_ERR_FORMAT, &err, "trailing");
    CHECK_ERR(ap_json_parse_strict("{\"a\":\0}", 7, "j", &j, &err), AP_ERR_FORMAT, &err, "NUL");
    const char *nums[] = {"{\"n\":1.5}", "{\"n\":-1}", "{\"n\":9007199254740992}", "{\"n\":\"1\"}"};
    for (int i = 0; i < 4; i++) {
        uint64_t v;
        CHECK_OK(ap_json_parse_strict(nums[i], strlen(nums[i]), "j", &j, &err), &err);
        CHECK(ap_json_u64(j, "n", UINT64_MAX, "j", &v, &err) == AP_ERR_FORMAT);
        cJSON_Delete(j);
    }
    uint64_t v;
    CHECK_OK(ap_json_parse_strict("{\"n\":9007199254740991,\"N\":2}", 28, "j", &j, &err), &err);
    CHECK_OK(ap_json_u64(j, "n", UINT64_MAX, "j", &v, &err), &err);
    CHECK(v == 9007199254740991ull);
    CHECK_OK(ap_json_u64(j, "N", 5, "j", &v, &err), &err);
    CHECK(v == 2);
    cJSON_Delete(j);
    j = cJSON_CreateObject();
    ap_json_add_u64(j, "x", 1000000000000000ull);
    char *s = cJSON_PrintUnformatted(j);
    CHECK(strcmp(s, "{\"x\":1000000000000000}") == 0);
    free(s);
    cJSON_Delete(j);

    /* fp16: known values, ties to even, and the F16C path equals the portable one. */
    CHECK(ap_f32_to_f16(1.0f) == 0x3c00 && ap_f32_to_f16(-2.0f) == 0xc000);
    CHECK(ap_f32_to_f16(65504.0f) == 0x7bff && ap_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(ap_f32_to_f16(0x1p-24f) == 0x0001 && ap_f32_to_f16(0x1p-25f) == 0x0000);
    CHECK(ap_f32_to_f16(3 * 0x1p-25f) == 0x0002);
    CHECK(ap_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00 && ap_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02);
    CHECK(isnan(ap_f16_to_f32(ap_f32_to_f16(NAN))));
    int rt = 0;
    for (uint32_t hbits = 0; hbits < 65536; hbits++) {
        float f = ap_f16_to_f32((uint16_t)hbits);
        if (!isnan(f) && ap_f32_to_f16(f) != hbits) rt++;
    }
    CHECK(rt == 0);
    enum { M = 1000003 };
    float *fs = malloc(M * sizeof *fs);
    uint16_t *h1 = malloc(M * 2), *h2 = malloc(M * 2);
    uint64_t rng = 3;
    for (int i = 0; i < M; i++) {
        uint32_t bits = (uint32_t)ap_splitmix64(&rng);
        memcpy(&fs[i], &bits, 4);
        if (i % 3 == 0) fs[i] = ldexpf((float)(bits % 2048) / 2048.0f, (int)(bits % 40) - 30);
    }
    ap_f32_to_f16_n(h1, fs, M);
    ap_fp16_force_portable(1);
    ap_f32_to_f16_n(h2, fs, M);
    ap_fp16_force_portable(0);
    int mism = 0;
    for (int i = 0; i < M; i++)
        if (h1[i] != h2[i] && !(isnan(fs[i]))) mism++;
    CHECK(mism == 0);
    /* ap_f16_sumsq: the same bits on both paths, whatever the length's remainder by 8;
     * non-finite exactly when a value is. */
    for (size_t n = 0; n < 40; n++) {
        float sa = ap_f16_sumsq(h1 + 7 * n, n);
        ap_fp16_force_portable(1);
        float sb = ap_f16_sumsq(h1 + 7 * n, n);
        ap_fp16_force_portable(0);
        int fin = 1;
        for (size_t i = 0; i < n; i++)
            fin &= isfinite(ap_f16_to_f32(h1[7 * n + i]));
        CHECK(memcmp(&sa, &sb, 4) == 0 || (isnan(sa) && isnan(sb)));
        CHECK((isfinite(sa) != 0) == (fin != 0));
    }
    const uint16_t top[9] = {0x7bff, 0x7bff, 0x7bff, 0x7bff, 0x7bff,
                             0x7bff, 0x7bff, 0x7bff, 0x3c00};
    CHECK(isfinite(ap_f16_sumsq(top, 9)) && ap_f16_sumsq(top + 8, 1) == 1.0f);
    free(fs);
    free(h1);
    free(h2);

    /* UTF-8. */
    CHECK(ap_utf8_invalid_at("caf\xc3\xa9 \xe6\x9d\xb1 \xf0\x9f\x98\x80", 14) == 14);
    CHECK(ap_utf8_invalid_at("a\xc0\x80", 3) == 1);
    CHECK(ap_utf8_invalid_at("\xed\xa0\x80", 3) == 0);
    CHECK(ap_utf8_invalid_at("\xf4\x90\x80\x80", 4) == 0);
    CHECK(ap_utf8_invalid_at("ab\xe6\x9d", 4) == 2);
    CHECK(ap_utf8_invalid_at("\x80", 1) == 0);

    /* k-means: separated clusters are recovered; the same on 2 threads as on 1; degenerate
     * data. */
    enum { P = 2000, D = 32 };
    float *x = malloc(P * D * sizeof *x), cent1[4 * D], cent2[4 * D];
    rng = 9;
    for (int i = 0; i < P; i++) {
        for (int d2 = 0; d2 < D; d2++)
            x[i * D + d2] = (d2 == (i % 4) * 8 ? 5.0f : 0.0f) +
                            (float)((ap_splitmix64(&rng) >> 11) * 0x1p-53 - 0.5) * 0.2f;
        ap_l2_normalize(x + i * D, D);
    }
    /* Two worker threads, then one (the count comes from the environment snapshot). */
    setenv("ANNPACK_THREADS", "2", 1);
    CHECK_OK(ap_env_reload(&err), &err);
    CHECK_OK(ap_kmeans_train(x, P, D, 4, 1, 20, cent1, NULL, NULL, NULL, &err), &err);
    setenv("ANNPACK_THREADS", "1", 1);
    CHECK_OK(ap_env_reload(&err), &err);
    CHECK_OK(ap_kmeans_train(x, P, D, 4, 1, 20, cent2, NULL, NULL, NULL, &err), &err);
    CHECK(memcmp(cent1, cent2, sizeof cent1) == 0);
    uint32_t *as = malloc(P * sizeof *as);
    CHECK_OK(ap_kmeans_assign(x, P, D, cent1, 4, as, NULL, &err), &err);
    int consistent = 1;
    for (int i = 4; i < P; i++)
        consistent &= as[i] == as[i % 4];
    CHECK(consistent && as[0] != as[1] && as[0] != as[2] && as[1] != as[3]);
    for (int c2 = 0; c2 < 4; c2++)
        CHECK(fabsf(dot(cent1 + c2 * D, cent1 + c2 * D, D) - 1) < 1e-4f);
    for (int i = 0; i < P * D; i++)
        x[i] = i % D == 0 ? 1.0f : 0.0f;
    CHECK_OK(ap_kmeans_train(x, P, D, 3, 1, 20, cent1, NULL, NULL, NULL, &err), &err);
    int finite = 1;
    for (int i = 0; i < 3 * D; i++)
        finite &= isfinite(cent1[i]);
    CHECK(finite);
    float tie[2 * D] = {0};
    tie[0] = 1;
    tie[D] = 1;
    uint32_t one;
    CHECK_OK(ap_kmeans_assign(x, 1, D, tie, 2, &one, NULL, &err), &err);
    CHECK(one == 0);
    free(x);
    free(as);
    return check_done();
}
