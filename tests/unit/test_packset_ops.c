/* The packset operations called directly (include/annpack/packset.h): build-base, delta
 * builds, append, promote, revert, rebase and create on small packsets built in a scratch
 * directory, what each leaves (version, deltas, live rows), and each refusal with its
 * status and message: what a change checks first (the lock, a signature without a key, a
 * packset that does not verify, a pack), what an output may replace, the deltas a packset
 * accepts, and the delete-id list parser. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdlib.h>

#include "annpack/trust.h"
#include "packs.h"

static ap_err err;

/* version, deltas and live rows of dir (checked to open). */
static int state_is(const char *dir, uint64_t version, uint32_t ndeltas, uint64_t live)
{
    ap_view *v = NULL;
    if (ap_view_open(dir, &v, &err)) {
        fprintf(stderr, "  %s: %s\n", dir, err.msg);
        return 0;
    }
    int ok = ap_view_version(v) == version && ap_view_n_deltas(v) == ndeltas &&
             ap_view_live_count(v) == live;
    if (!ok)
        fprintf(stderr, "  %s: version %llu, %u deltas, %llu live\n", dir,
                (unsigned long long)ap_view_version(v), ap_view_n_deltas(v),
                (unsigned long long)ap_view_live_count(v));
    ap_view_close(v);
    return ok;
}

static int verifies(const char *dir)
{
    ap_verify_opts o = {.deep = true};
    return ap_verify_dir(dir, &o, NULL, &err) == AP_OK;
}

static ap_delta_opts delta_opts(const char *base, const char *add, const uint64_t *del, size_t ndel,
                                const char *out)
{
    return (ap_delta_opts){.base_dir = base,
                           .add_csv = add,
                           .text_col = "text",
                           .id_col = "id",
                           .delete_ids = del,
                           .n_delete = ndel,
                           .out_dir = out,
                           .lists = 2,
                           .seed = 1,
                           .meta_codec = AP_META_NONE};
}

static void build_base(void)
{
    char *csv = pk_csv("bb.csv", 1, PK_ROWS, 0), *ps = pk_path("bb");
    ap_build_opts o = {.input_csv = csv,
                       .text_col = "text",
                       .id_col = "id",
                       .output_dir = ps,
                       .lists = 3,
                       .seed = 1,
                       .dim = PK_DIM};
    CHECK_OK(ap_packset_build_base(&o, NULL, &err), &err);
    CHECK(state_is(ps, 1, 0, PK_ROWS) && verifies(ps));
    /* Again onto its own earlier output: replaced (version 1 again). */
    CHECK_OK(ap_packset_build_base(&o, NULL, &err), &err);
    CHECK(state_is(ps, 1, 0, PK_ROWS));
    /* A packset that has changed since is not an earlier build-base output. */
    const uint64_t del[1] = {1};
    char *out = pk_join(ps, "deltas/0001.delta");
    ap_delta_opts d = delta_opts(NULL, NULL, del, 1, out);
    CHECK_OK(ap_packset_add_delta(ps, &d, 0, NULL, &err), &err);
    CHECK(state_is(ps, 2, 1, PK_ROWS - 1));
    CHECK_ERR(ap_packset_build_base(&o, NULL, &err), AP_ERR_EXISTS, &err,
              "/bb is a packset (version 2, 1 deltas");
    CHECK_ERR(ap_packset_build_base(&o, NULL, &err), AP_ERR_EXISTS, &err,
              "and not an earlier build-base output; build-base would replace it with a new "
              "version 1: refusing (use --force to replace it");
    CHECK(state_is(ps, 2, 1, PK_ROWS - 1));
    /* Its base is a layer: not replaced by a build-base of its own. */
    char *layer = pk_join(ps, "base");
    ap_build_opts lo = o;
    lo.output_dir = layer;
    CHECK_ERR(ap_packset_build_base(&lo, NULL, &err), AP_ERR_EXISTS, &err,
              "/bb/base is inside the packset ");
    CHECK(state_is(ps, 2, 1, PK_ROWS - 1) && verifies(ps));
    free(layer);
    o.force = true;
    CHECK_OK(ap_packset_build_base(&o, NULL, &err), &err);
    CHECK(state_is(ps, 1, 0, PK_ROWS));
    ap_build_opts none = {.input_csv = csv, .text_col = "text"};
    CHECK_ERR(ap_packset_build_base(&none, NULL, &err), AP_ERR_ARG, &err,
              "build-base needs --packset DIR");
    free(out);
    free(csv);
    free(ps);
}

static void deltas(void)
{
    char *ps = pk_build("d", 1, 0), *base = pk_join(ps, "base");
    char *add = pk_csv("d.add.csv", PK_ROWS + 1, 5, 3);
    const uint64_t del[2] = {2, 3}, clash[1] = {PK_ROWS + 2};

    /* ap_delta_build: what it needs, and an id both added and deleted. */
    char *out = pk_path("d1.delta");
    ap_delta_opts o = delta_opts(base, NULL, NULL, 0, out);
    CHECK_ERR(ap_delta_build(&o, &err), AP_ERR_ARG, &err,
              "build-delta needs --add and/or --delete-ids");
    o = delta_opts(base, add, NULL, 0, NULL);
    CHECK_ERR(ap_delta_build(&o, &err), AP_ERR_ARG, &err, "build-delta needs a base and --out");
    o = delta_opts(base, add, clash, 1, out);
    CHECK_ERR(ap_delta_build(&o, &err), AP_ERR_ARG, &err, "id 42 is both added (in ");
    CHECK_ERR(ap_delta_build(&o, &err), AP_ERR_ARG, &err, ") and deleted in one delta");
    CHECK(access(out, F_OK) != 0); /* nothing left behind */
    o = delta_opts(base, add, del, 2, out);
    CHECK_OK(ap_delta_build(&o, &err), &err);
    CHECK_OK(ap_delta_build(&o, &err), &err); /* identical: kept */
    char *notdelta = pk_path("plain");
    CHECK(mkdir(notdelta, 0755) == 0);
    char *f = pk_join(notdelta, "x");
    fx_put(f, "x", 1);
    o.out_dir = notdelta;
    CHECK_ERR(ap_delta_build(&o, &err), AP_ERR_EXISTS, &err,
              "/plain exists and is not a delta; refusing to replace it (use --force)");
    CHECK(access(f, F_OK) == 0);

    /* Appending needs the delta inside the packset. */
    CHECK_ERR(ap_packset_append_delta(ps, out, 0, NULL, &err), AP_ERR_ARG, &err,
              "/d1.delta is not inside the packset ");
    CHECK_ERR(ap_packset_append_delta(ps, out, 0, NULL, &err), AP_ERR_ARG, &err,
              "(use promote-delta to copy it in)");
    /* Promote copies it in as the next seq. */
    uint64_t seq = 0;
    CHECK_OK(ap_packset_promote_delta(ps, out, NULL, &seq, &err), &err);
    CHECK(seq == 1 && state_is(ps, 2, 1, PK_ROWS + 5 - 2) && verifies(ps));
    char *in = pk_join(ps, "deltas/0001.delta");
    CHECK(ap_tree_equal(out, in));
    CHECK_ERR(ap_packset_append_delta(ps, in, 0, NULL, &err), AP_ERR_ARG, &err,
              "/deltas/0001.delta is already in ");
    CHECK_ERR(ap_packset_append_delta(ps, in, 0, NULL, &err), AP_ERR_ARG, &err,
              " as seq 1; a delta is written to a new directory");

    /* A delta built inside, then appended with a seq that does not grow. */
    char *in2 = pk_join(ps, "deltas/0002.delta");
    const uint64_t del2[1] = {10};
    o = delta_opts(base, NULL, del2, 1, in2);
    CHECK_OK(ap_delta_build(&o, &err), &err);
    CHECK_ERR(ap_packset_append_delta(ps, in2, 1, NULL, &err), AP_ERR_ARG, &err,
              "seq 1 is not greater than the last seq 1 of ");
    CHECK(state_is(ps, 2, 1, PK_ROWS + 3));
    CHECK_OK(ap_packset_append_delta(ps, in2, 5, NULL, &err), &err);
    CHECK(state_is(ps, 3, 2, PK_ROWS + 2) && verifies(ps));

    /* A delta of another base. */
    char *other = pk_build("other", 1, 0);
    char *csv2 = pk_csv("other2.csv", 1, PK_ROWS, 7);
    char *obase = pk_join(other, "base"), *odelta = pk_join(ps, "deltas/0009.delta");
    ap_build_opts bo = {.input_csv = csv2,
                        .text_col = "text",
                        .id_col = "id",
                        .output_dir = other,
                        .lists = 3,
                        .seed = 9,
                        .dim = PK_DIM,
                        .force = true};
    CHECK_OK(ap_packset_build_base(&bo, NULL, &err), &err);
    o = delta_opts(obase, NULL, del2, 1, odelta);
    CHECK_OK(ap_delta_build(&o, &err), &err);
    CHECK_ERR(ap_packset_append_delta(ps, odelta, 0, NULL, &err), AP_ERR_VERIFY, &err,
              "/deltas/0009.delta/delta.manifest.json: built against another base (its "
              "base_sha256_annpack ");
    CHECK(state_is(ps, 3, 2, PK_ROWS + 2));

    /* A leftover where promote would copy: kept only when it is an exact copy. */
    char *left = pk_join(ps, "deltas/0006.delta");
    CHECK(mkdir(left, 0755) == 0);
    char *lf = pk_join(left, "junk");
    fx_put(lf, "j", 1);
    CHECK_ERR(ap_packset_promote_delta(ps, out, NULL, &seq, &err), AP_ERR_EXISTS, &err,
              "/deltas/0006.delta exists, is not in the root manifest and is not a copy of ");
    CHECK(access(lf, F_OK) == 0 && state_is(ps, 3, 2, PK_ROWS + 2));
    ap_change_opts force = {.force = true};
    CHECK_OK(ap_packset_promote_delta(ps, out, &force, &seq, &err), &err);
    CHECK(seq == 6 && access(lf, F_OK) != 0 && verifies(ps));

    /* Revert: not past the last seq; then back to the base alone (dropped directories go). */
    CHECK_ERR(ap_packset_revert(ps, 7, NULL, &err), AP_ERR_ARG, &err,
              "--to 7 is after the last seq 6 of ");
    CHECK_OK(ap_packset_revert(ps, 1, NULL, &err), &err);
    CHECK(state_is(ps, 5, 1, PK_ROWS + 3) && access(in2, F_OK) != 0 && access(in, F_OK) == 0);
    CHECK_OK(ap_packset_revert(ps, 0, NULL, &err), &err);
    CHECK(state_is(ps, 6, 0, PK_ROWS) && access(in, F_OK) != 0 && verifies(ps));

    free(lf);
    free(left);
    free(odelta);
    free(obase);
    free(csv2);
    free(other);
    free(in2);
    free(in);
    free(f);
    free(notdelta);
    free(out);
    free(add);
    free(base);
    free(ps);
}

/* What every change checks before it reads or writes anything. */
static void change_checks(void)
{
    char *ps = pk_packset_with_delta("cc");
    const uint64_t del[1] = {7};
    char *out = pk_join(ps, "deltas/0002.delta");
    ap_delta_opts o = delta_opts(NULL, NULL, del, 1, out);

    /* Another command holds the lock. */
    int lock = -1;
    CHECK_OK(ap_dir_lock(ps, &lock, &err), &err);
    CHECK_ERR(ap_packset_add_delta(ps, &o, 0, NULL, &err), AP_ERR_EXISTS, &err,
              "/cc: another annpack command is changing it (it holds the lock); try again when "
              "it is done");
    CHECK_ERR(ap_packset_revert(ps, 0, NULL, &err), AP_ERR_EXISTS, &err, "holds the lock");
    ap_dir_unlock(lock);
    CHECK(state_is(ps, 2, 1, PK_ROWS + 3));

    /* Signed: a change needs the key, and drops the old signature (it does not sign the
     * new version). */
    ap_seckey *k;
    ap_pubkey pk, wrong;
    ap_seckey *k2;
    CHECK_OK(ap_seckey_generate(&k, &err), &err);
    CHECK_OK(ap_seckey_generate(&k2, &err), &err);
    ap_seckey_public(k, &pk);
    ap_seckey_public(k2, &wrong);
    char kid[AP_KEYID_HEX];
    CHECK_OK(ap_dir_sign(ps, k, NULL, kid, &err), &err);
    CHECK_ERR(ap_packset_revert(ps, 0, NULL, &err), AP_ERR_VERIFY, &err, "/cc is signed (");
    CHECK_ERR(ap_packset_revert(ps, 0, NULL, &err), AP_ERR_VERIFY, &err,
              "/pack.manifest.json.sig): pass its public key (--pubkey PUB) so the signature is "
              "checked before it is read or changed; refusing to change it");
    ap_change_opts bad = {.pubkeys = &wrong, .npubkeys = 1};
    CHECK_ERR(ap_packset_revert(ps, 0, &bad, &err), AP_ERR_VERIFY, &err, "refusing to change ");
    CHECK_ERR(ap_packset_revert(ps, 0, &bad, &err), AP_ERR_VERIFY, &err, ": it does not verify: ");
    CHECK_ERR(ap_packset_revert(ps, 0, &bad, &err), AP_ERR_VERIFY, &err, "does not verify with");
    CHECK(state_is(ps, 2, 1, PK_ROWS + 3));
    ap_change_opts good = {.pubkeys = &pk, .npubkeys = 1};
    CHECK_OK(ap_packset_add_delta(ps, &o, 0, &good, &err), &err);
    CHECK(state_is(ps, 3, 2, PK_ROWS + 2));
    char *sig = pk_join(ps, AP_SIGNATURE);
    CHECK(access(sig, F_OK) != 0);
    CHECK_OK(ap_packset_revert(ps, 1, NULL, &err), &err); /* unsigned now */
    CHECK(state_is(ps, 4, 1, PK_ROWS + 3));

    /* A data byte changed in place: a rebase (it reads every layer's data) refuses; a
     * revert (it reads no data file) goes ahead, copying the old pins, so the packset still
     * does not verify and the change laundered nothing. */
    char *meta = pk_join(ps, "base/" AP_META_JSONL);
    pk_flip(meta, 3, 1);
    char *rb = pk_path("cc-rebased");
    CHECK_ERR(ap_packset_rebase(ps, rb, 0, 1, NULL, NULL, NULL, &err), AP_ERR_VERIFY, &err,
              "refusing to rebase ");
    CHECK_ERR(ap_packset_rebase(ps, rb, 0, 1, NULL, NULL, NULL, &err), AP_ERR_VERIFY, &err,
              "/base/pack.meta.jsonl: chunk 0 (range 0, ");
    CHECK(access(rb, F_OK) != 0);
    CHECK(state_is(ps, 4, 1, PK_ROWS + 3));
    CHECK_OK(ap_packset_revert(ps, 0, NULL, &err), &err);
    CHECK_ERR(ap_verify_dir(ps, NULL, NULL, &err), AP_ERR_VERIFY, &err,
              "/base/pack.meta.jsonl: chunk 0 (range 0, ");
    pk_flip(meta, 3, 1);
    CHECK(state_is(ps, 5, 0, PK_ROWS) && verifies(ps));
    /* Its pack manifest rewritten: every change refuses (the root pins it). */
    char *bman = pk_join(ps, "base/" AP_MANIFEST);
    pk_flip(bman, 10, 1);
    CHECK_ERR(ap_packset_revert(ps, 0, NULL, &err), AP_ERR_VERIFY, &err,
              "/base/pack.manifest.json: sha256 mismatch (root manifest ");
    pk_flip(bman, 10, 1);
    CHECK(state_is(ps, 5, 0, PK_ROWS));
    free(bman);

    /* A pack is not a packset. */
    char *pack = pk_build("cc-pack", 0, 0);
    CHECK_ERR(ap_packset_revert(pack, 0, NULL, &err), AP_ERR_ARG, &err,
              "/cc-pack is a pack, not a packset (schema_version 3)");

    free(pack);
    free(rb);
    free(meta);
    free(sig);
    ap_seckey_free(k);
    ap_seckey_free(k2);
    free(out);
    free(ps);
}

static void rebase_and_create(void)
{
    char *ps = pk_packset_with_delta("rb");
    char *out = pk_path("rb-new");
    CHECK_OK(ap_packset_rebase(ps, out, 0, 1, NULL, NULL, NULL, &err), &err);
    CHECK(state_is(out, 3, 0, PK_ROWS + 3) && verifies(out));
    /* Rows carried over byte for byte; deleted ids gone. */
    ap_view *a = NULL, *b = NULL;
    CHECK_OK(ap_view_open(ps, &a, &err), &err);
    CHECK_OK(ap_view_open(out, &b, &err), &err);
    if (a && b) {
        const uint64_t ids[3] = {1, PK_ROWS + 1, PK_ROWS + 5};
        for (int i = 0; i < 3; i++) {
            char *ra = NULL, *rbow = NULL;
            size_t la = 0, lb = 0;
            uint32_t layer;
            CHECK_OK(ap_view_get_row(a, ids[i], &ra, &la, &layer, &err), &err);
            CHECK_OK(ap_view_get_row(b, ids[i], &rbow, &lb, &layer, &err), &err);
            CHECK(ra && rbow && la == lb && !memcmp(ra, rbow, la) && layer == 0);
            free(ra);
            free(rbow);
        }
        char *row = NULL;
        size_t rl;
        uint32_t layer;
        CHECK_ERR(ap_view_get_row(b, 2, &row, &rl, &layer, &err), AP_ERR_NOTFOUND, &err, "");
    }
    ap_view_close(a);
    ap_view_close(b);
    /* The same again: an identical output is kept. */
    CHECK_OK(ap_packset_rebase(ps, out, 0, 1, NULL, NULL, NULL, &err), &err);
    /* A different packset there: only with force. */
    CHECK_ERR(ap_packset_rebase(ps, out, 0, 2, NULL, NULL, NULL, &err), AP_ERR_EXISTS, &err,
              "/rb-new exists and differs from the packset this command writes; refusing to "
              "replace it (use --force)");
    CHECK(state_is(out, 3, 0, PK_ROWS + 3));
    ap_change_opts force = {.force = true};
    CHECK_OK(ap_packset_rebase(ps, out, 0, 2, &force, NULL, NULL, &err), &err);
    CHECK(verifies(out));
    /* Not a packset there; a file there; inside the packset itself. */
    char *odd = pk_path("rb-odd"), *oddf = pk_join(odd, "keep");
    CHECK(mkdir(odd, 0755) == 0);
    fx_put(oddf, "k", 1);
    CHECK_ERR(ap_packset_rebase(ps, odd, 0, 1, NULL, NULL, NULL, &err), AP_ERR_EXISTS, &err,
              "/rb-odd exists and is not a packset; refusing to overwrite it (use --force)");
    CHECK(access(oddf, F_OK) == 0);
    CHECK_ERR(ap_packset_rebase(ps, oddf, 0, 1, NULL, NULL, NULL, &err), AP_ERR_EXISTS, &err,
              "/rb-odd/keep exists and is not a directory; refusing to replace it");
    char *inside = pk_join(ps, "deltas");
    CHECK_ERR(ap_packset_rebase(ps, inside, 0, 1, NULL, NULL, NULL, &err), AP_ERR_EXISTS, &err,
              "/rb/deltas exists and is not a packset; refusing to overwrite it (use --force)");
    CHECK(state_is(ps, 2, 1, PK_ROWS + 3) && verifies(ps));

    /* create: a packset from a base and deltas (copied). */
    char *base = pk_join(ps, "base"), *d1 = pk_join(ps, "deltas/0001.delta");
    char *made = pk_path("made");
    const char *ds[1] = {d1};
    CHECK_OK(ap_packset_create(base, ds, 1, made, NULL, &err), &err);
    CHECK(state_is(made, 1, 1, PK_ROWS + 3) && verifies(made));
    CHECK_OK(ap_packset_create(base, ds, 1, made, NULL, &err), &err); /* identical: kept */
    CHECK_ERR(ap_packset_create(base, NULL, 0, made, NULL, &err), AP_ERR_EXISTS, &err,
              "/made exists and differs from the packset this command writes");
    CHECK(state_is(made, 1, 1, PK_ROWS + 3));

    free(made);
    free(d1);
    free(base);
    free(inside);
    free(oddf);
    free(odd);
    free(out);
    free(ps);
}

static void id_lists(void)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    const char good[] = "1\n  2 \r\n\n{\"id\":3}\n9007199254740991";
    CHECK_OK(ap_parse_id_list(good, sizeof good - 1, "del.txt", &ids, &n, &err), &err);
    CHECK(n == 4 && ids[0] == 1 && ids[1] == 2 && ids[2] == 3 && ids[3] == 9007199254740991ull);
    free(ids);
    CHECK_OK(ap_parse_id_list("", 0, "empty", &ids, &n, &err), &err);
    CHECK(n == 0);
    free(ids);
    const char *bad[][2] = {
        {"1\nx\n", "del.txt:2: \"x\" is not an id (an integer in [0, 2^53) or {\"id\": N})"},
        {"-1", "del.txt:1: \"-1\" is not an id"},
        {"9007199254740992", "del.txt:1: \"9007199254740992\" is not an id"},
        {"{\"a\":1}", "del.txt:1: expected {\"id\": N}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ids = (uint64_t *)1;
        CHECK(ap_parse_id_list(bad[i][0], strlen(bad[i][0]), "del.txt", &ids, &n, &err) != AP_OK);
        CHECK(strstr(err.msg, bad[i][1]) != NULL);
        if (!strstr(err.msg, bad[i][1]))
            fprintf(stderr, "  \"%s\": %s (wanted %s)\n", bad[i][0], err.msg, bad[i][1]);
        CHECK(ids == NULL && n == 0);
    }
}

int main(void)
{
    pk_root = fx_scratch("packset-ops");
    build_base();
    deltas();
    change_checks();
    rebase_and_create();
    id_lists();
    return check_done();
}
