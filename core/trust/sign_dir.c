/* Signing a pack or packset directory: see include/annpack/trust.h (ap_dir_sign_ex). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "annpack/caps.h"
#include "annpack/trust.h"
#include "fsops.h"
#include "json.h"
#include "ops.h"
#include "output.h"
#include "view.h"

/* An existing signature file may be replaced by a new signature; anything else (a key, a
 * manifest, a symlink...) only with force. */
static ap_status check_sig_target(const char *path, bool force, ap_err *err)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? AP_OK : ap_err_errno(err, AP_ERR_IO, errno, "%s", path);
    if (force || (S_ISREG(sb.st_mode) && sb.st_size == AP_SIG_BYTES)) return AP_OK;
    return ap_err_set(err, AP_ERR_EXISTS,
                      "%s exists and is not a signature (a %d-byte file); refusing to overwrite "
                      "it (use --force)",
                      path, AP_SIG_BYTES);
}

/* The manifest of dir with "expires" set to rfc: for a packset, its next version. */
static ap_status with_expires(const char *dir, const char *rfc, char **text, size_t *len,
                              ap_err *err)
{
    ap_root_manifest m;
    ap_status st = ap_root_manifest_load(dir, &m, err);
    if (st) return st;
    cJSON *r = NULL;
    if (m.schema == AP_PACKSET_SCHEMA) {
        ap_change c = {.dir = dir, .lock_fd = -1, .m = m};
        r = ap_change_next_root(&c, m.ndeltas, err);
        if (!r) st = err ? err->status : AP_ERR_NOMEM;
    } else if (!(r = cJSON_Duplicate(m.root, 1))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    cJSON *e = st ? NULL : cJSON_CreateString(rfc);
    if (!st && !e) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) {
        if (cJSON_GetObjectItemCaseSensitive(r, "expires"))
            cJSON_ReplaceItemInObjectCaseSensitive(r, "expires", e);
        else
            cJSON_AddItemToObject(r, "expires", e);
        if (!(*text = ap_json_render(r, len))) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(r);
    ap_root_manifest_free(&m);
    return st;
}

ap_status ap_dir_sign(const char *dir, const ap_seckey *key, const char *sig_path,
                      char keyid[AP_KEYID_HEX], ap_err *err)
{
    ap_sign_opts o = {.sig_path = sig_path};
    return ap_dir_sign_ex(dir, key, &o, keyid, NULL, err);
}

/* Refuses what may not be signed as asked: an expiry on a layer of a packset (its manifest
 * bytes are pinned by the root's), or a directory that does not verify. */
static ap_status check_signable(const char *dir, const ap_sign_opts *o, ap_err *err)
{
    char *ps = NULL, *dmf = NULL;
    struct stat sb;
    ap_status st = AP_OK;
    if (o->expires && (ap_enclosing_packset(dir, &ps) ||
                       ((dmf = ap_path_join(dir, AP_DELTA_MANIFEST)) && lstat(dmf, &sb) == 0)))
        st = ap_err_set(err, AP_ERR_ARG,
                        "%s is a layer of the packset %s: its manifest bytes are pinned by the "
                        "packset's root manifest; set the expiry when signing the packset",
                        dir, ps ? ps : "around it");
    free(ps);
    free(dmf);
    if (st) return st;
    /* A new expiry may replace a passed one: check integrity, not freshness, then. */
    ap_verify_opts vo = {.allow_expired = o->expires != NULL};
    if ((st = ap_verify_dir(dir, &vo, NULL, err))) {
        char tmp[AP_ERR_MSG_MAX];
        snprintf(tmp, sizeof tmp, "%s", err ? err->msg : "");
        st = ap_err_set(err, st, "refusing to sign %s: it does not verify: %s", dir, tmp);
    }
    return st;
}

/* Writes the new manifest (with its expiry) and its signature: both are ready before either
 * is renamed, so the old signature sits beside the new manifest only between two renames
 * (crash point "sign:after-manifest"). A signature elsewhere (--out) leaves the default one
 * (own) signing old bytes: it is removed. */
/* Whether sig_path's directory is not dir (a signature written elsewhere with --out). */
static int sig_dir_elsewhere(const char *dir, const char *sig_path)
{
    char *sd = ap_dirname(sig_path);
    struct stat a, b;
    int differs = sd && stat(sd, &a) == 0 && stat(dir, &b) == 0 &&
                  (a.st_dev != b.st_dev || a.st_ino != b.st_ino);
    free(sd);
    return differs;
}

static ap_status commit_with_expiry(const char *dir, const char *mpath, const char *own,
                                    const char *sig_path, const char *manifest, size_t len,
                                    const uint8_t sig[AP_SIG_BYTES], ap_err *err)
{
    char *sigtmp = NULL, *mtmp = NULL;
    ap_status st = ap_stage_file(sig_path, sig, AP_SIG_BYTES, 0644, &sigtmp, err);
    if (!st) st = ap_stage_file(mpath, manifest, len, 0644, &mtmp, err);
    /* Both files are written and fsynced; the two renames follow each other with nothing
     * in between, so the old signature sits beside the new manifest only for that instant
     * (a crash there leaves a manifest that does not verify with the key: `sign` again).
     * One fsync of the directory then makes both durable. */
    if (!st && rename(mtmp, mpath) != 0)
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s: rename", mpath);
    if (!st) ap_crash_point("sign:after-manifest");
    if (!st && rename(sigtmp, sig_path) != 0)
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s: rename", sig_path);
    if (st) {
        if (mtmp) unlink(mtmp);
        if (sigtmp) unlink(sigtmp);
    }
    free(mtmp);
    free(sigtmp);
    if (!st) st = ap_fsync_dir(dir, err);
    if (!st && sig_dir_elsewhere(dir, sig_path)) {
        char *sd = ap_dirname(sig_path);
        st = sd ? ap_fsync_dir(sd, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        free(sd);
    }
    if (st) return st;
    char *old = NULL;
    size_t olen = 0;
    if (ap_read_file(own, 4096, &old, &olen, NULL) == AP_OK &&
        (olen != AP_SIG_BYTES || memcmp(old, sig, AP_SIG_BYTES) != 0))
        st = ap_unlink_in(dir, AP_SIGNATURE, NULL, err);
    free(old);
    return st;
}

ap_status ap_dir_sign_ex(const char *dir, const ap_seckey *key, const ap_sign_opts *o,
                         char keyid[AP_KEYID_HEX], char expires_out[AP_RFC3339_LEN], ap_err *err)
{
    static const ap_sign_opts none = {0};
    if (!o) o = &none;
    if (expires_out) expires_out[0] = '\0';
    char *mpath = ap_path_join(dir, AP_MANIFEST);
    char *own = ap_path_join(dir, AP_SIGNATURE);
    const char *sig_path = o->sig_path ? o->sig_path : own;
    char *manifest = NULL;
    char rfc[AP_RFC3339_LEN] = "";
    size_t len = 0;
    int lock = -1;
    ap_status st = AP_OK;
    if (!mpath || !own) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (o->expires) {
        long long t;
        if ((st = ap_parse_expires(o->expires, (long long)time(NULL), &t, err))) goto out;
        ap_format_rfc3339_utc(t, rfc);
    }
    if ((st = check_sig_target(sig_path, o->force, err))) goto out;
    if ((st = ap_dir_lock(dir, &lock, err))) goto out;
    if ((st = check_signable(dir, o, err))) goto out;
    if (o->expires)
        st = with_expires(dir, rfc, &manifest, &len, err);
    else
        st = ap_read_file(mpath, AP_MAX_MANIFEST_BYTES, &manifest, &len, err);
    if (st) goto out;
    uint8_t sig[AP_SIG_BYTES];
    if ((st = ap_sign(key, manifest, len, sig, err))) goto out;
    if (!o->expires) {
        st = ap_write_file_atomic(sig_path, sig, sizeof sig, 0644, err);
    } else {
        st = commit_with_expiry(dir, mpath, own, sig_path, manifest, len, sig, err);
        if (!st && expires_out) memcpy(expires_out, rfc, AP_RFC3339_LEN);
    }
    if (!st && keyid) {
        ap_pubkey pub;
        ap_seckey_public(key, &pub);
        memcpy(keyid, pub.keyid, AP_KEYID_HEX);
    }
out:
    ap_dir_unlock(lock);
    free(mpath);
    free(own);
    free(manifest);
    return st;
}
