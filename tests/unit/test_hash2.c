/* The hash embedder version 2: fitting its idf table, the table file, loading it back,
 * what the weighting and the letter/digit split change, and the refusals. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/embed.h"
#include "check.h"
#include "corpus.h"
#include "endian.h"

static float dot(const float *a, const float *b, uint32_t d)
{
    float s = 0;
    for (uint32_t i = 0; i < d; i++)
        s += a[i] * b[i];
    return s;
}

static void emb(const ap_embedder *e, const char *t, float *out)
{
    ap_err err;
    CHECK_OK(ap_embedder_embed(e, t, strlen(t), out, &err), &err);
}

static const char *docs[] = {
    "OpenSSH server daemon",
    "NFS server and tools",
    "DHCP server",
    "MariaDB database server",
    "web server for static files",
    "chess engine (UCI)",
    "regular expression engine",
    "template engine for the web",
    "ssh2 client library",
    "PDF viewer for the desktop",
    "image viewer",
    "server side includes",
};
#define NDOCS (sizeof docs / sizeof docs[0])

int main(void)
{
    ap_err err;
    ap_embedder *e, *e1, *r;
    CHECK_OK(ap_embedder_create("hash", 256, 0, &e, &err), &err);
    CHECK(ap_embedder_needs_table(e) && strcmp(ap_embedder_sidecar(e), AP_IDF) == 0);
    float a[256], b[256], c[256];
    /* Before it has a table it refuses to embed. */
    CHECK_ERR(ap_embedder_embed(e, "x", 1, a, &err), AP_ERR_NOTFOUND, &err, "not loaded");
    char *texts[NDOCS];
    size_t lens[NDOCS];
    for (size_t i = 0; i < NDOCS; i++) {
        texts[i] = (char *)(uintptr_t)docs[i];
        lens[i] = strlen(docs[i]);
    }
    CHECK_OK(ap_embedder_fit(e, texts, lens, NDOCS, &err), &err);
    CHECK(!ap_embedder_needs_table(e));
    const void *tb;
    size_t tl;
    ap_embedder_table_bytes(e, &tb, &tl);
    const unsigned char *t = tb;
    CHECK(tl == 32 + 4 * 1024 && memcmp(t, "ANNPIDF1", 8) == 0 && ap_le32(t + 8) == 1 &&
          ap_le32(t + 12) == 1024 && ap_le64(t + 16) == NDOCS);
    /* total_len: the word features of all documents ("ssh2" counts 3: ssh2, ssh, 2). */
    CHECK(ap_le64(t + 24) == 3 + 4 + 2 + 3 + 5 + 3 + 3 + 5 + 5 + 5 + 2 + 3);

    /* A rare word outweighs a common one: for "chess engine" the chess document beats the
     * regex engine, which shares only the common word. */
    emb(e, "chess engine", a);
    emb(e, docs[5], b);
    emb(e, docs[6], c);
    CHECK(dot(a, b, 256) > dot(a, c, 256) + 0.3f);
    /* Letter/digit runs: "ssh" finds "ssh2 client library" through its part "ssh". */
    emb(e, "ssh", a);
    emb(e, docs[8], b);
    emb(e, docs[2], c);
    CHECK(dot(a, b, 256) > 0.2f && dot(a, b, 256) > dot(a, c, 256) + 0.2f);
    /* Unit length, case-insensitive, empty text is the "e" feature as in version 1. */
    emb(e, "PDF Viewer", a);
    emb(e, "pdf viewer", b);
    CHECK(memcmp(a, b, sizeof a) == 0 && fabsf(dot(a, a, 256) - 1) < 1e-5f);
    emb(e, "", a);
    emb(e, "?!", b);
    CHECK(memcmp(a, b, sizeof a) == 0 && fabsf(dot(a, a, 256) - 1) < 1e-5f);

    /* Version 1 differs from version 2. */
    CHECK_OK(ap_embedder_create("hash:1", 256, 0, &e1, &err), &err);
    emb(e1, "chess engine", c);
    emb(e, "chess engine", a);
    CHECK(memcmp(a, c, sizeof a) != 0);

    /* The block names the table by hash; a reader recreates the embedder from the block and
     * the file, and embeds identically. */
    char *d = ap_embedder_describe(e);
    CHECK(strstr(d, "\"version\":2") && strstr(d, "\"file\":\"pack.idf\""));
    CHECK_OK(ap_embedder_from_json(d, strlen(d), "m", &r, &err), &err);
    CHECK(ap_embedder_needs_table(r));
    char *d2 = ap_embedder_describe(r);
    CHECK(strcmp(d, d2) == 0);
    free(d2);
    unsigned char *bad = malloc(tl);
    memcpy(bad, tb, tl);
    bad[40] ^= 1;
    CHECK_ERR(ap_embedder_load_table(r, bad, tl, "x/pack.idf", &err), AP_ERR_VERIFY, &err,
              "differs from the embedder block's");
    ap_put32(bad + 40, 0xffffffffu);
    CHECK_ERR(ap_embedder_load_table(r, bad, tl, "x/pack.idf", &err), AP_ERR_FORMAT, &err,
              "more than n_docs");
    CHECK_ERR(ap_embedder_load_table(r, bad, 31, "x/pack.idf", &err), AP_ERR_FORMAT, &err,
              "not an idf table");
    CHECK_ERR(ap_embedder_load_table(r, bad, tl - 4, "x/pack.idf", &err), AP_ERR_FORMAT, &err,
              "bytes, 1024 buckets need");
    memcpy(bad, tb, tl);
    ap_put32(bad + 12, 1000);
    CHECK_ERR(ap_embedder_load_table(r, bad, tl, "x/pack.idf", &err), AP_ERR_FORMAT, &err,
              "not a power of two");
    free(bad);
    CHECK_OK(ap_embedder_load_table(r, tb, tl, "x/pack.idf", &err), &err);
    emb(r, "chess engine", b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* A loaded table is fixed. */
    CHECK_ERR(ap_embedder_fit(r, texts, lens, NDOCS, &err), AP_ERR_INTERNAL, &err, "fixed");
    free(d);

    /* Blocks a reader refuses. */
    const char *blocks[] = {
        "{\"name\":\"hash\",\"version\":2,\"dim\":8,\"seed\":0}",
        ("{\"name\":\"hash\",\"version\":2,\"dim\":8,\"seed\":0,\"idf\":{\"file\":\"../x\","
         "\"sha256\":\""
         "0000000000000000000000000000000000000000000000000000000000000000\"}}"),
        ("{\"name\":\"hash\",\"version\":2,\"dim\":8,\"seed\":0,\"idf\":{\"file\":\"pack.idf\","
         "\"sha256\":\"abc\"}}"),
        "{\"name\":\"hash:1\",\"dim\":8,\"seed\":0}"};
    const char *needles[] = {"needs an \"idf\" object", "not \"pack.idf\"", "64 lowercase hex",
                             "unknown embedder"};
    for (int i = 0; i < 4; i++) {
        ap_embedder *x;
        CHECK(ap_embedder_from_json(blocks[i], strlen(blocks[i]), "m", &x, &err) != AP_OK);
        CHECK(strstr(err.msg, needles[i]) != NULL);
    }
    ap_embedder_free(r);
    CHECK(ap_embedder_create("hash:3", 8, 0, &r, &err) == AP_ERR_UNSUPPORTED && !r);
    ap_embedder_free(e);
    ap_embedder_free(e1);
    return check_done();
}
