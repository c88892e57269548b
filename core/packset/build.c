/* Building packset layers: build-base (a new packset whose base is a fresh build) and
 * build-delta (a delta against a base). See include/annpack/packset.h and
 * docs/PACKSET.md. Appending a delta to a packset is update.c's. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annpack/packset.h"
#include "delta.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "ops.h"
#include "pack_write.h"
#include "root_write.h"
#include "tombstones.h"
#include "view.h"

/* An existing packset directory may be replaced without force only when it is exactly an
 * earlier build-base output: unsigned, version 1, no deltas, nothing but the root manifest
 * and a base holding only build files. */
static ap_status check_base_output(const char *dir, bool force, bool *replace, ap_err *err)
{
    *replace = false;
    struct stat sb;
    if (lstat(dir, &sb) != 0) {
        if (errno == ENOENT) return AP_OK;
        return ap_err_errno(err, AP_ERR_IO, errno, "%s", dir);
    }
    if (!S_ISDIR(sb.st_mode))
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not a directory; refusing to replace it", dir);
    *replace = true;
    if (force || ap_dir_entries(dir) == 0) return AP_OK;
    char *ps = NULL;
    if (ap_enclosing_packset(dir, &ps)) {
        ap_status st = ap_err_set(
            err, AP_ERR_EXISTS, "%s is inside the packset %s; refusing to replace it (use --force)",
            dir, ps);
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
    ap_status st = AP_OK;
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

ap_status ap_delta_build(const ap_delta_opts *o, ap_err *err)
{
    if (!o->base_dir || !o->out_dir)
        return ap_err_set(err, AP_ERR_ARG, "build-delta needs a base and --out");
    if (!o->add_csv && !o->n_delete)
        return ap_err_set(err, AP_ERR_ARG, "build-delta needs --add and/or --delete-ids");
    struct stat sb;
    bool exists = lstat(o->out_dir, &sb) == 0;
    if (exists && !S_ISDIR(sb.st_mode))
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not a directory; a delta is written to a new directory",
                          o->out_dir);
    bool empty = exists && ap_dir_entries(o->out_dir) == 0;
    if (exists && !empty && !o->force) {
        /* Only a delta can equal the one built: refuse anything else before building. */
        char *dmp = ap_path_join(o->out_dir, AP_DELTA_MANIFEST);
        bool delta = dmp && lstat(dmp, &sb) == 0;
        free(dmp);
        if (!delta)
            return ap_err_set(err, AP_ERR_EXISTS,
                              "%s exists and is not a delta; refusing to replace it (use --force)",
                              o->out_dir);
    }
    ap_pack *base = NULL;
    char *tmp = NULL, *emb = NULL, *bann = NULL, *bman = NULL, *dm = NULL, *text = NULL;
    uint64_t *del = NULL;
    ap_meta *meta = NULL;
    cJSON *j = NULL;
    ap_status st = ap_pack_open(o->base_dir, &base, err);
    if (st) return st;
    emb = ap_embedder_describe(ap_pack_embedder(base));
    bann = ap_path_join(o->base_dir, AP_ANNPACK);
    bman = ap_path_join(o->base_dir, AP_MANIFEST);
    del = malloc((o->n_delete ? o->n_delete : 1) * sizeof *del);
    if (!emb || !bann || !bman || !del) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (o->n_delete) memcpy(del, o->delete_ids, o->n_delete * sizeof *del);
    qsort(del, o->n_delete, sizeof *del, cmp_u64);
    size_t nd = 0;
    for (size_t i = 0; i < o->n_delete; i++)
        if (nd == 0 || del[nd - 1] != del[i]) del[nd++] = del[i];
    if ((st = ap_mkdtemp_beside(o->out_dir, &tmp, err))) goto out;
    if (o->add_csv) {
        ap_build_opts bo = {.input_csv = o->add_csv,
                            .text_col = o->text_col,
                            .id_col = o->id_col,
                            .output_dir = tmp,
                            .lists = o->lists,
                            .seed = o->seed,
                            .meta_codec = o->meta_codec,
                            .force = true,
                            .embedder_json = emb,
                            .progress = o->progress,
                            .progress_ud = o->progress_ud};
        /* ap_pack_build renames its own temporary directory onto tmp (which is empty). */
        if ((st = ap_pack_build(&bo, NULL, err))) goto out;
    } else {
        ap_embedder *e = NULL;
        ap_meta_writer *w = NULL;
        st = ap_embedder_from_json(emb, strlen(emb), "embedder", &e, err);
        if (!st) st = ap_meta_writer_open(tmp, o->meta_codec, 0, &w, err);
        if (!st) st = ap_meta_writer_finish(w, err);
        ap_meta_writer_free(w);
        cJSON *bb = cJSON_CreateObject();
        cJSON_AddStringToObject(bb, "input", "none (delete-only delta)");
        ap_pack_spec sp = {
            .emb = e, .n = 0, .lists = 1, .seed = o->seed, .codec = o->meta_codec, .build = bb};
        if (!st) st = ap_pack_finish(tmp, &sp, NULL, err);
        cJSON_Delete(bb);
        ap_embedder_free(e);
        if (st) goto out;
    }
    /* An id both added and deleted in one delta is ambiguous: refuse it. */
    if ((st = ap_meta_open(tmp, &meta, err))) goto out;
    for (size_t i = 0; i < nd; i++) {
        char *row = NULL;
        size_t rl;
        if (ap_meta_get(meta, del[i], &row, &rl, NULL) == AP_OK) {
            free(row);
            st = ap_err_set(err, AP_ERR_ARG,
                            "id %llu is both added (in %s) and deleted in one delta",
                            (unsigned long long)del[i], o->add_csv);
            goto out;
        }
    }
    uint64_t adds = ap_meta_count(meta);
    if ((st = ap_tombstones_write(tmp, del, nd, err))) goto out;
    char bhex[AP_SHA256_HEX], mhex[AP_SHA256_HEX];
    uint64_t sz;
    if ((st = ap_sha256_file(bann, bhex, &sz, err)) || (st = ap_sha256_file(bman, mhex, &sz, err)))
        goto out;
    j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "schema_version", 1);
    cJSON_AddStringToObject(j, "kind", "annpack-delta");
    cJSON_AddStringToObject(j, "base_sha256_annpack", bhex);
    cJSON_AddStringToObject(j, "base_sha256_manifest", mhex);
    cJSON *e = NULL;
    if ((st = ap_json_parse_strict(emb, strlen(emb), "embedder", &e, err))) goto out;
    cJSON_AddItemToObject(j, "embedder", e);
    ap_json_add_u64(j, "adds", adds);
    ap_json_add_u64(j, "tombstones", nd);
    cJSON *files = cJSON_AddObjectToObject(j, "files");
    if ((st = ap_manifest_add_file(files, tmp, AP_MANIFEST, err)) ||
        (st = ap_manifest_add_file(files, tmp, AP_TOMBSTONES, err)))
        goto out;
    size_t len;
    text = ap_json_render(j, &len);
    dm = ap_path_join(tmp, AP_DELTA_MANIFEST);
    if (!text || !dm) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = ap_write_file(dm, text, len, err))) goto out;
    if (exists && !empty && ap_tree_equal(tmp, o->out_dir)) {
        /* Exactly what this command builds (an interrupted run left it): keep it. */
        ap_rmtree(tmp);
    } else if (exists && !empty && !o->force) {
        st = differs(o->out_dir, err);
        goto out;
    } else if ((st = ap_publish_dir(tmp, o->out_dir, exists, err))) {
        goto out;
    }
    free(tmp);
    tmp = NULL;
out:
    ap_meta_close(meta);
    cJSON_Delete(j);
    if (tmp) ap_rmtree(tmp);
    free(tmp);
    free(emb);
    free(bann);
    free(bman);
    free(dm);
    free(text);
    free(del);
    ap_pack_close(base);
    return st;
}
