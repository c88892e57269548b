/* Changing a packset's delta list: append, add (build + append), promote, revert, create
 * (docs/PACKSET.md).
 *
 * Every change locks the packset, verifies it first (ap_change_begin: the signature with the
 * caller's keys, a signed packset without keys refused; every hash when the change reads the
 * layers' data, else what the root pins of each layer), builds the next root manifest from
 * the verified one (kept entries copied, only new layers hashed), renames it into place and
 * removes the old signature (ap_change_commit). */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "annpack/caps.h"
#include "annpack/log.h"
#include "annpack/packset.h"
#include "delta.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "ops.h"
#include "path.h"
#include "root_write.h"
#include "view.h"

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

/* The path out (which need not exist yet) relative to root: its parent (or, when that does
 * not exist yet, the grandparent) resolved, which must lie inside root; out itself must not
 * be a symlink. */
static ap_status relative_new(const char *root, const char *out, char **rel, ap_err *err)
{
    *rel = NULL;
    char rr[PATH_MAX], rp[PATH_MAX];
    if (!realpath(root, rr)) return ap_err_errno(err, AP_ERR_NOTFOUND, errno, "%s", root);
    char *c1 = strdup(out), *c2 = strdup(out), *c3 = strdup(out);
    ap_status st = AP_OK;
    if (!c1 || !c2 || !c3) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t l = strlen(c1);
    while (l > 1 && c1[l - 1] == '/') {
        l--;
        c1[l] = c2[l] = c3[l] = '\0';
    }
    const char *name = basename(c1);
    char *parent = dirname(c2);
    char mid[PATH_MAX] = "";
    if (!realpath(parent, rp)) {
        /* deltas/ not created yet: resolve its parent, keep its name. */
        char *pcopy = strdup(parent);
        if (!pcopy) {
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
            goto done;
        }
        snprintf(mid, sizeof mid, "%s/", basename(pcopy));
        free(pcopy);
        char *gp = dirname(dirname(c3));
        if (!realpath(gp, rp)) {
            st = ap_err_errno(err, AP_ERR_NOTFOUND, errno, "%s", parent);
            goto done;
        }
    }
    size_t n = strlen(rr);
    if (strncmp(rp, rr, n) != 0 || (rp[n] != '/' && rp[n] != '\0')) {
        st = ap_err_set(err, AP_ERR_ARG, "%s is not inside the packset %s", out, root);
        goto done;
    }
    struct stat sb;
    if (lstat(out, &sb) == 0 && S_ISLNK(sb.st_mode)) {
        st = ap_err_set(err, AP_ERR_EXISTS, "%s is a symlink; a delta is never written through one",
                        out);
        goto done;
    }
    const char *under = rp[n] ? rp + n + 1 : "";
    size_t len = strlen(under) + strlen(mid) + strlen(name) + 2;
    if (!(*rel = malloc(len))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(*rel, len, "%s%s%s%s", under, *under ? "/" : "", mid, name);
done:
    free(c1);
    free(c2);
    free(c3);
    return st;
}

static uint64_t max_seq(const ap_change *c)
{
    return c->m.ndeltas ? c->m.deltas[c->m.ndeltas - 1].seq : 0;
}

/* Refuses rel when a layer of the packset already uses it (or a path inside or around it). */
static ap_status check_unused(const ap_change *c, const char *rel, const char *shown, ap_err *err)
{
    if (ap_paths_overlap(c->m.base_path, rel))
        return ap_err_set(err, AP_ERR_ARG, "%s is the base of %s (or overlaps it)", shown, c->dir);
    for (size_t i = 0; i < c->m.ndeltas; i++)
        if (ap_paths_overlap(c->m.deltas[i].path, rel))
            return ap_err_set(err, AP_ERR_ARG,
                              "%s is already in %s as seq %llu; a delta is written to a new "
                              "directory (pick another one, or revert that delta first)",
                              shown, c->dir, (unsigned long long)c->m.deltas[i].seq);
    return AP_OK;
}

static ap_status check_seq(const ap_change *c, uint64_t *seq, ap_err *err)
{
    if (*seq == 0) *seq = max_seq(c) + 1;
    if (*seq <= max_seq(c))
        return ap_err_set(err, AP_ERR_ARG, "seq %llu is not greater than the last seq %llu of %s",
                          (unsigned long long)*seq, (unsigned long long)max_seq(c), c->dir);
    if (*seq > UINT32_MAX || c->m.ndeltas + 1 > AP_MAX_DELTAS)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: too many deltas or seq too large", c->dir);
    return AP_OK;
}

/* Appends the delta at delta_dir (= c->dir/rel) to a verified, locked packset. */
static ap_status append_locked(ap_change *c, const char *delta_dir, const char *rel, uint64_t seq,
                               ap_err *err)
{
    ap_status st = ap_path_check(rel, c->dir, "delta path", err);
    if (!st) st = check_seq(c, &seq, err);
    if (!st) st = check_unused(c, rel, delta_dir, err);
    if (!st) st = ap_delta_check_dir(delta_dir, c->base_dir, c->m.base_sha256_annpack, err);
    if (st) return st;
    cJSON *root = ap_change_next_root(c, c->m.ndeltas, err);
    if (!root) return err ? err->status : AP_ERR_NOMEM;
    st = ap_root_add_delta(root, c->dir, seq, rel, err);
    if (!st) st = ap_change_commit(c, root, "append", err);
    cJSON_Delete(root);
    return st;
}

ap_status ap_packset_append_delta(const char *ps, const char *delta_dir, uint64_t seq,
                                  const ap_change_opts *co, ap_err *err)
{
    ap_change c;
    char *rel = NULL;
    ap_status st = ap_change_begin(ps, co, "change", false, &c, err);
    if (st) return st;
    if (!(st = relative_inside(ps, delta_dir, &rel, err)))
        st = append_locked(&c, delta_dir, rel, seq, err);
    ap_change_end(&c);
    free(rel);
    return st;
}

ap_status ap_packset_add_delta(const char *ps, const ap_delta_opts *o, uint64_t seq,
                               const ap_change_opts *co, ap_err *err)
{
    if (!o->out_dir) return ap_err_set(err, AP_ERR_ARG, "build-delta needs --out");
    ap_change c;
    char *rel = NULL;
    ap_status st = ap_change_begin(ps, co, "change", true, &c, err);
    if (st) return st;
    /* Everything that would refuse the append is checked before building. */
    if ((st = relative_new(ps, o->out_dir, &rel, err))) goto out;
    if ((st = ap_path_check(rel, ps, "--out", err))) goto out;
    if ((st = check_seq(&c, &seq, err))) goto out;
    if ((st = check_unused(&c, rel, o->out_dir, err))) goto out;
    ap_delta_opts d = *o;
    d.base_dir = c.base_dir;
    d.force = co && co->force;
    if ((st = ap_delta_build(&d, err))) goto out;
    if ((st = append_locked(&c, o->out_dir, rel, seq, err)))
        ap_rmtree(o->out_dir); /* built (or an identical leftover) but refused: unreferenced */
out:
    ap_change_end(&c);
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

static bool same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && lstat(b, &sb) == 0 && S_ISDIR(sb.st_mode) &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* DIR/deltas, created when missing; never a symlink or a file. */
static ap_status deltas_dir(const char *ps, ap_err *err)
{
    char *deltas = ap_path_join(ps, "deltas");
    if (!deltas) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    struct stat sb;
    ap_status st = AP_OK;
    if (lstat(deltas, &sb) == 0 && !S_ISDIR(sb.st_mode))
        st = ap_err_set(err, AP_ERR_EXISTS,
                        "%s is a symlink or not a directory; refusing to write through it", deltas);
    else if (mkdir(deltas, 0755) != 0 && errno != EEXIST)
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s", deltas);
    free(deltas);
    return st;
}

/* Where promote puts seq: deltas/NNNN.delta, or NNNN-2.delta, ... when a layer already
 * uses that name. */
static void promote_name(const ap_change *c, uint64_t seq, char rel[64])
{
    for (unsigned k = 1;; k++) {
        if (k == 1)
            snprintf(rel, 64, "deltas/%04llu.delta", (unsigned long long)seq);
        else
            snprintf(rel, 64, "deltas/%04llu-%u.delta", (unsigned long long)seq, k);
        if (!check_unused(c, rel, rel, NULL)) return;
    }
}

/* Copies delta_dir to target (through a temporary copy renamed into place); an identical
 * leftover there is kept, anything else there refused unless force. Crash points
 * "promote:copied" and "promote:renamed". */
static ap_status copy_in(const char *delta_dir, const char *target, bool force, ap_err *err)
{
    struct stat sb;
    bool exists = lstat(target, &sb) == 0;
    char *tmp = NULL;
    ap_status st = ap_mkdtemp_beside(target, &tmp, err);
    if (!st) st = copy_delta(delta_dir, tmp, err);
    if (st) goto out;
    ap_crash_point("promote:copied");
    if (exists && ap_tree_equal(tmp, target)) {
        /* An exact copy: the leftover of an interrupted promote of this delta. */
        ap_rmtree(tmp);
    } else if (exists && !force && (!S_ISDIR(sb.st_mode) || ap_dir_entries(target) != 0)) {
        st = ap_err_set(err, AP_ERR_EXISTS,
                        "%s exists, is not in the root manifest and is not a copy of %s (a "
                        "delta staged there, or a leftover of an interrupted command): move "
                        "it away, promote it where it is (--delta %s), or pass --force to "
                        "replace it",
                        target, delta_dir, target);
        goto out;
    } else if ((st = ap_publish_dir(tmp, target, exists, err))) {
        goto out;
    }
    free(tmp);
    tmp = NULL;
    ap_crash_point("promote:renamed");
out:
    if (tmp) ap_rmtree(tmp);
    free(tmp);
    return st;
}

ap_status ap_packset_promote_delta(const char *ps, const char *delta_dir, const ap_change_opts *co,
                                   uint64_t *seq_out, ap_err *err)
{
    ap_change c;
    char *target = NULL;
    char rel[64];
    bool ours = false; /* target is a copy this call made or found identical */
    ap_status st = ap_change_begin(ps, co, "change", false, &c, err);
    if (st) return st;
    uint64_t seq = 0;
    if ((st = check_seq(&c, &seq, err))) goto out;
    /* Refuse early, before copying: the delta must apply to this base. */
    if ((st = ap_delta_check_dir(delta_dir, c.base_dir, c.m.base_sha256_annpack, err))) goto out;
    if ((st = deltas_dir(ps, err))) goto out;
    promote_name(&c, seq, rel);
    if (!(target = ap_path_join(ps, rel))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* A delta already where promote would copy it is appended there. */
    if (!same_dir(delta_dir, target)) {
        if ((st = copy_in(delta_dir, target, co && co->force, err))) goto out;
        ours = true;
    }
    if ((st = append_locked(&c, target, rel, seq, err))) {
        if (ours) ap_rmtree_under(ps, rel, NULL);
        goto out;
    }
    if (seq_out) *seq_out = seq;
out:
    free(target);
    ap_change_end(&c);
    return st;
}

ap_status ap_packset_revert(const char *ps, uint64_t to_seq, const ap_change_opts *co, ap_err *err)
{
    ap_change c;
    ap_status st = ap_change_begin(ps, co, "change", false, &c, err);
    if (st) return st;
    size_t keep = 0, n = c.m.ndeltas;
    while (keep < n && c.m.deltas[keep].seq <= to_seq)
        keep++;
    if (to_seq > max_seq(&c)) {
        st = ap_err_set(err, AP_ERR_ARG, "--to %llu is after the last seq %llu of %s",
                        (unsigned long long)to_seq, (unsigned long long)max_seq(&c), ps);
        goto out;
    }
    cJSON *root = ap_change_next_root(&c, keep, err);
    if (!root) {
        st = err ? err->status : AP_ERR_NOMEM;
        goto out;
    }
    st = ap_change_commit(&c, root, "revert", err);
    cJSON_Delete(root);
    if (st) goto out;
    /* The dropped deltas are no longer referenced: remove them, never through a symlink and
     * never a path a kept layer uses (a crash here only leaves unreferenced directories,
     * which nothing reads). */
    for (size_t i = keep; i < n; i++) {
        const char *p = c.m.deltas[i].path;
        bool used = ap_paths_overlap(p, c.m.base_path);
        for (size_t k = 0; k < keep && !used; k++)
            used = ap_paths_overlap(p, c.m.deltas[k].path);
        ap_err e = {0};
        if (used)
            ap_log(AP_LOG_WARN, "revert", "%s/%s: left in place: a kept layer uses it", ps, p);
        else if (ap_rmtree_under(ps, p, &e))
            ap_log(AP_LOG_WARN, "revert", "dropped delta left in place: %s", e.msg);
    }
out:
    ap_change_end(&c);
    return st;
}

/* Copies a pack directory's manifest and every file it lists into the directory dst. */
static ap_status copy_pack(const char *src_dir, const char *dst, ap_err *err)
{
    ap_pack_manifest m;
    ap_status st = ap_pack_manifest_load(src_dir, &m, err);
    if (st) return st;
    for (size_t i = 0; i <= m.nfiles && !st; i++) {
        const char *name = i == m.nfiles ? AP_MANIFEST : m.files[i].path;
        char *src = ap_path_join(src_dir, name), *to = ap_path_join(dst, name);
        st =
            src && to ? ap_copy_file(src, to, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        free(src);
        free(to);
    }
    ap_pack_manifest_free(&m);
    if (!st) st = ap_fsync_dir(dst, err);
    return st;
}

/* Copies delta i of create into tmp/deltas/NNNN.delta (*path: that name, malloc'd), each
 * checked against the base b (bhex: its pack.annpack hash) before and after the copy. */
static ap_status copy_created_delta(const char *delta_dir, size_t i, const char *tmp, const char *b,
                                    const char *bhex, char **path, ap_err *err)
{
    char name[48];
    snprintf(name, sizeof name, "deltas/%04zu.delta", i + 1);
    *path = strdup(name);
    char *dst = ap_path_join(tmp, name);
    ap_status st = AP_OK;
    if (!*path || !dst)
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    else if (mkdir(dst, 0755) != 0)
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s", dst);
    if (!st) st = ap_delta_check_dir(delta_dir, b, bhex, err);
    if (!st) st = copy_delta(delta_dir, dst, err);
    if (!st) st = ap_delta_check_dir(dst, b, bhex, err);
    free(dst);
    return st;
}

/* The packset create assembles, in tmp: base/ (a verified copy of base_dir), the deltas
 * (copied and checked against that copy) and the root manifest of version 1. */
static ap_status write_created(const char *base_dir, const char *const *delta_dirs, size_t n,
                               const char *tmp, ap_err *err)
{
    ap_verify_opts vo = {0};
    char *b = ap_path_join(tmp, "base"), *d = ap_path_join(tmp, "deltas"), *bann = NULL;
    ap_delta_ref *refs = calloc(n + 1, sizeof *refs);
    char **paths = calloc(n + 1, sizeof *paths);
    char bhex[AP_SHA256_HEX];
    uint64_t bsize;
    ap_status st = AP_OK;
    if (!refs || !paths) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!b || !d || mkdir(b, 0755) != 0 || (n && mkdir(d, 0755) != 0)) {
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s", tmp);
        goto out;
    }
    if ((st = copy_pack(base_dir, b, err))) goto out;
    /* The copy is what the packset will reference: verify it, and check deltas against it. */
    if ((st = ap_pack_verify(b, &vo, NULL, err))) goto out;
    if (!(bann = ap_path_join(b, AP_ANNPACK))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = ap_sha256_file(bann, bhex, &bsize, err))) goto out;
    for (size_t i = 0; i < n; i++) {
        if ((st = copy_created_delta(delta_dirs[i], i, tmp, b, bhex, &paths[i], err))) goto out;
        refs[i] = (ap_delta_ref){i + 1, paths[i]};
    }
    if (n && (st = ap_fsync_dir(d, err))) goto out;
    st = ap_root_write(tmp, 1, "base", refs, n, NULL, err);
out:
    free(b);
    free(d);
    free(bann);
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
    free(refs);
    return st;
}

ap_status ap_packset_create(const char *base_dir, const char *const *delta_dirs, size_t n,
                            const char *out_dir, const ap_change_opts *co, ap_err *err)
{
    bool exists = false, force = co && co->force;
    ap_status st = ap_check_packset_out(out_dir, force, &exists, err);
    if (st) return st;
    ap_verify_opts vo = {0};
    if ((st = ap_pack_verify(base_dir, &vo, NULL, err))) return st;
    char *tmp = NULL;
    if ((st = ap_mkdtemp_beside(out_dir, &tmp, err))) return st;
    if (!(st = write_created(base_dir, delta_dirs, n, tmp, err)) &&
        !(st = ap_publish_packset_out(tmp, out_dir, exists, force, err))) {
        free(tmp);
        tmp = NULL;
    }
    if (tmp) ap_rmtree(tmp);
    free(tmp);
    return st;
}

void ap_packset_discard_delta(const char *delta_dir)
{
    ap_rmtree(delta_dir);
}
