/* Atomic filesystem operations: see fsops.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsops.h"

char *ap_path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (!s) return NULL;
    memcpy(s, a, la);
    size_t at = la;
    if (la && a[la - 1] != '/') s[at++] = '/';
    memcpy(s + at, b, lb + 1);
    return s;
}

char *ap_dirname(const char *path)
{
    char *c = strdup(path);
    if (!c) return NULL;
    char *d = strdup(dirname(c));
    free(c);
    return d;
}

ap_status ap_mkdtemp_beside(const char *target, char **out, ap_err *err)
{
    *out = NULL;
    char *copy = strdup(target);
    char *parent = ap_dirname(target);
    if (!copy || !parent) {
        free(copy);
        free(parent);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    /* Outputs may name directories that do not exist yet (--output out/tiny). */
    ap_status pst = ap_mkdir_p(parent, err);
    if (pst) {
        free(copy);
        free(parent);
        return pst;
    }
    /* Strip trailing slashes so basename names the directory itself. */
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = '\0';
    const char *base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
    size_t len = strlen(parent) + strlen(base) + 32;
    char *tmpl = malloc(len);
    ap_status st = AP_OK;
    if (!tmpl) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    } else {
        snprintf(tmpl, len, "%s/.%s.tmp-XXXXXX", parent, base);
        if (!mkdtemp(tmpl)) {
            st = ap_err_errno(err, AP_ERR_IO, errno, "cannot create a temporary directory in %s",
                              parent);
            free(tmpl);
        } else {
            *out = tmpl;
        }
    }
    free(copy);
    free(parent);
    return st;
}

/* Removes dfd/name: a directory tree (each level opened with O_NOFOLLOW, so a symlink
 * inside is removed, never followed), or a single non-directory entry. */
static void rmtree_at(int dfd, const char *name, int depth)
{
    if (unlinkat(dfd, name, 0) == 0) return; /* a file or a symlink */
    if (depth > 64) return;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        DIR *d = fdopendir(fd);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                    rmtree_at(fd, e->d_name, depth + 1);
            closedir(d);
        } else {
            close(fd);
        }
    }
    unlinkat(dfd, name, AT_REMOVEDIR);
}

void ap_rmtree(const char *path)
{
    if (path) rmtree_at(AT_FDCWD, path, 0);
}

ap_status ap_rmtree_under(const char *root, const char *rel, ap_err *err)
{
    char *copy = strdup(rel);
    if (!copy) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = AP_OK;
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s", root);
        goto out;
    }
    char *name = copy, *slash;
    while ((slash = strchr(name, '/'))) {
        *slash = '\0';
        int next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        *slash = '/';
        if (next < 0) {
            if (e != ENOENT)
                st = ap_err_set(err, AP_ERR_VERIFY,
                                "%s/%s: not removed: the path goes through a symlink or a "
                                "non-directory (%.*s), which is never followed",
                                root, rel, (int)(slash - copy), copy);
            goto out;
        }
        close(fd);
        fd = next;
        name = slash + 1;
    }
    struct stat sb;
    if (fstatat(fd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) st = ap_err_errno(err, AP_ERR_IO, errno, "%s/%s", root, rel);
        goto out;
    }
    if (!S_ISDIR(sb.st_mode)) {
        st = ap_err_set(err, AP_ERR_VERIFY, "%s/%s: not removed: not a directory", root, rel);
        goto out;
    }
    rmtree_at(fd, name, 0);
    if (fstatat(fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
        st = ap_err_set(err, AP_ERR_IO, "%s/%s: could not be removed completely", root, rel);
    else if (fsync(fd) != 0 && errno != EINVAL)
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s: fsync", root);
out:
    if (fd >= 0) close(fd);
    free(copy);
    return st;
}

ap_status ap_fsync_dir(const char *dir, ap_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ap_err_errno(err, AP_ERR_IO, errno, "%s", dir);
    int r = fsync(fd);
    int e = errno;
    close(fd);
    /* Some filesystems refuse fsync on directories; the rename is still ordered. */
    if (r != 0 && e != EINVAL && e != EROFS)
        return ap_err_errno(err, AP_ERR_IO, e, "%s: fsync", dir);
    return AP_OK;
}

static ap_status write_fd(int fd, const void *data, size_t len, const char *path, ap_err *err)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return ap_err_errno(err, AP_ERR_IO, errno, "%s: write", path);
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0) return ap_err_errno(err, AP_ERR_IO, errno, "%s: fsync", path);
    return AP_OK;
}

ap_status ap_write_file(const char *path, const void *data, size_t len, ap_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return ap_err_errno(err, errno == EEXIST ? AP_ERR_EXISTS : AP_ERR_IO, errno, "%s", path);
    ap_status st = write_fd(fd, data, len, path, err);
    if (close(fd) != 0 && !st) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: close", path);
    if (st) unlink(path);
    return st;
}

ap_status ap_stage_file(const char *path, const void *data, size_t len, int mode, char **tmp_out,
                        ap_err *err)
{
    *tmp_out = NULL;
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        ap_status st =
            ap_err_errno(err, AP_ERR_IO, errno, "%s: cannot create temporary file", path);
        free(tmp);
        return st;
    }
    ap_status st = AP_OK;
    if (fchmod(fd, (mode_t)mode) != 0) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: chmod", tmp);
    if (!st) st = write_fd(fd, data, len, tmp, err);
    if (close(fd) != 0 && !st) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: close", tmp);
    if (st) {
        unlink(tmp);
        free(tmp);
        return st;
    }
    *tmp_out = tmp;
    return AP_OK;
}

ap_status ap_commit_file(char *tmp, const char *path, ap_err *err)
{
    if (!tmp) return ap_err_set(err, AP_ERR_INTERNAL, "%s: no temporary file to commit", path);
    ap_status st = AP_OK;
    if (rename(tmp, path) != 0) {
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s: rename", path);
        unlink(tmp);
    } else {
        char *dir = ap_dirname(path);
        st = dir ? ap_fsync_dir(dir, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        free(dir);
    }
    free(tmp);
    return st;
}

ap_status ap_write_file_atomic(const char *path, const void *data, size_t len, int mode,
                               ap_err *err)
{
    char *tmp = NULL;
    ap_status st = ap_stage_file(path, data, len, mode, &tmp, err);
    return st ? st : ap_commit_file(tmp, path, err);
}

ap_status ap_open_regular(const char *path, int *fd, uint64_t *size, ap_err *err)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return ap_err_errno(err, errno == ENOENT ? AP_ERR_NOTFOUND : AP_ERR_IO, errno, "%s", path);
    struct stat sb;
    ap_status st = AP_OK;
    if (fstat(*fd, &sb) != 0)
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s", path);
    else if (!S_ISREG(sb.st_mode))
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: not a regular file", path);
    if (st) {
        close(*fd);
        *fd = -1;
        return st;
    }
    *size = (uint64_t)sb.st_size;
    return AP_OK;
}

ap_status ap_read_file(const char *path, size_t max, char **out, size_t *len, ap_err *err)
{
    *out = NULL;
    int fd;
    uint64_t fsize = 0;
    ap_status st = ap_open_regular(path, &fd, &fsize, err);
    if (st) return st;
    char *buf = NULL;
    if (fsize > max) {
        st = ap_err_set(err, AP_ERR_LIMIT, "%s: %llu bytes exceeds the cap of %zu bytes", path,
                        (unsigned long long)fsize, max);
    } else if (!(buf = malloc((size_t)fsize + 1))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "%s: out of memory", path);
    } else {
        size_t got = 0, n = (size_t)fsize;
        while (got < n) {
            ssize_t r = read(fd, buf + got, n - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got != n) {
            st = ap_err_set(err, AP_ERR_IO, "%s: short read (file changed?)", path);
        } else {
            buf[n] = '\0';
            *out = buf;
            if (len) *len = n;
            buf = NULL;
        }
    }
    free(buf);
    close(fd);
    return st;
}

ap_status ap_replace_dir(const char *tmp, const char *target, bool replace, ap_err *err)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_NOREPLACE) == 0) goto synced;
    if (errno != EEXIST)
        return ap_err_errno(err, AP_ERR_IO, errno, "cannot rename %s to %s", tmp, target);
    if (!replace)
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s appeared while it was being written; not replaced", target);
    /* Swap the new tree in atomically; the old one ends up at tmp and is removed. */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_EXCHANGE) != 0)
        return ap_err_errno(err, AP_ERR_IO, errno, "cannot replace %s", target);
    ap_rmtree(tmp);
synced:;
    char *parent = ap_dirname(target);
    ap_status st =
        parent ? ap_fsync_dir(parent, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    free(parent);
    return st;
}

ap_status ap_copy_file(const char *src, const char *dst, ap_err *err)
{
    int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return ap_err_errno(err, errno == ENOENT ? AP_ERR_NOTFOUND : AP_ERR_IO, errno, "%s", src);
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        ap_status st = ap_err_errno(err, AP_ERR_IO, errno, "%s", dst);
        close(in);
        return st;
    }
    ap_status st = AP_OK;
    char *buf = malloc(1 << 20);
    if (!buf) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    while (!st) {
        ssize_t r = read(in, buf, 1 << 20);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = ap_err_errno(err, AP_ERR_IO, errno, "%s: read", src);
            break;
        }
        if (r == 0) break;
        for (ssize_t w = 0; w < r && !st;) {
            ssize_t k = write(out, buf + w, (size_t)(r - w));
            if (k < 0 && errno == EINTR) continue;
            if (k < 0)
                st = ap_err_errno(err, AP_ERR_IO, errno, "%s: write", dst);
            else
                w += k;
        }
    }
    if (!st && fsync(out) != 0) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: fsync", dst);
    if (close(out) != 0 && !st) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: close", dst);
    close(in);
    free(buf);
    if (st) unlink(dst);
    return st;
}

ap_status ap_mkdir_p(const char *dir, ap_err *err)
{
    char *p = strdup(dir);
    if (!p) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = AP_OK;
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == '\0') {
            char keep = *c;
            *c = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                st = ap_err_errno(err, AP_ERR_IO, errno, "cannot create directory %s", p);
                break;
            }
            *c = keep;
            if (!keep) break;
        }
    }
    free(p);
    return st;
}

ap_status ap_publish_dir(const char *tmp, const char *target, bool replace, ap_err *err)
{
    if (chmod(tmp, 0755) != 0) return ap_err_errno(err, AP_ERR_IO, errno, "%s: chmod", tmp);
    ap_status st = ap_fsync_dir(tmp, err);
    return st ? st : ap_replace_dir(tmp, target, replace, err);
}

/* ---- comparing trees, locks, removing one file ------------------------------------ */

static int files_equal_at(int da, int db, const char *name)
{
    int fa = openat(da, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int fb = openat(db, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sa, sb;
    int eq = fa >= 0 && fb >= 0 && fstat(fa, &sa) == 0 && fstat(fb, &sb) == 0 &&
             S_ISREG(sa.st_mode) && S_ISREG(sb.st_mode) && sa.st_size == sb.st_size;
    char *ba = eq ? malloc(1 << 16) : NULL, *bb = eq ? malloc(1 << 16) : NULL;
    if (eq && (!ba || !bb)) eq = 0;
    while (eq) {
        ssize_t ra = read(fa, ba, 1 << 16);
        if (ra < 0 && errno == EINTR) continue;
        if (ra <= 0) {
            eq = ra == 0;
            break;
        }
        size_t got = 0;
        while (got < (size_t)ra) {
            ssize_t rb = read(fb, bb + got, (size_t)ra - got);
            if (rb < 0 && errno == EINTR) continue;
            if (rb <= 0) break;
            got += (size_t)rb;
        }
        eq = got == (size_t)ra && memcmp(ba, bb, got) == 0;
    }
    free(ba);
    free(bb);
    if (fa >= 0) close(fa);
    if (fb >= 0) close(fb);
    return eq;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* The sorted names in directory fd (without . and ..); NULL on error. */
static char **dir_names(int fd, size_t *n)
{
    *n = 0;
    int dup_fd = dup(fd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0) close(dup_fd);
        return NULL;
    }
    size_t cap = 16, got = 0;
    char **v = malloc(cap * sizeof *v);
    int ok = v != NULL;
    struct dirent *e;
    while (ok && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (got == cap) {
            char **g = realloc(v, cap * 2 * sizeof *v);
            if (!g) {
                ok = 0;
                break;
            }
            v = g;
            cap *= 2;
        }
        char *name = strdup(e->d_name);
        if (!name) {
            ok = 0;
            break;
        }
        v[got++] = name;
    }
    closedir(d);
    if (!ok) {
        free_names(v, got);
        return NULL;
    }
    qsort(v, got, sizeof *v, cmp_str);
    *n = got;
    return v;
}

static int tree_equal_at(int da, int db, int depth)
{
    size_t na, nb;
    char **a = dir_names(da, &na), **b = dir_names(db, &nb);
    int eq = a && b && na == nb && depth < 32;
    for (size_t i = 0; eq && i < na; i++)
        eq = strcmp(a[i], b[i]) == 0;
    for (size_t i = 0; eq && i < na; i++) {
        struct stat sa, sb;
        if (fstatat(da, a[i], &sa, AT_SYMLINK_NOFOLLOW) != 0 ||
            fstatat(db, a[i], &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            (sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) {
            eq = 0;
        } else if (S_ISREG(sa.st_mode)) {
            eq = files_equal_at(da, db, a[i]);
        } else if (S_ISDIR(sa.st_mode)) {
            int ca = openat(da, a[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int cb = openat(db, a[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            eq = ca >= 0 && cb >= 0 && tree_equal_at(ca, cb, depth + 1);
            if (ca >= 0) close(ca);
            if (cb >= 0) close(cb);
        } else {
            eq = 0; /* symlinks and special files are never what a command writes */
        }
    }
    for (size_t i = 0; a && i < na; i++)
        free(a[i]);
    for (size_t i = 0; b && i < nb; i++)
        free(b[i]);
    free(a);
    free(b);
    return eq;
}

bool ap_tree_equal(const char *a, const char *b)
{
    int da = open(a, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int db = open(b, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    bool eq = da >= 0 && db >= 0 && tree_equal_at(da, db, 0);
    if (da >= 0) close(da);
    if (db >= 0) close(db);
    return eq;
}

int ap_dir_entries(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n;
    char **v = dir_names(fd, &n);
    close(fd);
    if (!v) return -1;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    return n > INT_MAX ? INT_MAX : (int)n;
}

ap_status ap_dir_lock(const char *dir, int *fd, ap_err *err)
{
    *fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0)
        return ap_err_errno(err, errno == ENOENT ? AP_ERR_NOTFOUND : AP_ERR_IO, errno, "%s", dir);
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0) return AP_OK;
    int e = errno;
    close(*fd);
    *fd = -1;
    if (e == EWOULDBLOCK)
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s: another annpack command is changing it (it holds the lock); try "
                          "again when it is done",
                          dir);
    return ap_err_errno(err, AP_ERR_IO, e, "%s: lock", dir);
}

void ap_dir_unlock(int fd)
{
    if (fd >= 0) close(fd);
}

ap_status ap_unlink_in(const char *dir, const char *name, bool *removed, ap_err *err)
{
    if (removed) *removed = false;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ap_err_errno(err, AP_ERR_IO, errno, "%s", dir);
    ap_status st = AP_OK;
    if (unlinkat(fd, name, 0) == 0) {
        if (removed) *removed = true;
        if (fsync(fd) != 0 && errno != EINVAL)
            st = ap_err_errno(err, AP_ERR_IO, errno, "%s: fsync", dir);
    } else if (errno != ENOENT) {
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s/%s: cannot remove", dir, name);
    }
    close(fd);
    return st;
}
