/* Atomic filesystem operations: see fsops.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    while (n > 1 && copy[n - 1] == '/') copy[--n] = '\0';
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

static void rmtree_at(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        DIR *d = fdopendir(fd);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                if (unlinkat(fd, e->d_name, 0) != 0 && (errno == EISDIR || errno == EPERM))
                    rmtree_at(fd, e->d_name);
            }
            closedir(d);
        } else {
            close(fd);
        }
    }
    unlinkat(dfd, name, AT_REMOVEDIR);
}

void ap_rmtree(const char *path)
{
    if (path) rmtree_at(AT_FDCWD, path);
}

ap_status ap_fsync_dir(const char *dir, ap_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ap_err_errno(err, AP_ERR_IO, errno, "%s", dir);
    int r = fsync(fd);
    int e = errno;
    close(fd);
    /* Some filesystems refuse fsync on directories; the rename is still ordered. */
    if (r != 0 && e != EINVAL && e != EROFS) return ap_err_errno(err, AP_ERR_IO, e, "%s: fsync", dir);
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

ap_status ap_write_file_atomic(const char *path, const void *data, size_t len, int mode,
                               ap_err *err)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        ap_status st = ap_err_errno(err, AP_ERR_IO, errno, "%s: cannot create temporary file", path);
        free(tmp);
        return st;
    }
    ap_status st = AP_OK;
    if (fchmod(fd, (mode_t)mode) != 0) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: chmod", tmp);
    if (!st) st = write_fd(fd, data, len, tmp, err);
    if (close(fd) != 0 && !st) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: close", tmp);
    if (!st && rename(tmp, path) != 0) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: rename", path);
    if (st) {
        unlink(tmp);
    } else {
        char *dir = ap_dirname(path);
        st = dir ? ap_fsync_dir(dir, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        free(dir);
    }
    free(tmp);
    return st;
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

ap_status ap_replace_dir(const char *tmp, const char *target, ap_err *err)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_NOREPLACE) == 0) goto synced;
    if (errno != EEXIST)
        return ap_err_errno(err, AP_ERR_IO, errno, "cannot rename %s to %s", tmp, target);
    /* Swap the new tree in atomically; the old one ends up at tmp and is removed. */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_EXCHANGE) != 0)
        return ap_err_errno(err, AP_ERR_IO, errno, "cannot replace %s", target);
    ap_rmtree(tmp);
synced:;
    char *parent = ap_dirname(target);
    ap_status st = parent ? ap_fsync_dir(parent, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
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
            if (k < 0) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: write", dst);
            else w += k;
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

ap_status ap_publish_dir(const char *tmp, const char *target, ap_err *err)
{
    if (chmod(tmp, 0755) != 0) return ap_err_errno(err, AP_ERR_IO, errno, "%s: chmod", tmp);
    ap_status st = ap_fsync_dir(tmp, err);
    return st ? st : ap_replace_dir(tmp, target, err);
}
