/* What every change of a packset shares (ops.h): the lock-verify-load of ap_change_begin,
 * the next root manifest, its atomic commit, and the checks of a new packset's output
 * directory. The changes themselves are build.c (build-base, build-delta), update.c
 * (append, promote, revert, create) and rebase.c; see docs/PACKSET.md.
 *
 * Crash safety: new data is written under new names (temporary directories renamed into
 * place, or fresh delta directories), fsynced, and the root manifest is replaced last by
 * an atomic rename. Until that rename the old root manifest, which names only old files,
 * is what every reader sees; after it, the new one, whose files are all durable. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annpack/caps.h"
#include "annpack/log.h"
#include "annpack/packset.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "ops.h"
#include "output.h"
#include "pack_write.h"
#include "view.h"

/* ---- changing a packset ------------------------------------------------------------ */

ap_status ap_change_begin(const char *dir, const ap_change_opts *co, const char *what,
                          bool reads_data, ap_change *c, ap_err *err)
{
    static const ap_change_opts none = {0};
    if (!co) co = &none;
    memset(c, 0, sizeof *c);
    c->dir = dir;
    c->lock_fd = -1;
    ap_status st = ap_dir_lock(dir, &c->lock_fd, err);
    if (st) return st;
    char *sig = ap_path_join(dir, AP_SIGNATURE);
    struct stat sb;
    if (!sig) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    c->was_signed = lstat(sig, &sb) == 0;
    if (c->was_signed && !co->npubkeys) {
        st = ap_err_set(err, AP_ERR_VERIFY,
                        "%s is signed (%s): pass its public key (--pubkey PUB) so the signature "
                        "is checked before it is read or changed; refusing to %s it",
                        dir, sig, what);
        goto fail;
    }
    /* Integrity, not freshness: an expired packset may be changed (and re-signed). */
    if (reads_data) {
        ap_verify_opts vo = {
            .pubkeys = co->pubkeys, .npubkeys = co->npubkeys, .allow_expired = true};
        st = ap_verify_dir(dir, &vo, NULL, err);
    } else {
        ap_view_open_opts vo = {.keys = co->pubkeys, .nkeys = co->npubkeys, .allow_expired = true};
        st = ap_view_check_pins(dir, &vo, &c->m, err);
    }
    if (st) {
        char tmp[AP_ERR_MSG_MAX];
        snprintf(tmp, sizeof tmp, "%s", err ? err->msg : "");
        st = ap_err_set(err, st, "refusing to %s %s: it does not verify: %s", what, dir, tmp);
        goto fail;
    }
    if (reads_data && (st = ap_root_manifest_load(dir, &c->m, err))) goto fail;
    if (c->m.schema != AP_PACKSET_SCHEMA) {
        st = ap_err_set(err, AP_ERR_ARG, "%s is a pack, not a packset (schema_version 3)", dir);
        goto fail;
    }
    if (!(c->base_dir = ap_path_join(dir, c->m.base_path))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    free(sig);
    return AP_OK;
fail:
    free(sig);
    ap_change_end(c);
    return st;
}

void ap_change_end(ap_change *c)
{
    ap_root_manifest_free(&c->m);
    free(c->base_dir);
    c->base_dir = NULL;
    ap_dir_unlock(c->lock_fd);
    c->lock_fd = -1;
}

cJSON *ap_change_next_root(const ap_change *c, size_t keep, ap_err *err)
{
    if (c->m.version >= AP_JSON_MAX_SAFE_INT) {
        ap_err_set(err, AP_ERR_LIMIT, "%s: version %llu cannot increase further", c->dir,
                   (unsigned long long)c->m.version);
        return NULL;
    }
    cJSON *r = cJSON_Duplicate(c->m.root, 1);
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)c->m.version + 1);
    cJSON *nv = cJSON_CreateRaw(v);
    if (!r || !nv || !cJSON_ReplaceItemInObjectCaseSensitive(r, "version", nv)) {
        if (!r || !cJSON_GetObjectItemCaseSensitive(r, "version")) cJSON_Delete(nv);
        cJSON_Delete(r);
        ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "deltas");
    if (!d) d = cJSON_AddArrayToObject(r, "deltas");
    if (!cJSON_IsArray(d)) {
        cJSON_Delete(r);
        ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    while (cJSON_GetArraySize(d) > (int)keep)
        cJSON_DeleteItemFromArray(d, (int)keep);
    return r;
}

ap_status ap_change_commit(ap_change *c, const cJSON *root, const char *step, ap_err *err)
{
    size_t len;
    char *text = ap_json_render(root, &len), *path = ap_path_join(c->dir, AP_MANIFEST);
    char point[64];
    ap_status st = text && path ? AP_OK : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) {
        snprintf(point, sizeof point, "%s:before-manifest", step);
        ap_crash_point(point);
        st = ap_write_file_atomic(path, text, len, 0644, err);
    }
    if (!st) {
        snprintf(point, sizeof point, "%s:after-manifest", step);
        ap_crash_point(point);
        /* The old signature signs the old manifest bytes only: never leave it beside the new
         * ones (the caller says so; the packset must be signed again). */
        ap_err e2 = {0};
        if (ap_unlink_in(c->dir, AP_SIGNATURE, NULL, &e2))
            st = ap_err_set(err, AP_ERR_IO,
                            "%s changed to version %llu, but its old signature could not be "
                            "removed (remove %s/%s): %s",
                            c->dir, (unsigned long long)c->m.version + 1, c->dir, AP_SIGNATURE,
                            e2.msg);
    }
    free(text);
    free(path);
    return st;
}

bool ap_paths_overlap(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;
    if (strncmp(a, b, n) != 0) return false;
    return la == lb || (la < lb ? b[la] == '/' : a[lb] == '/');
}

ap_status ap_check_packset_out(const char *out, bool force, bool *exists, ap_err *err)
{
    bool settled;
    ap_status st = ap_output_dir_check(out, force, exists, &settled, err);
    if (st || settled) return st;
    struct stat sb;
    char *sig = ap_path_join(out, AP_SIGNATURE);
    bool is_signed = sig && lstat(sig, &sb) == 0;
    free(sig);
    if (is_signed)
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is signed; refusing to replace it (use --force)", out);
    ap_root_manifest m;
    st = ap_root_manifest_load(out, &m, NULL);
    bool packset = !st && m.schema == AP_PACKSET_SCHEMA;
    ap_root_manifest_free(&m);
    if (!packset)
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not a packset; refusing to overwrite it (use --force)",
                          out);
    return AP_OK; /* it may be this very result (an interrupted run): compared at the end */
}

ap_status ap_publish_packset_out(const char *tmp, const char *out, bool exists, bool force,
                                 ap_err *err)
{
    bool empty = exists && ap_dir_entries(out) == 0;
    if (exists && !empty && ap_tree_equal(tmp, out)) {
        ap_rmtree(tmp); /* exactly this result already (an interrupted run wrote it) */
        return AP_OK;
    }
    if (exists && !empty && !force)
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and differs from the packset this command writes; refusing "
                          "to replace it (use --force)",
                          out);
    return ap_publish_dir(tmp, out, exists, err);
}
