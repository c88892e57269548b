/* Building packset layers: build-base (a new packset whose base is a fresh build) and
 * build-delta (a delta against a base). See include/annpack/packset.h and
 * docs/PACKSET.md. Appending a delta to a packset is update.c's. */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annpack/packset.h"
#include "delta.h"
#include "filter_build.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "ops.h"
#include "output.h"
#include "pack_write.h"
#include "root_write.h"
#include "tombstones.h"
#include "view.h"

/* An existing packset directory may be replaced without force only when it is exactly an
 * earlier build-base output: unsigned, version 1, no deltas, nothing but the root manifest
 * and a base holding only build files. */
static ap_status check_base_output(const char *dir, bool force, bool *replace, ap_err *err)
{
    bool settled;
    ap_status st = ap_output_dir_check(dir, force, replace, &settled, err);
    if (st || settled) return st;
    struct stat sb;
    char *ps = NULL;
    if (ap_enclosing_packset(dir, &ps)) {
        st = ap_err_set(err, AP_ERR_EXISTS,
                        "%s is inside the packset %s; refusing to replace it (use --force)", dir,
                        ps);
        free(ps);
        return st;
    }
    ap_root_manifest m;
    if (ap_root_manifest_load(dir, &m, NULL) || m.schema != AP_PACKSET_SCHEMA) {
        ap_root_manifest_free(&m);
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not a packset; refusing to overwrite it (use --force)",
                          dir);
    }
    char *sig = ap_path_join(dir, AP_SIGNATURE), *base = ap_path_join(dir, "base");
    int is_signed = sig && lstat(sig, &sb) == 0;
    if (m.version != 1 || m.ndeltas || is_signed || strcmp(m.base_path, "base") != 0 ||
        ap_dir_entries(dir) != 2 || !base || ap_only_build_files(base, NULL))
        st = ap_err_set(err, AP_ERR_EXISTS,
                        "%s is a packset (version %llu, %zu deltas%s) and not an earlier "
                        "build-base output; build-base would replace it with a new version 1: "
                        "refusing (use --force to replace it; build-delta, revert and rebase "
                        "change a packset)",
                        dir, (unsigned long long)m.version, m.ndeltas,
                        is_signed ? ", signed" : ", other files");
    free(sig);
    free(base);
    ap_root_manifest_free(&m);
    return st;
}

ap_status ap_packset_build_base(const ap_build_opts *o, ap_build_report *rep, ap_err *err)
{
    if (!o->output_dir) return ap_err_set(err, AP_ERR_ARG, "build-base needs --packset DIR");
    bool replace = false;
    ap_status st = check_base_output(o->output_dir, o->force, &replace, err);
    if (st) return st;
    char *tmp = NULL, *base = NULL;
    if ((st = ap_mkdtemp_beside(o->output_dir, &tmp, err))) return st;
    if (!(base = ap_path_join(tmp, "base"))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    ap_build_opts bo = *o;
    bo.output_dir = base;
    bo.force = false;
    if ((st = ap_pack_build(&bo, rep, err))) goto out;
    if ((st = ap_root_write(tmp, 1, "base", NULL, 0, NULL, err))) goto out;
    st = ap_publish_dir(tmp, o->output_dir, replace, err);
    if (!st) {
        free(tmp);
        tmp = NULL;
    }
out:
    if (tmp) ap_rmtree(tmp);
    free(tmp);
    free(base);
    return st;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The refusal for an existing out_dir that is not the delta just built. */
static ap_status differs(const char *out, ap_err *err)
{
    char *ps = NULL;
    ap_status st;
    if (ap_enclosing_packset(out, &ps))
        st = ap_err_set(err, AP_ERR_EXISTS,
                        "%s exists, is not in the root manifest of %s and is not the delta this "
                        "command builds: a leftover of an interrupted build-delta or "
                        "promote-delta, or a delta staged there; remove it, or pass --force to "
                        "replace it",
                        out, ps);
    else
        st = ap_err_set(err, AP_ERR_EXISTS,
                        "%s exists and is not the delta this command builds (a leftover of an "
                        "interrupted run, or another delta); remove it, or pass --force to "
                        "replace it",
                        out);
    free(ps);
    return st;
}

/* The options, and the output directory: missing, empty, an earlier delta (compared with
 * the result at the end), or anything with force. */
static ap_status check_delta_output(const ap_delta_opts *o, bool *exists, bool *empty, ap_err *err)
{
    if (!o->base_dir || !o->out_dir)
        return ap_err_set(err, AP_ERR_ARG, "build-delta needs a base and --out");
    if (!o->add_csv && !o->n_delete)
        return ap_err_set(err, AP_ERR_ARG, "build-delta needs --add and/or --delete-ids");
    struct stat sb;
    *exists = lstat(o->out_dir, &sb) == 0;
    if (*exists && !S_ISDIR(sb.st_mode))
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not a directory; a delta is written to a new directory",
                          o->out_dir);
    *empty = *exists && ap_dir_entries(o->out_dir) == 0;
    if (*exists && !*empty && !o->force) {
        /* Only a delta can equal the one built: refuse anything else before building. */
        char *dmp = ap_path_join(o->out_dir, AP_DELTA_MANIFEST);
        bool delta = dmp && lstat(dmp, &sb) == 0;
        free(dmp);
        if (!delta)
            return ap_err_set(err, AP_ERR_EXISTS,
                              "%s exists and is not a delta; refusing to replace it (use --force)",
                              o->out_dir);
    }
    return AP_OK;
}

/* The ids to delete, sorted, each once (malloc'd). */
static ap_status sorted_unique(const uint64_t *ids, size_t n, uint64_t **out, size_t *nout,
                               ap_err *err)
{
    uint64_t *del = malloc((n ? n : 1) * sizeof *del);
    if (!del) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (n) memcpy(del, ids, n * sizeof *del);
    qsort(del, n, sizeof *del, cmp_u64);
    size_t nd = 0;
    for (size_t i = 0; i < n; i++)
        if (nd == 0 || del[nd - 1] != del[i]) del[nd++] = del[i];
    *out = del;
    *nout = nd;
    return AP_OK;
}

/* The delta's pack in the empty directory tmp, embedded with the base's embedder (with its
 * corpus table, if any: a delta never learns its own): the --add rows, or no vectors and no
 * rows for a delete-only delta. */
static ap_status write_delta_pack(const ap_delta_opts *o, const ap_pack *base,
                                  const char *filter_cols, const char *tmp, ap_err *err)
{
    const ap_embedder *e = ap_pack_embedder(base);
    if (o->add_csv) {
        ap_build_opts bo = {.input_csv = o->add_csv,
                            .text_col = o->text_col,
                            .id_col = o->id_col,
                            .output_dir = tmp,
                            .lists = o->lists,
                            .seed = o->seed,
                            .meta_codec = o->meta_codec,
                            .force = true,
                            /* a delta is searched with the base's lists and probe */
                            .target_recall = -1,
                            /* the base's filter columns, so a filter covers its rows too */
                            .filter_cols = filter_cols,
                            .progress = o->progress,
                            .progress_ud = o->progress_ud};
        /* ap_pack_build renames its own temporary directory onto tmp (which is empty). */
        /* delta.lists: its vectors grouped under the base's lists, so a packset's open
         * needs no assignment (delta_group.h) */
        return ap_pack_build_with(&bo, e, ap_pack_annp(base), NULL, err);
    }
    ap_meta_writer *w = NULL;
    ap_status st = ap_meta_writer_open(tmp, o->meta_codec, 0, &w, err);
    if (!st) st = ap_meta_writer_finish(w, err);
    ap_meta_writer_free(w);
    cJSON *bb = cJSON_CreateObject();
    cJSON_AddStringToObject(bb, "input", "none (delete-only delta)");
    ap_pack_spec sp = {.emb = e,
                       .n = 0,
                       .lists = 1,
                       .seed = o->seed,
                       .codec = o->meta_codec,
                       .build = bb,
                       .under = ap_pack_annp(base)};
    if (!st) st = ap_pack_finish(tmp, &sp, NULL, err);
    cJSON_Delete(bb);
    return st;
}

/* An id both added and deleted in one delta is ambiguous: refuse it. *adds: the rows. */
static ap_status check_no_readd(const ap_delta_opts *o, const char *tmp, const uint64_t *del,
                                size_t nd, uint64_t *adds, ap_err *err)
{
    ap_meta *meta = NULL;
    ap_status st = ap_meta_open(tmp, &meta, err);
    if (st) return st;
    uint64_t id;
    if (ap_delta_readds(meta, del, nd, &id))
        st = ap_err_set(err, AP_ERR_ARG, "id %llu is both added (in %s) and deleted in one delta",
                        (unsigned long long)id, o->add_csv);
    *adds = ap_meta_count(meta);
    ap_meta_close(meta);
    return st;
}

/* tmp/delta.manifest.json: what the delta was built against (the base's pack.annpack and
 * manifest hashes), its embedder, counts, and the hashes of its manifest and tombstones. */
static ap_status write_delta_manifest(const char *base_dir, const char *tmp, const char *emb,
                                      uint64_t adds, size_t ntomb, cJSON *cal, ap_err *err)
{
    char bhex[AP_SHA256_HEX], mhex[AP_SHA256_HEX], *text = NULL;
    char *bann = ap_path_join(base_dir, AP_ANNPACK), *bman = ap_path_join(base_dir, AP_MANIFEST);
    char *dm = ap_path_join(tmp, AP_DELTA_MANIFEST);
    cJSON *j = cJSON_CreateObject(), *e = NULL;
    uint64_t sz;
    assert(emb);
    ap_status st =
        !bann || !bman || !dm || !j ? ap_err_set(err, AP_ERR_NOMEM, "out of memory") : AP_OK;
    if (!st && !(st = ap_sha256_file(bann, bhex, &sz, err)) &&
        !(st = ap_sha256_file(bman, mhex, &sz, err)) &&
        !(st = ap_json_parse_strict(emb, strlen(emb), "embedder", &e, err))) {
        cJSON_AddNumberToObject(j, "schema_version", 1);
        cJSON_AddStringToObject(j, "kind", "annpack-delta");
        cJSON_AddStringToObject(j, "base_sha256_annpack", bhex);
        cJSON_AddStringToObject(j, "base_sha256_manifest", mhex);
        cJSON_AddItemToObject(j, "embedder", e);
        ap_json_add_u64(j, "adds", adds);
        ap_json_add_u64(j, "tombstones", ntomb);
        if (cal) cJSON_AddItemToObject(j, "calibration", cal); /* j owns it now */
        cal = NULL;
        cJSON *files = cJSON_AddObjectToObject(j, "files");
        if (!(st = ap_manifest_add_file(files, tmp, AP_MANIFEST, err)))
            st = ap_manifest_add_file(files, tmp, AP_TOMBSTONES, err);
    }
    size_t len;
    if (!st && !(text = ap_json_render(j, &len)))
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) st = ap_write_file(dm, text, len, err);
    cJSON_Delete(j);
    cJSON_Delete(cal);
    free(text);
    free(bann);
    free(bman);
    free(dm);
    return st;
}

/* Puts the delta built in tmp at o->out_dir (see check_delta_output). */
static ap_status publish_delta(const ap_delta_opts *o, const char *tmp, bool exists, bool empty,
                               ap_err *err)
{
    if (exists && !empty && ap_tree_equal(tmp, o->out_dir)) {
        /* Exactly what this command builds (an interrupted run left it): keep it. */
        ap_rmtree(tmp);
        return AP_OK;
    }
    if (exists && !empty && !o->force) return differs(o->out_dir, err);
    return ap_publish_dir(tmp, o->out_dir, exists, err);
}

ap_status ap_delta_build(const ap_delta_opts *o, ap_err *err)
{
    bool exists = false, empty = false;
    ap_status st = check_delta_output(o, &exists, &empty, err);
    if (st) return st;
    ap_pack *base = NULL;
    char *tmp = NULL, *emb = NULL;
    uint64_t *del = NULL, adds = 0;
    size_t nd = 0;
    if ((st = ap_pack_open(o->base_dir, &base, err))) return st;
    if (!(emb = ap_embedder_describe(ap_pack_embedder(base))))
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) st = sorted_unique(o->delete_ids, o->n_delete, &del, &nd, err);
    if (!st) st = ap_mkdtemp_beside(o->out_dir, &tmp, err);
    char *fcols = ap_filter_cols_join(ap_pack_filter(base));
    if (!st) st = write_delta_pack(o, base, fcols, tmp, err);
    free(fcols);
    if (!st) st = check_no_readd(o, tmp, del, nd, &adds, err);
    if (!st) st = ap_tombstones_write(tmp, del, nd, err);
    cJSON *cal = NULL;
    if (!st) st = ap_delta_calibration(base, tmp, &cal, err);
    if (!st) st = write_delta_manifest(o->base_dir, tmp, emb, adds, nd, cal, err); /* owns cal */
    if (!st) st = publish_delta(o, tmp, exists, empty, err);
    if (!st) {
        free(tmp);
        tmp = NULL;
    }
    if (tmp) ap_rmtree(tmp);
    free(tmp);
    free(emb);
    free(del);
    ap_pack_close(base);
    return st;
}
