/* Verification (ap_pack_verify, ap_verify_dir) called directly on small packs and
 * packsets built in a scratch directory: what passes, and each refusal with its status,
 * its message and the file the report names. Hash-level: a changed byte, a short file, a
 * missing file, an unlisted file that could change meaning, a strict-JSON manifest error,
 * an unknown schema, a path escape, a symlinked file, a packset given as a pack. Deep
 * (only): a vector not finite, not unit length, an id twice, a metadata row naming another
 * id. Packsets: a layer file changed, an unlisted root file, the root's dim or embedder
 * differing from the base's, a layer manifest path, changed tombstones. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdlib.h>

#include "annpack/format.h"
#include "annpack/sq8.h"
#include "fp16.h"
#include "packs.h"

static ap_err err;

/* Verifies dir (pack-only with pack_only); returns the status, *file the report's failing
 * file ("" when none), and checks the report agrees with the status. */
static ap_status verify(const char *dir, int pack_only, int deep, char *file, size_t cap)
{
    ap_verify_opts o = {.deep = deep != 0};
    char *report = NULL;
    ap_status st =
        pack_only ? ap_pack_verify(dir, &o, &report, &err) : ap_verify_dir(dir, &o, &report, &err);
    CHECK(report != NULL);
    CHECK(pk_report_ok(report, file, cap) == (st == AP_OK));
    free(report);
    return st;
}

#define VERIFY_FAILS(dir, pack_only, deep, want, needle, want_file)                                \
    do {                                                                                           \
        char f_[256];                                                                              \
        CHECK_ERR(verify(dir, pack_only, deep, f_, sizeof f_), want, &err, needle);                \
        CHECK(!strcmp(f_, want_file));                                                             \
        if (strcmp(f_, want_file))                                                                 \
            fprintf(stderr, "  report names \"%s\", wanted \"%s\"\n", f_, want_file);              \
    } while (0)

/* List li of dir/pack.annpack: the file offsets of its ids and vectors, and its count. */
static uint32_t list_at(const char *dir, uint32_t li, long *ids, long *vecs)
{
    char *p = pk_join(dir, AP_ANNPACK);
    ap_annp *a;
    if (ap_annp_open(p, &a, &err)) fx_die(p, &err);
    ap_annp_list l;
    ap_annp_list_get(a, li, &l);
    *ids = (long)l.offset + 4;
    *vecs = *ids + 8L * l.count;
    ap_annp_close(a);
    free(p);
    return l.count;
}

/* A list with at least two vectors. */
static uint32_t big_list(const char *dir, long *ids, long *vecs)
{
    for (uint32_t li = 0;; li++)
        if (list_at(dir, li, ids, vecs) >= 2) return li;
}

static void packs(void)
{
    char *p = pk_build("pack", 0, 0);
    char f[256];
    CHECK_OK(verify(p, 1, 0, f, sizeof f), &err);
    CHECK_OK(verify(p, 1, 1, f, sizeof f), &err);
    CHECK_OK(verify(p, 0, 1, f, sizeof f), &err);
    CHECK(!strcmp(f, ""));
    /* NULL options and no report wanted. */
    CHECK_OK(ap_pack_verify(p, NULL, NULL, &err), &err);
    free(p);

    /* A changed byte in a data file. */
    p = pk_build("flip", 0, 0);
    char *annp = pk_join(p, AP_ANNPACK);
    pk_flip(annp, 100, 1);
    VERIFY_FAILS(
        p, 1, 0, AP_ERR_VERIFY,
        "/pack.annpack: header and centroids (range 0, 168 bytes at 0) does not match pack.digests",
        "pack.annpack");
    free(annp);
    free(p);

    /* Shorter than the manifest says. */
    p = pk_build("short", 0, 0);
    annp = pk_join(p, AP_ANNPACK);
    CHECK(truncate(annp, 100) == 0);
    VERIFY_FAILS(p, 1, 0, AP_ERR_VERIFY, "/pack.annpack: size 100, the manifest says ",
                 "pack.annpack");
    free(annp);
    free(p);

    /* A listed file missing. */
    p = pk_build("missing", 0, 0);
    char *idx = pk_join(p, AP_META_IDX);
    CHECK(unlink(idx) == 0);
    VERIFY_FAILS(p, 1, 0, AP_ERR_VERIFY, "/pack.meta.idx: listed in the manifest but missing",
                 "pack.meta.idx");
    free(idx);
    free(p);

    /* Unlisted files: one a reader could pick up is refused; others are not the pack's. */
    p = pk_build("unlisted", 0, 0);
    char *other = pk_join(p, "notes.txt");
    fx_put(other, "x", 1);
    CHECK_OK(verify(p, 1, 0, f, sizeof f), &err);
    char *sq8 = pk_join(p, AP_SQ8);
    fx_put(sq8, "x", 1);
    VERIFY_FAILS(p, 1, 0, AP_ERR_VERIFY,
                 "/pack.sq8: file not listed in the manifest could change the pack's meaning; "
                 "remove it",
                 "pack.sq8");
    free(sq8);
    free(other);
    free(p);

    /* The manifest: strict JSON, a known schema, paths that stay inside. */
    p = pk_build("dupkey", 0, 0);
    char *man = pk_join(p, AP_MANIFEST);
    CHECK(pk_edit(man, "\"metric\":", "\"dim\": 8,\n\t\"metric\":"));
    VERIFY_FAILS(p, 1, 0, AP_ERR_FORMAT, "/pack.manifest.json: duplicate key \"dim\" at byte ",
                 "pack.manifest.json");
    free(man);
    free(p);
    p = pk_build("schema", 0, 0);
    man = pk_join(p, AP_MANIFEST);
    CHECK(pk_edit(man, "\"schema_version\":\t2", "\"schema_version\":\t9"));
    VERIFY_FAILS(p, 0, 0, AP_ERR_UNSUPPORTED,
                 "/pack.manifest.json: schema_version 9 not supported (2 or 3)",
                 "pack.manifest.json");
    free(man);
    free(p);
    p = pk_build("escape", 0, 0);
    man = pk_join(p, AP_MANIFEST);
    CHECK(pk_edit(man, "\"pack.meta.idx\":\t{", "\"../pack.meta.idx\":\t{"));
    VERIFY_FAILS(p, 1, 0, AP_ERR_FORMAT,
                 "files key \"../pack.meta.idx\" contains '..' (path escape)",
                 "pack.manifest.json");
    free(man);
    free(p);
    p = pk_build("empty", 0, 0);
    man = pk_join(p, AP_MANIFEST);
    pk_put(man, "{", 1);
    VERIFY_FAILS(p, 1, 0, AP_ERR_FORMAT, "/pack.manifest.json: ", "pack.manifest.json");
    CHECK(unlink(man) == 0);
    VERIFY_FAILS(p, 1, 0, AP_ERR_NOTFOUND, "/pack.manifest.json", "pack.manifest.json");
    free(man);
    free(p);

    /* A data file that is a symlink (to an identical copy outside): never followed. */
    char *src = pk_build("orig", 0, 0);
    p = pk_build("symlinked", 0, 0);
    annp = pk_join(p, AP_ANNPACK);
    char *target = pk_join(src, AP_ANNPACK);
    CHECK(unlink(annp) == 0 && symlink(target, annp) == 0);
    VERIFY_FAILS(p, 1, 0, AP_ERR_VERIFY,
                 "/pack.annpack: the path leaves the directory (a symlink or a path escape)",
                 "pack.annpack");
    free(target);
    free(annp);
    free(p);
    free(src);

    /* A packset is not a pack. */
    p = pk_build("aps", 1, 0);
    VERIFY_FAILS(p, 1, 0, AP_ERR_UNSUPPORTED,
                 "/pack.manifest.json: schema_version 3 is not a pack manifest (need 2; this is a "
                 "packset)",
                 "pack.manifest.json");
    CHECK_OK(verify(p, 0, 1, f, sizeof f), &err);
    free(p);
}

/* Changes that keep every hash (the manifest re-pinned): only deep verification sees them. */
static void deep(void)
{
    char f[256];
    long ids, vecs;

    char *p = pk_build("inf", 0, 0);
    char *annp = pk_join(p, AP_ANNPACK);
    uint32_t li = big_list(p, &ids, &vecs);
    const uint16_t inf = 0x7c00;
    pk_poke(annp, vecs + 2 * 3, &inf, 2);
    pk_rehash(p, AP_ANNPACK);
    CHECK_OK(verify(p, 1, 0, f, sizeof f), &err);
    char want[128];
    snprintf(want, sizeof want, "/pack.annpack: list %u: vector of id ", li);
    VERIFY_FAILS(p, 1, 1, AP_ERR_VERIFY, want, "pack.annpack");
    CHECK_ERR(verify(p, 1, 1, f, sizeof f), AP_ERR_VERIFY, &err, " is not finite");
    free(annp);
    free(p);

    p = pk_build("norm", 0, 0);
    annp = pk_join(p, AP_ANNPACK);
    big_list(p, &ids, &vecs);
    uint16_t zero[PK_DIM] = {0};
    zero[0] = ap_f32_to_f16(0.5f); /* norm 0.5 */
    pk_poke(annp, vecs, zero, sizeof zero);
    pk_rehash(p, AP_ANNPACK);
    CHECK_OK(verify(p, 1, 0, f, sizeof f), &err);
    VERIFY_FAILS(p, 1, 1, AP_ERR_VERIFY, "has norm 0.5000 (want 1 within 0.01)", "pack.annpack");
    /* Next to the bound the float first look defers to the double check: norm 1.00994
     * (0.1414 rounds to 0.141357 in f16) passes, 1.01010 does not. */
    zero[0] = ap_f32_to_f16(1.0f);
    zero[1] = ap_f32_to_f16(0.1414f);
    pk_poke(annp, vecs, zero, sizeof zero);
    pk_rehash(p, AP_ANNPACK);
    CHECK_OK(verify(p, 1, 1, f, sizeof f), &err);
    zero[1] = ap_f32_to_f16(0.1425f);
    pk_poke(annp, vecs, zero, sizeof zero);
    pk_rehash(p, AP_ANNPACK);
    VERIFY_FAILS(p, 1, 1, AP_ERR_VERIFY, "has norm 1.0101 (want 1 within 0.01)", "pack.annpack");
    free(annp);
    free(p);

    p = pk_build("twice", 0, 0);
    annp = pk_join(p, AP_ANNPACK);
    big_list(p, &ids, &vecs);
    char first[8];
    char *bytes;
    size_t len;
    bytes = pk_slurp(annp, &len);
    memcpy(first, bytes + ids, 8);
    free(bytes);
    pk_poke(annp, ids + 8, first, 8); /* the list's second id = its first */
    pk_rehash(p, AP_ANNPACK);
    CHECK_OK(verify(p, 1, 0, f, sizeof f), &err);
    VERIFY_FAILS(p, 1, 1, AP_ERR_VERIFY, " appears twice", "pack.annpack");
    free(annp);
    free(p);

    /* A metadata row that names another id than the index says (same length). */
    p = pk_build("rowid", 0, 0);
    char *rows = pk_join(p, AP_META_JSONL);
    CHECK(pk_edit(rows, "{\"id\":5,", "{\"id\":7,"));
    pk_rehash(p, AP_META_JSONL);
    CHECK_OK(verify(p, 1, 0, f, sizeof f), &err);
    VERIFY_FAILS(p, 1, 1, AP_ERR_VERIFY, "/pack.meta.jsonl: index says id 5, row says 7",
                 "pack.meta.jsonl");
    free(rows);
    free(p);

    /* The int8 sidecar must be the encoding of the vectors. */
    p = pk_build("sq8", 0, 1);
    CHECK_OK(verify(p, 1, 1, f, sizeof f), &err);
    char *sq8 = pk_join(p, AP_SQ8);
    bytes = pk_slurp(sq8, &len);
    /* The last vector's codes end the file: its first code is a stride before the end. */
    pk_flip(sq8, (long)len - (long)ap_sq8_stride_for(PK_DIM), 0x55);
    free(bytes);
    pk_rehash(p, AP_SQ8);
    CHECK_OK(verify(p, 1, 0, f, sizeof f), &err);
    VERIFY_FAILS(p, 1, 1, AP_ERR_VERIFY, ": codes differ from the encoding of ", AP_SQ8);
    free(sq8);
    free(p);
}

static void packsets(void)
{
    char f[256];
    char *ps = pk_packset_with_delta("ps");
    CHECK_OK(verify(ps, 0, 0, f, sizeof f), &err);
    CHECK_OK(verify(ps, 0, 1, f, sizeof f), &err);
    free(ps);

    /* A base file changed: its hash is pinned by the root manifest. */
    ps = pk_packset_with_delta("ps-base");
    char *meta = pk_join(ps, "base/" AP_META_JSONL);
    pk_flip(meta, 3, 1);
    VERIFY_FAILS(ps, 0, 0, AP_ERR_VERIFY, "/base/pack.meta.jsonl: chunk 0 (range 0, ",
                 "base/pack.meta.jsonl");
    free(meta);
    free(ps);

    /* A delta's tombstones changed. */
    ps = pk_packset_with_delta("ps-tomb");
    char *tomb = pk_join(ps, "deltas/0001.delta/" AP_TOMBSTONES);
    CHECK(pk_edit(tomb, "3", "4"));
    VERIFY_FAILS(ps, 0, 0, AP_ERR_VERIFY, "/deltas/0001.delta/tombstones.jsonl: sha256 mismatch",
                 "deltas/0001.delta/tombstones.jsonl");
    free(tomb);
    free(ps);

    /* An unlisted root file that could change meaning. */
    ps = pk_packset_with_delta("ps-unlisted");
    char *extra = pk_join(ps, AP_TOMBSTONES);
    fx_put(extra, "{\"id\":1}\n", 9);
    VERIFY_FAILS(ps, 0, 0, AP_ERR_VERIFY,
                 "/tombstones.jsonl: file not listed in the manifest could change the packset's "
                 "meaning; remove it",
                 AP_TOMBSTONES);
    free(extra);
    free(ps);

    /* The root manifest must agree with its base. */
    ps = pk_packset_with_delta("ps-dim");
    char *root = pk_join(ps, AP_MANIFEST);
    CHECK(pk_edit(root, "\"dim\":\t8,", "\"dim\":\t16,"));
    VERIFY_FAILS(ps, 0, 0, AP_ERR_VERIFY,
                 "/pack.manifest.json: dim 16 differs from the base's dim 8", AP_MANIFEST);
    free(root);
    free(ps);
    ps = pk_packset_with_delta("ps-emb");
    root = pk_join(ps, AP_MANIFEST);
    CHECK(pk_edit(root, "\"seed\":\t1,", "\"seed\":\t2,"));
    VERIFY_FAILS(ps, 0, 0, AP_ERR_VERIFY, "differs from the base's", AP_MANIFEST);
    free(root);
    free(ps);
    ps = pk_packset_with_delta("ps-layer");
    root = pk_join(ps, AP_MANIFEST);
    CHECK(pk_edit(root, "\"manifest\":\t\"base/pack.manifest.json\"",
                  "\"manifest\":\t\"base/other.json\""));
    CHECK_ERR(verify(ps, 0, 0, f, sizeof f), AP_ERR_FORMAT, &err,
              "/pack.manifest.json: layer manifest \"base/other.json\" is not "
              "\"base/pack.manifest.json\"");
    free(root);
    free(ps);
}

int main(void)
{
    pk_root = fx_scratch("verify");
    packs();
    deep();
    packsets();
    return check_done();
}
