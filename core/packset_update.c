/* Changing a packset's delta list: append, promote, revert, create (docs/PACKSET.md). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "annpack/caps.h"
#include "annpack/packset.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "packset_ops.h"
#include "view.h"

/* Checks a delta directory against the base it should apply to: the delta pack verifies,
 * its delta manifest's files match, it was built against this base (hash), with the same
 * embedder and dim, and no id is both added and deleted. */
static ap_status check_delta(const char *delta_dir, const char *base_dir, ap_err *err)
{
    ap_verify_opts vo = {0};
    ap_status st = ap_pack_verify(delta_dir, &vo, NULL, err);
    if (st) return st;
    char *dm = ap_path_join(delta_dir, AP_DELTA_MANIFEST), *bann = ap_path_join(base_dir, AP_ANNPACK);
    cJSON *j = NULL;
    ap_pack *bp = NULL, *dp = NULL;
    char *be = NULL, *de = NULL;
    if (!dm || !bann) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = ap_json_load_file(dm, AP_MAX_MANIFEST_BYTES, &j, NULL, NULL, err))) goto out;
    const char *bhash;
    const cJSON *files, *f;
    if ((st = ap_json_str(j, "base_sha256_annpack", dm, &bhash, err))) goto out;
    if ((st = ap_json_member(j, "files", cJSON_Object, dm, &files, err))) goto out;
    cJSON_ArrayForEach(f, files)
    {
        const char *want;
        if ((st = ap_path_check(f->string, dm, "files key", err))) goto out;
        if ((st = ap_json_str(f, "sha256", dm, &want, err))) goto out;
        char *p = ap_path_join(delta_dir, f->string);
        char hex[AP_SHA256_HEX];
        uint64_t size;
        st = p ? ap_sha256_file(p, hex, &size, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        if (!st && strcmp(hex, want) != 0)
            st = ap_err_set(err, AP_ERR_VERIFY, "%s: sha256 mismatch with %s", p, dm);
        free(p);
        if (st) goto out;
    }
    char hex[AP_SHA256_HEX];
    uint64_t size;
    if ((st = ap_sha256_file(bann, hex, &size, err))) goto out;
    if (strcmp(hex, bhash) != 0) {
        st = ap_err_set(err, AP_ERR_VERIFY,
                        "%s was built against another base (its base_sha256_annpack %.16s..., "
                        "this packset's base %.16s...)",
                        delta_dir, bhash, hex);
        goto out;
    }
    if ((st = ap_pack_open(base_dir, &bp, err)) || (st = ap_pack_open(delta_dir, &dp, err))) goto out;
    if (ap_annp_get_header(ap_pack_annp(bp))->dim != ap_annp_get_header(ap_pack_annp(dp))->dim) {
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: dim %u differs from the base dim %u", delta_dir,
                        ap_annp_get_header(ap_pack_annp(dp))->dim,
                        ap_annp_get_header(ap_pack_annp(bp))->dim);
        goto out;
    }
    be = ap_embedder_describe(ap_pack_embedder(bp));
    de = ap_embedder_describe(ap_pack_embedder(dp));
    if (!be || !de || strcmp(be, de) != 0) {
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: embedder %s differs from the base's %s", delta_dir,
                        de ? de : "?", be ? be : "?");
        goto out;
    }
out:
    free(be);
    free(de);
    ap_pack_close(bp);
    ap_pack_close(dp);
    cJSON_Delete(j);
    free(dm);
    free(bann);
    return st;
}

/* The path of dir relative to root, when dir is inside root (through symlinks). */
static ap_status relative_inside(const char *root, const char *dir, char **rel, ap_err *err)
{
    char rr[PATH_MAX], rd[PATH_MAX];
    if (!realpath(root, rr)) return ap_err_errno(err, AP_ERR_NOTFOUND, errno, "%s", root);
    if (!realpath(dir, rd)) return ap_err_errno(err, AP_ERR_NOTFOUND, errno, "%s", dir);
    size_t n = strlen(rr);
    if (strncmp(rd, rr, n) != 0 || rd[n] != '/')
        return ap_err_set(err, AP_ERR_ARG,
                          "%s is not inside the packset %s (use promote-delta to copy it in)", dir,
                          root);
    *rel = strdup(rd + n + 1);
    return *rel ? AP_OK : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
}

typedef struct current {
    ap_root_manifest m;
    ap_delta_ref *refs;
    size_t n;
    char *base_dir;
} current;

static ap_status load_current(const char *ps, current *c, ap_err *err)
{
    memset(c, 0, sizeof *c);
    ap_status st = ap_root_manifest_load(ps, &c->m, err);
    if (st) return st;
    if (c->m.schema != AP_PACKSET_SCHEMA) {
        ap_root_manifest_free(&c->m);
        return ap_err_set(err, AP_ERR_ARG, "%s is a pack, not a packset (schema_version 3)", ps);
    }
    c->refs = calloc(c->m.ndeltas + 1, sizeof *c->refs);
    c->base_dir = ap_path_join(ps, c->m.base_path);
    if (!c->refs || !c->base_dir) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->m.ndeltas; i++)
        c->refs[i] = (ap_delta_ref){c->m.deltas[i].seq, c->m.deltas[i].path};
    c->n = c->m.ndeltas;
    return AP_OK;
}

static void free_current(current *c)
{
    ap_root_manifest_free(&c->m);
    free(c->refs);
    free(c->base_dir);
}

static uint64_t max_seq(const current *c)
{
    return c->n ? c->refs[c->n - 1].seq : 0;
}

ap_status ap_packset_append_delta(const char *ps, const char *delta_dir, uint64_t seq, ap_err *err)
{
    current c;
    char *rel = NULL;
    ap_status st = load_current(ps, &c, err);
    if (st) goto out;
    if ((st = relative_inside(ps, delta_dir, &rel, err))) goto out;
    if ((st = ap_path_check(rel, ps, "delta path", err))) goto out;
    if (seq == 0) seq = max_seq(&c) + 1;
    if (seq <= max_seq(&c)) {
        st = ap_err_set(err, AP_ERR_ARG, "seq %llu is not greater than the last seq %llu of %s",
                        (unsigned long long)seq, (unsigned long long)max_seq(&c), ps);
        goto out;
    }
    for (size_t i = 0; i < c.n; i++)
        /* rel is set: relative_inside succeeded above. */
        if (c.refs[i].path && strcmp(c.refs[i].path, rel) == 0) { // NOLINT(clang-analyzer-core.NonNullParamChecker)
            st = ap_err_set(err, AP_ERR_ARG, "%s is already in %s as seq %llu", delta_dir, ps,
                            (unsigned long long)c.refs[i].seq);
            goto out;
        }
    if (seq > UINT32_MAX || c.n + 1 > AP_MAX_DELTAS) {
        st = ap_err_set(err, AP_ERR_LIMIT, "%s: too many deltas or seq too large", ps);
        goto out;
    }
    if ((st = check_delta(delta_dir, c.base_dir, err))) goto out;
    c.refs[c.n++] = (ap_delta_ref){seq, rel};
    ap_crash_point("append:before-manifest");
    st = ap_root_write(ps, c.m.version + 1, c.m.base_path, c.refs, c.n,
                       cJSON_GetObjectItemCaseSensitive(c.m.root, "expires"), err);
    ap_crash_point("append:after-manifest");
out:
    free_current(&c);
    free(rel);
    return st;
}

/* Copies the files of a delta directory (only the known ones) into a new directory. */
static ap_status copy_delta(const char *src, const char *dst, ap_err *err)
{
    ap_pack_manifest m;
    ap_status st = ap_pack_manifest_load(src, &m, err);
    if (st) return st;
    const char *fixed[] = {AP_MANIFEST, AP_TOMBSTONES, AP_DELTA_MANIFEST};
    for (size_t i = 0; i < 3 + m.nfiles && !st; i++) {
        const char *name = i < 3 ? fixed[i] : m.files[i - 3].path;
        if (strchr(name, '/')) {
            st = ap_err_set(err, AP_ERR_FORMAT, "%s: delta files must sit in its directory (%s)",
                            src, name);
            break;
        }
        char *a = ap_path_join(src, name), *b = ap_path_join(dst, name);
        st = a && b ? ap_copy_file(a, b, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        free(a);
        free(b);
    }
    ap_pack_manifest_free(&m);
    if (!st) st = ap_fsync_dir(dst, err);
    return st;
}

ap_status ap_packset_promote_delta(const char *ps, const char *delta_dir, uint64_t *seq_out,
                                   ap_err *err)
{
    current c;
    char *deltas = NULL, *target = NULL, *tmp = NULL;
    ap_status st = load_current(ps, &c, err);
    if (st) goto out;
    uint64_t seq = max_seq(&c) + 1;
    /* Refuse early, before copying: the delta must apply to this base. */
    if ((st = check_delta(delta_dir, c.base_dir, err))) goto out;
    char name[32];
    snprintf(name, sizeof name, "%04llu.delta", (unsigned long long)seq);
    deltas = ap_path_join(ps, "deltas");
    target = deltas ? ap_path_join(deltas, name) : NULL;
    if (!target) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (mkdir(deltas, 0755) != 0 && errno != EEXIST) {
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s", deltas);
        goto out;
    }
    /* A directory of this name that the manifest does not list is the leftover of an
     * interrupted promote: it was never read as data, so it can go. */
    ap_rmtree(target);
    if ((st = ap_mkdtemp_beside(target, &tmp, err))) goto out;
    if ((st = copy_delta(delta_dir, tmp, err))) goto out;
    ap_crash_point("promote:copied");
    if ((st = ap_publish_dir(tmp, target, err))) goto out;
    free(tmp);
    tmp = NULL;
    ap_crash_point("promote:renamed");
    if ((st = ap_packset_append_delta(ps, target, seq, err))) {
        ap_rmtree(target);
        goto out;
    }
    if (seq_out) *seq_out = seq;
out:
    if (tmp) ap_rmtree(tmp);
    free(tmp);
    free(target);
    free(deltas);
    free_current(&c);
    return st;
}

ap_status ap_packset_revert(const char *ps, uint64_t to_seq, ap_err *err)
{
    current c;
    ap_status st = load_current(ps, &c, err);
    if (st) goto out;
    size_t keep = 0;
    while (keep < c.n && c.refs[keep].seq <= to_seq) keep++;
    if (to_seq > max_seq(&c)) {
        st = ap_err_set(err, AP_ERR_ARG, "--to %llu is after the last seq %llu of %s",
                        (unsigned long long)to_seq, (unsigned long long)max_seq(&c), ps);
        goto out;
    }
    ap_crash_point("revert:before-manifest");
    st = ap_root_write(ps, c.m.version + 1, c.m.base_path, c.refs, keep,
                       cJSON_GetObjectItemCaseSensitive(c.m.root, "expires"), err);
    if (st) goto out;
    ap_crash_point("revert:after-manifest");
    /* The dropped deltas are no longer referenced: remove them (a crash here only leaves
     * unreferenced directories, which nothing reads). */
    for (size_t i = keep; i < c.n; i++) {
        char *p = ap_path_join(ps, c.refs[i].path);
        if (p) ap_rmtree(p);
        free(p);
    }
out:
    free_current(&c);
    return st;
}

ap_status ap_packset_create(const char *base_dir, const char *const *delta_dirs, size_t n,
                            const char *out_dir, ap_err *err)
{
    struct stat sb;
    if (lstat(out_dir, &sb) == 0)
        return ap_err_set(err, AP_ERR_EXISTS, "%s exists; create writes a new packset", out_dir);
    ap_verify_opts vo = {0};
    ap_status st = ap_pack_verify(base_dir, &vo, NULL, err);
    if (st) return st;
    char *tmp = NULL, *b = NULL, *d = NULL;
    ap_delta_ref *refs = calloc(n + 1, sizeof *refs);
    char **paths = calloc(n + 1, sizeof *paths);
    if (!refs || !paths) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = ap_mkdtemp_beside(out_dir, &tmp, err))) goto out;
    b = ap_path_join(tmp, "base");
    d = ap_path_join(tmp, "deltas");
    if (!b || !d || mkdir(b, 0755) != 0 || (n && mkdir(d, 0755) != 0)) {
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s", tmp);
        goto out;
    }
    /* The base: its manifest and every file it lists. */
    ap_pack_manifest m;
    if ((st = ap_pack_manifest_load(base_dir, &m, err))) goto out;
    for (size_t i = 0; i <= m.nfiles && !st; i++) {
        const char *name = i == m.nfiles ? AP_MANIFEST : m.files[i].path;
        char *src = ap_path_join(base_dir, name), *dst = ap_path_join(b, name);
        st = src && dst ? ap_copy_file(src, dst, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        free(src);
        free(dst);
    }
    ap_pack_manifest_free(&m);
    if (st) goto out;
    for (size_t i = 0; i < n; i++) {
        char name[48];
        snprintf(name, sizeof name, "deltas/%04zu.delta", i + 1);
        paths[i] = strdup(name);
        char *dst = ap_path_join(tmp, name);
        if (!paths[i] || !dst) {
            free(dst);
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (mkdir(dst, 0755) != 0) st = ap_err_errno(err, AP_ERR_IO, errno, "%s", dst);
        if (!st) st = check_delta(delta_dirs[i], b, err);
        if (!st) st = copy_delta(delta_dirs[i], dst, err);
        free(dst);
        if (st) goto out;
        refs[i] = (ap_delta_ref){i + 1, paths[i]};
    }
    if ((st = ap_root_write(tmp, 1, "base", refs, n, NULL, err))) goto out;
    st = ap_publish_dir(tmp, out_dir, err);
    if (!st) {
        free(tmp);
        tmp = NULL;
    }
out:
    if (tmp) ap_rmtree(tmp);
    free(tmp);
    free(b);
    free(d);
    for (size_t i = 0; paths && i < n; i++) free(paths[i]);
    free(paths);
    free(refs);
    return st;
}

void ap_packset_discard_delta(const char *delta_dir)
{
    ap_rmtree(delta_dir);
}
