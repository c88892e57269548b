/* The state= file: the highest version the mount has accepted, so a replay of an older
 * signed packset is refused across restarts. Its format is exactly {"version":N} and a
 * newline; anything else is corrupt, and a state that cannot be read or parsed refuses
 * the mount (failing open would reset the floor to 0 and accept any older version). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"

#define MAX_SAFE_INT ((1ull << 53) - 1) /* what every JSON reader reads exactly */

ap_status fs_state_parse(const char *buf, size_t len, uint64_t *version, ap_err *err)
{
    static const char head[] = "{\"version\":";
    const size_t hl = sizeof head - 1;
    const char *p = buf, *end = buf + len;
    if (len > FS_STATE_MAX)
        return ap_err_set(err, AP_ERR_FORMAT, "%zu bytes, more than a state file's %d", len,
                          FS_STATE_MAX);
    if (len < hl || memcmp(p, head, hl) != 0) goto bad;
    p += hl;
    const char *digits = p;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9' && p - digits < 17)
        v = v * 10 + (uint64_t)(*p++ - '0');
    size_t nd = (size_t)(p - digits);
    if (nd == 0 || (nd > 1 && digits[0] == '0') || (p < end && *p >= '0' && *p <= '9')) goto bad;
    if (v > MAX_SAFE_INT) goto bad;
    if (p == end || *p++ != '}') goto bad;
    if (p < end && *p == '\n') p++;
    if (p != end) goto bad;
    *version = v;
    return AP_OK;
bad:
    return ap_err_set(err, AP_ERR_FORMAT,
                      "corrupt: expected {\"version\":N} with N a decimal integer below 2^53");
}

ap_status fs_read_file(const char *path, size_t max, char **out, size_t *len, ap_err *err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return ap_err_set(err, errno == ENOENT ? AP_ERR_NOTFOUND : AP_ERR_IO, "cannot open it: %s",
                          strerror(errno));
    struct stat sb;
    ap_status st = AP_OK;
    char *buf = NULL;
    if (fstat(fd, &sb) != 0) {
        st = ap_err_set(err, AP_ERR_IO, "cannot stat it: %s", strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        st = ap_err_set(err, AP_ERR_FORMAT, "not a regular file");
    } else if ((uint64_t)sb.st_size > max) {
        st = ap_err_set(err, AP_ERR_LIMIT, "%llu bytes, more than the %zu expected",
                        (unsigned long long)sb.st_size, max);
    } else if (!(buf = malloc(max + 1))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    } else {
        size_t got = 0;
        for (;;) {
            ssize_t r = read(fd, buf + got, max + 1 - got);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                st = ap_err_set(err, AP_ERR_IO, "cannot read it: %s", strerror(errno));
                break;
            }
            if (r == 0) break;
            got += (size_t)r;
            if (got > max) {
                st = ap_err_set(err, AP_ERR_LIMIT, "more than the %zu bytes expected", max);
                break;
            }
        }
        if (!st) {
            buf[got] = '\0';
            *out = buf;
            *len = got;
            buf = NULL;
        }
    }
    free(buf);
    close(fd);
    return st;
}

ap_status fs_state_load(const char *path, uint64_t *version, ap_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    ap_err e = {0};
    ap_status st = fs_read_file(path, FS_STATE_MAX, &buf, &len, &e);
    if (st == AP_ERR_NOTFOUND) return ap_err_set(err, st, "state file %s does not exist", path);
    if (!st) st = fs_state_parse(buf, len, version, &e);
    free(buf);
    if (st) return ap_err_set(err, st, "state file %s: %s", path, e.msg);
    return AP_OK;
}

static ap_status fsync_dir(const char *path, ap_err *err)
{
    char *copy = strdup(path);
    if (!copy) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    char *slash = strrchr(copy, '/');
    const char *dir = slash ? (slash == copy ? "/" : (*slash = '\0', copy)) : ".";
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ap_status st = AP_OK;
    if (fd < 0 || fsync(fd) != 0)
        st = ap_err_set(err, AP_ERR_IO, "state file %s: cannot sync its directory: %s", path,
                        strerror(errno));
    if (fd >= 0) close(fd);
    free(copy);
    return st;
}

ap_status fs_state_save(const char *path, uint64_t version, ap_err *err)
{
    char buf[FS_STATE_MAX + 1];
    int n = snprintf(buf, sizeof buf, "{\"version\":%llu}\n", (unsigned long long)version);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    /* mkstemp creates the file with O_CREAT | O_EXCL: nothing planted under that name (a
     * symlink included) is ever opened. */
    snprintf(tmp, plen + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        ap_status st = ap_err_set(err, AP_ERR_IO,
                                  "state file %s: cannot create a temporary "
                                  "file beside it: %s",
                                  path, strerror(errno));
        free(tmp);
        return st;
    }
    ap_status st = AP_OK;
    const char *what = NULL;
    ssize_t w = 0;
    if (fchmod(fd, 0644) != 0) {
        what = "chmod";
    } else if ((w = write(fd, buf, (size_t)n)) != n) {
        what = "write";
        if (w >= 0) errno = ENOSPC; /* a short write */
    } else if (fsync(fd) != 0) {
        what = "fsync";
    }
    if (what)
        st = ap_err_set(err, AP_ERR_IO, "state file %s: %s %s: %s", path, what, tmp,
                        strerror(errno));
    if (close(fd) != 0 && !st)
        st = ap_err_set(err, AP_ERR_IO, "state file %s: close %s: %s", path, tmp, strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = ap_err_set(err, AP_ERR_IO, "state file %s: cannot rename %s over it: %s", path, tmp,
                        strerror(errno));
    if (st)
        unlink(tmp);
    else
        st = fsync_dir(path, err);
    free(tmp);
    return st;
}
