/* What a build may replace: see output.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "annpack/caps.h"
#include "annpack/format.h"
#include "annpack/meta.h"
#include "annpack/sign.h"
#include "annpack/sq8.h"
#include "corpus.h"
#include "digest_table.h"
#include "filter.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "output.h"

ap_status ap_output_dir_check(const char *out, bool force, bool *exists, bool *settled, ap_err *err)
{
    *exists = false;
    *settled = true;
    struct stat sb;
    if (lstat(out, &sb) != 0) {
        if (errno == ENOENT) return AP_OK;
        return ap_err_errno(err, AP_ERR_IO, errno, "%s", out);
    }
    if (!S_ISDIR(sb.st_mode))
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not a directory; refusing to replace it", out);
    *exists = true;
    *settled = force || ap_dir_entries(out) == 0; /* asked for, or nothing to lose */
    return AP_OK;
}

static int has_entry(const char *dir, const char *name)
{
    char *p = ap_path_join(dir, name);
    struct stat sb;
    int yes = p && lstat(p, &sb) == 0;
    free(p);
    return yes;
}

/* The schema_version of dir/pack.manifest.json: 0 when there is none, -1 when it does not
 * parse. */
static int manifest_schema(const char *dir)
{
    char *p = ap_path_join(dir, AP_MANIFEST);
    cJSON *j = NULL;
    int schema = 0;
    ap_status st =
        p ? ap_json_load_file(p, AP_MAX_MANIFEST_BYTES, &j, NULL, NULL, NULL) : AP_ERR_NOMEM;
    if (st == AP_OK) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "schema_version");
        schema = cJSON_IsNumber(s) && s->valuedouble >= 1 && s->valuedouble <= 1000
                     ? (int)s->valuedouble
                     : -1;
    } else if (st != AP_ERR_NOTFOUND) {
        schema = -1;
    }
    cJSON_Delete(j);
    free(p);
    return schema;
}

int ap_enclosing_packset(const char *dir, char **ps)
{
    *ps = NULL;
    char *copy = strdup(dir);
    if (!copy) return 0;
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = '\0';
    char *parent = ap_dirname(copy), *grand = parent ? ap_dirname(parent) : NULL;
    int found = 0;
    if (parent && manifest_schema(parent) == 3) {
        *ps = parent;
        parent = NULL;
        found = 1;
    } else if (grand && parent && strcmp(grand, parent) != 0 && manifest_schema(grand) == 3) {
        *ps = grand;
        grand = NULL;
        found = 1;
    }
    free(copy);
    free(parent);
    free(grand);
    return found;
}

ap_status ap_check_build_output(const char *out, bool force, bool *replace, ap_err *err)
{
    bool settled;
    ap_status st = ap_output_dir_check(out, force, replace, &settled, err);
    if (st || settled) return st;
    char *ps = NULL;
    if (ap_enclosing_packset(out, &ps)) {
        st = ap_err_set(err, AP_ERR_EXISTS,
                        "%s is a layer of the packset %s; refusing to replace it (use "
                        "--force)",
                        out, ps);
        free(ps);
        return st;
    }
    if (has_entry(out, AP_SIGNATURE))
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s is signed (it has %s); refusing to replace it (use --force)", out,
                          AP_SIGNATURE);
    if (has_entry(out, "delta.manifest.json") || has_entry(out, "tombstones.jsonl"))
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s is a packset delta; refusing to replace it (use --force)", out);
    int schema = manifest_schema(out);
    if (schema == 3)
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s is a packset; refusing to replace it with a pack (use --force)", out);
    if (schema != AP_PACK_SCHEMA)
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not an annpack output; refusing to overwrite it (use "
                          "--force)",
                          out);
    return ap_only_build_files(out, err);
}

ap_status ap_only_build_files(const char *dir, ap_err *err)
{
    static const char *const ours[] = {AP_MANIFEST,   AP_ANNPACK,  AP_DIGESTS,
                                       AP_META_JSONL, AP_META_ZST, AP_META_IDX,
                                       AP_SQ8,        AP_IDF,      AP_FILTER};
    DIR *d = opendir(dir);
    if (!d) return ap_err_errno(err, AP_ERR_IO, errno, "%s", dir);
    struct dirent *e;
    ap_status st = AP_OK;
    while (!st && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int known = 0;
        for (size_t i = 0; i < sizeof ours / sizeof *ours && !known; i++)
            known = strcmp(e->d_name, ours[i]) == 0;
        struct stat fb;
        if (!known || fstatat(dirfd(d), e->d_name, &fb, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(fb.st_mode))
            st = ap_err_set(err, AP_ERR_EXISTS,
                            "%s holds %s, which annpack build does not write; refusing to "
                            "replace it (use --force)",
                            dir, e->d_name);
    }
    closedir(d);
    return st;
}
