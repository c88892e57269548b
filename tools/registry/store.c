/* The blob store (store.h). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annpack/sign.h"
#include "cli.h"
#include "store.h"

ap_status mkdir_parents(const char *dir, ap_err *err)
{
    char *p = strdup(dir);
    if (!p) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                ap_status st = ap_err_set(err, AP_ERR_IO, "mkdir %s: %s", p, strerror(errno));
                free(p);
                return st;
            }
            *s = c;
            if (!c) break;
        }
    }
    free(p);
    return AP_OK;
}

char *mkdtemp_beside(const char *target, const char *tag, ap_err *err)
{
    char *a = strdup(target), *b = strdup(target);
    size_t n = strlen(target) * 2 + strlen(tag) + 32;
    char *out = malloc(n);
    if (!a || !b || !out) {
        free(a);
        free(b);
        free(out);
        ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(out, n, "%s/.%s.%s-XXXXXX", dirname(a), basename(b), tag);
    free(a);
    free(b);
    if (!mkdtemp(out)) {
        ap_err_set(err, AP_ERR_IO, "cannot create a temporary directory beside %s: %s", target,
                   strerror(errno));
        free(out);
        return NULL;
    }
    return out;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

void rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

ap_status fsync_dir(const char *dir, ap_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        ap_status st = ap_err_set(err, AP_ERR_IO, "fsync %s: %s", dir, strerror(errno));
        if (fd >= 0) close(fd);
        return st;
    }
    close(fd);
    return AP_OK;
}

static char *join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s%s%s", a, b, *c ? "/" : "", c);
    return p;
}

/* Fetches one blob into the store: resumes a .partial, checks size and digest, then renames
 * it to its digest name (so a blob under that name is always a checked one). */
static ap_status fetch_blob(oci_client *c, const char *blobs, const tree_file *f, const char *path,
                            store_stats *stats, ap_err *err)
{
    const char *hex = f->digest + 7;
    char *final = join3(blobs, hex, ""), *part = malloc(strlen(blobs) + 80);
    if (!final || !part || !path) {
        free(final);
        free(part);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    sprintf(part, "%s/%s.partial", blobs, hex);
    ap_status st = AP_OK;
    struct stat sb;
    if (stat(final, &sb) == 0 && (uint64_t)sb.st_size == f->size) {
        stats->reused_bytes += f->size;
        goto out;
    }
    int fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    FILE *fp = fd >= 0 ? fdopen(fd, "ab") : NULL;
    if (!fp) {
        if (fd >= 0) close(fd);
        st = ap_err_set(err, AP_ERR_IO, "%s: %s", part, strerror(errno));
        goto out;
    }
    off_t have = lseek(fd, 0, SEEK_END);
    if (have < 0 || (uint64_t)have > f->size) {
        /* Longer than the blob: not a prefix of it; start again. */
        if (ftruncate(fd, 0) != 0)
            have = -1;
        else
            have = 0;
    }
    if (have > 0 && (uint64_t)have < f->size) stats->resumed++;
    uint64_t got = 0;
    bool restarted = false;
    if (have >= 0 && (uint64_t)have < f->size)
        st = oci_blob_fetch(c, f->digest, fp, (uint64_t)have, f->size, &got, &restarted, err);
    if (fflush(fp) != 0 || fsync(fd) != 0)
        st = st ? st : ap_err_set(err, AP_ERR_IO, "%s: %s", part, strerror(errno));
    fclose(fp);
    stats->fetched_bytes += got;
    if (st) {
        /* What arrived stays in .partial for the next attempt (a Range request). */
        char m[AP_ERR_MSG_MAX];
        snprintf(m, sizeof m, "%s", err->msg);
        if (st == AP_ERR_VERIFY) unlink(part); /* longer than its size: not the blob */
        st = ap_err_set(err, st, "%s (blob %s): %s%s", path, f->digest, m,
                        st == AP_ERR_VERIFY ? "" : "; run again to resume");
        goto out;
    }
    char hx[AP_SHA256_HEX];
    uint64_t size = 0;
    st = ap_sha256_file(part, hx, &size, err);
    if (!st && (size != f->size || strcmp(hx, hex))) {
        unlink(part);
        st = ap_err_set(err, AP_ERR_VERIFY,
                        "%s: the registry's blob %s has %llu bytes and sha256:%s, the artifact "
                        "says %llu bytes (damaged or tampered with in the registry; nothing was "
                        "switched)",
                        path, f->digest, (unsigned long long)size, hx, (unsigned long long)f->size);
    }
    if (!st && rename(part, final) != 0)
        st = ap_err_set(err, AP_ERR_IO, "rename %s: %s", part, strerror(errno));
out:
    free(final);
    free(part);
    return st;
}

static ap_status copy_file(const char *src, const char *dst, ap_err *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1;
    if (in >= 0) out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ap_status st = AP_OK;
    if (in < 0 || out < 0)
        st = ap_err_set(err, AP_ERR_IO, "copy %s to %s: %s", src, dst, strerror(errno));
    if (!st && ioctl(out, FICLONE, in) == 0) goto done;
    char buf[1 << 16];
    for (ssize_t n; !st && (n = read(in, buf, sizeof buf)) != 0;) {
        if (n < 0 || write(out, buf, (size_t)n) != n)
            st = ap_err_set(err, AP_ERR_IO, "copy %s to %s: %s", src, dst, strerror(errno));
    }
done:
    if (!st && fsync(out) != 0)
        st = ap_err_set(err, AP_ERR_IO, "fsync %s: %s", dst, strerror(errno));
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    return st;
}

ap_status store_materialize(oci_client *c, const tree *t, const char *store, const char *out_dir,
                            const bool *link_member, store_stats *stats, ap_err *err)
{
    char *blobs = join3(store, "blobs/sha256", "");
    if (!blobs) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = mkdir_parents(blobs, err);
    for (size_t i = 0; !st && i < t->n; i++) {
        const tree_member *m = &t->m[i];
        for (size_t k = 0; !st && k < m->nfiles; k++) {
            const tree_file *f = &m->files[k];
            char *rel = tree_file_path(m, f);
            char *dst = rel ? join3(out_dir, rel, "") : NULL;
            char *src = join3(blobs, f->digest + 7, "");
            if (!rel || !dst || !src) {
                free(rel);
                free(dst);
                free(src);
                st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
                break;
            }
            st = fetch_blob(c, blobs, f, rel, stats, err);
            if (!st) {
                char *d = strdup(dst);
                char *slash = d ? strrchr(d, '/') : NULL;
                if (slash) *slash = 0;
                st = d ? mkdir_parents(d, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
                free(d);
            }
            /* See store.h: a link only for a file that is never served, else a copy. */
            if (!st && !(link_member && link_member[i] && link(src, dst) == 0))
                st = copy_file(src, dst, err);
            free(rel);
            free(dst);
            free(src);
        }
    }
    free(blobs);
    return st;
}
