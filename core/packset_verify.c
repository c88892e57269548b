/* Verifying a packset: the root manifest (signature, expiry, strictness), every layer
 * file's hash as the root lists it, each layer as a pack (its own manifest covers its
 * index), each delta's manifest and base hash, then the merged view. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/caps.h"
#include "annpack/packset.h"
#include "fsops.h"
#include "json.h"
#include "verify.h"
#include "view.h"

static ap_status check_hash(const char *dir, const char *rel, const char *want, ap_err *err)
{
    ap_status st = ap_path_inside(dir, rel, dir, err);
    if (st) return st;
    char *p = ap_path_join(dir, rel);
    if (!p) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    char hex[AP_SHA256_HEX];
    uint64_t size;
    st = ap_sha256_file(p, hex, &size, err);
    if (st == AP_ERR_NOTFOUND)
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: listed in the manifest but missing", p);
    else if (!st && strcmp(hex, want) != 0)
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: sha256 mismatch (manifest %.16s..., file %.16s...)",
                        p, want, hex);
    free(p);
    return st;
}

/* Root-level files that could change meaning but that the root manifest does not name. */
static ap_status check_root_unlisted(const char *dir, char *bad, size_t badlen)
{
    DIR *d = opendir(dir);
    if (!d) return AP_ERR_IO;
    struct dirent *e;
    ap_status st = AP_OK;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        size_t l = strlen(n);
        if ((l > 8 && !strcmp(n + l - 8, ".annpack")) || !strncmp(n, "pack.meta", 9) ||
            !strncmp(n, "tombstones", 10) || (l > 4 && !strcmp(n + l - 4, ".idx"))) {
            snprintf(bad, badlen, "%s", n);
            st = AP_ERR_VERIFY;
            break;
        }
    }
    closedir(d);
    return st;
}

/* The file named in a sub-report's error, prefixed with the layer path. */
static void sub_error_file(const char *report, const char *layer, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", layer);
    cJSON *j = report ? cJSON_Parse(report) : NULL;
    const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
    const cJSON *f = e ? cJSON_GetObjectItemCaseSensitive(e, "file") : NULL;
    if (f && cJSON_IsString(f)) snprintf(out, outlen, "%s/%s", layer, f->valuestring);
    cJSON_Delete(j);
}

static ap_status verify_layer(ap_report *r, const char *dir, const char *path,
                              const char *const *files, const char *const *hashes, size_t nfiles,
                              const ap_verify_opts *o, ap_err *err)
{
    for (size_t i = 0; i < nfiles; i++) {
        ap_status st = check_hash(dir, files[i], hashes[i], err);
        if (st) return ap_report_fail(r, "sha256", files[i], st, err);
        ap_report_ok(r, "sha256", files[i]);
    }
    char *ld = ap_path_join(dir, path);
    if (!ld) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_verify_opts lo = {.deep = o->deep, .progress = o->progress, .progress_ud = o->progress_ud};
    char *sub = NULL;
    ap_status st = ap_pack_verify(ld, &lo, &sub, err);
    free(ld);
    if (st) {
        char f[1024];
        sub_error_file(sub, path, f, sizeof f);
        free(sub);
        return ap_report_fail(r, "layer", f, st, err);
    }
    free(sub);
    ap_report_ok(r, o->deep ? "layer-deep" : "layer", path);
    return AP_OK;
}

static ap_status verify_delta_manifest(ap_report *r, const char *dir, const ap_delta_entry *d,
                                       ap_err *err)
{
    char *dm = ap_path_join(dir, d->delta_manifest), *ddir = ap_path_join(dir, d->path);
    cJSON *j = NULL;
    ap_status st = (!dm || !ddir) ? ap_err_set(err, AP_ERR_NOMEM, "out of memory") : AP_OK;
    if (!st) st = ap_json_load_file(dm, AP_MAX_MANIFEST_BYTES, &j, NULL, NULL, err);
    const char *bh;
    const cJSON *files = NULL, *f;
    if (!st) st = ap_json_str(j, "base_sha256_annpack", dm, &bh, err);
    if (!st && strcmp(bh, d->base_sha256_annpack) != 0)
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: built against another base", dm);
    if (!st) st = ap_json_member(j, "files", cJSON_Object, dm, &files, err);
    if (!st) {
        cJSON_ArrayForEach(f, files)
        {
            const char *want;
            char rel[1100];
            if ((st = ap_path_check(f->string, dm, "files key", err))) break;
            if ((st = ap_json_str(f, "sha256", dm, &want, err))) break;
            snprintf(rel, sizeof rel, "%s/%s", d->path, f->string);
            if ((st = check_hash(dir, rel, want, err))) break;
        }
    }
    cJSON_Delete(j);
    free(dm);
    free(ddir);
    if (st) return ap_report_fail(r, "delta-manifest", d->delta_manifest, st, err);
    ap_report_ok(r, "delta-manifest", d->delta_manifest);
    return AP_OK;
}

ap_status ap_packset_verify(const char *dir, const ap_verify_opts *o, char **report_out,
                            ap_err *err)
{
    ap_report r = ap_report_new(dir, "packset", o->deep);
    if (report_out) *report_out = NULL;
    if (!r.root) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_root_manifest m;
    ap_view *v = NULL;
    ap_status st = ap_root_manifest_load(dir, &m, err);
    if (st) {
        ap_report_fail(&r, "manifest", AP_MANIFEST, st, err);
        goto done;
    }
    ap_report_ok(&r, "manifest", AP_MANIFEST);
    ap_json_add_u64(r.root, "version", m.version);
    if ((st = ap_verify_trust(dir, m.raw, m.raw_len, m.root, o, r.root, err))) {
        ap_report_fail(&r, "signature", o->sig_path ? o->sig_path : AP_SIGNATURE, st, err);
        goto done_m;
    }
    char bad[256];
    if (check_root_unlisted(dir, bad, sizeof bad)) {
        st = ap_err_set(err, AP_ERR_VERIFY,
                        "%s/%s: file not listed in the manifest could change the packset's "
                        "meaning; remove it",
                        dir, bad);
        ap_report_fail(&r, "unlisted", bad, st, err);
        goto done_m;
    }
    {
        const char *f[3] = {m.base_annpack, m.base_meta, m.base_manifest};
        const char *h[3] = {m.base_sha256_annpack, m.base_sha256_meta, m.base_sha256_manifest};
        if ((st = verify_layer(&r, dir, m.base_path, f, h, 3, o, err))) goto done_m;
    }
    for (size_t i = 0; i < m.ndeltas; i++) {
        const ap_delta_entry *d = &m.deltas[i];
        const char *f[5] = {d->annpack, d->meta, d->manifest, d->tombstones, d->delta_manifest};
        const char *h[5] = {d->sha256_annpack, d->sha256_meta, d->sha256_manifest,
                            d->sha256_tombstones, d->sha256_delta_manifest};
        if ((st = verify_layer(&r, dir, d->path, f, h, 5, o, err))) goto done_m;
        if ((st = verify_delta_manifest(&r, dir, d, err))) goto done_m;
    }
    if ((st = ap_view_open(dir, &v, err))) {
        ap_report_fail(&r, "view", NULL, st, err);
        goto done_m;
    }
    ap_json_add_u64(r.root, "live", ap_view_live_count(v));
    ap_report_ok(&r, "view", NULL);
done_m:
    ap_view_close(v);
    ap_root_manifest_free(&m);
done:
    ap_report_finish(&r, st, report_out);
    return st;
}
