/* Source files opened once beneath a directory descriptor: see source.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fsops.h"
#include "source.h"

/* openat2(2) has no glibc wrapper in Debian 12. */
static int openat2_beneath(int dirfd, const char *rel, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
}

/* Without openat2 (kernels before 5.6): walk the components without following any
 * symlink. Manifest paths never hold "..", so this cannot leave dirfd either. */
static int walk_nofollow(int dirfd, const char *rel, int flags)
{
    char *copy = strdup(rel);
    if (!copy) {
        errno = ENOMEM;
        return -1;
    }
    int fd = dup(dirfd);
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c && fd >= 0;) {
        char *next = strtok_r(NULL, "/", &save);
        int f = next ? O_RDONLY | O_DIRECTORY : flags;
        int nfd = openat(fd, c, f | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        errno = e;
        fd = nfd;
        c = next;
    }
    free(copy);
    return fd;
}

static int open_beneath(int dirfd, const char *rel, int flags)
{
    static int no_openat2;
    if (!__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
        int fd = openat2_beneath(dirfd, rel, flags);
        if (fd >= 0 || errno != ENOSYS) return fd;
        __atomic_store_n(&no_openat2, 1, __ATOMIC_RELAXED);
    }
    return walk_nofollow(dirfd, rel, flags);
}

static ap_status open_error(int e, const char *display, const char *rel, ap_err *err)
{
    if (e == ENOENT) return ap_err_errno(err, AP_ERR_NOTFOUND, e, "%s/%s", display, rel);
    if (e == EXDEV || e == ELOOP)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s/%s: the path leaves the directory (a symlink or a path escape)",
                          display, rel);
    return ap_err_errno(err, AP_ERR_IO, e, "%s/%s", display, rel);
}

ap_status ap_dir_open_beneath(int dirfd, const char *rel, const char *display, int *fd, ap_err *err)
{
    if (!rel || !strcmp(rel, ".")) {
        *fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
        return *fd >= 0 ? AP_OK : ap_err_errno(err, AP_ERR_IO, errno, "%s", display);
    }
    *fd = open_beneath(dirfd, rel, O_RDONLY | O_DIRECTORY);
    return *fd >= 0 ? AP_OK : open_error(errno, display, rel, err);
}

ap_status ap_dir_open_path(const char *path, int *fd, ap_err *err)
{
    *fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd >= 0) return AP_OK;
    return ap_err_errno(err, errno == ENOENT ? AP_ERR_NOTFOUND : AP_ERR_IO, errno, "%s", path);
}

ap_status ap_src_open(int dirfd, const char *rel, const char *display_dir, ap_src *s, ap_err *err)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    int fd = open_beneath(dirfd, rel, O_RDONLY);
    if (fd < 0) return open_error(errno, display_dir, rel, err);
    s->name = ap_path_join(display_dir, rel);
    ap_status st = AP_OK;
    if (!s->name)
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    else if (fstat(fd, &s->st) != 0)
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s", s->name);
    else if (!S_ISREG(s->st.st_mode))
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: not a regular file", s->name);
    if (st) {
        close(fd);
        free(s->name);
        s->name = NULL;
        return st;
    }
    s->fd = fd;
    s->size = (uint64_t)s->st.st_size;
    return AP_OK;
}

ap_status ap_src_read_at(const ap_src *s, uint64_t off, void *buf, size_t len, ap_err *err)
{
    char *p = buf;
    while (len) {
        ssize_t r = pread(s->fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return ap_err_errno(err, AP_ERR_IO, errno, "%s: read", s->name);
        if (r == 0)
            return ap_err_set(err, AP_ERR_VERIFY, "%s: shorter than when opened (changed?)",
                              s->name);
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return AP_OK;
}

ap_status ap_src_read(const ap_src *s, size_t max, char **out, size_t *len, ap_err *err)
{
    *out = NULL;
    if (s->size > max)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: %llu bytes exceeds the cap of %zu bytes", s->name,
                          (unsigned long long)s->size, max);
    char *buf = malloc((size_t)s->size + 1);
    if (!buf) return ap_err_set(err, AP_ERR_NOMEM, "%s: out of memory", s->name);
    ap_status st = ap_src_read_at(s, 0, buf, (size_t)s->size, err);
    if (st) {
        free(buf);
        return st;
    }
    buf[s->size] = '\0';
    *out = buf;
    if (len) *len = (size_t)s->size;
    return AP_OK;
}

ap_status ap_src_unchanged(const ap_src *s, ap_err *err)
{
    struct stat now;
    if (fstat(s->fd, &now) != 0) return ap_err_errno(err, AP_ERR_IO, errno, "%s", s->name);
    if (now.st_ino != s->st.st_ino || now.st_dev != s->st.st_dev || now.st_size != s->st.st_size ||
        now.st_mtim.tv_sec != s->st.st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != s->st.st_mtim.tv_nsec ||
        now.st_ctim.tv_sec != s->st.st_ctim.tv_sec || now.st_ctim.tv_nsec != s->st.st_ctim.tv_nsec)
        return ap_err_set(err, AP_ERR_VERIFY, "%s changed since it was verified", s->name);
    return AP_OK;
}

void ap_src_close(ap_src *s)
{
    if (!s) return;
    if (s->fd >= 0) close(s->fd);
    free(s->name);
    s->fd = -1;
    s->name = NULL;
}
