/* Writing a per-list sidecar (pack.sq8, pack.bits): see list_sidecar_write.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "endian.h"
#include "fsops.h"
#include "list_sidecar_write.h"

ap_status ap_list_sidecar_writer_open(ap_list_sidecar_writer *w, const char *dir, const char *name,
                                      uint8_t *head, size_t head_size, uint64_t counts_at,
                                      const uint32_t *counts, uint32_t n_lists, ap_err *err)
{
    *w = (ap_list_sidecar_writer){0};
    if (!(w->path = ap_path_join(dir, name))) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (uint32_t l = 0; l < n_lists; l++)
        ap_put32(head + counts_at + 4ull * l, counts[l]);
    int fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return ap_err_errno(err, errno == EEXIST ? AP_ERR_EXISTS : AP_ERR_IO, errno, "%s", w->path);
    if (!(w->f = fdopen(fd, "wb"))) {
        close(fd);
        unlink(w->path);
        return ap_err_errno(err, AP_ERR_IO, errno, "%s", w->path);
    }
    setvbuf(w->f, NULL, _IOFBF, 1 << 20);
    return ap_list_sidecar_writer_put(w, head, head_size, err);
}

ap_status ap_list_sidecar_writer_put(ap_list_sidecar_writer *w, const void *p, size_t n,
                                     ap_err *err)
{
    if (n && fwrite(p, 1, n, w->f) != n)
        return ap_err_errno(err, AP_ERR_IO, errno, "%s: write", w->path);
    return AP_OK;
}

ap_status ap_list_sidecar_writer_close(ap_list_sidecar_writer *w, bool ok, ap_err *err)
{
    ap_status st = AP_OK;
    if (w->f) {
        if (ok && fflush(w->f) != 0) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: write", w->path);
        if (ok && !st && fsync(fileno(w->f)) != 0)
            st = ap_err_errno(err, AP_ERR_IO, errno, "%s: fsync", w->path);
        if (fclose(w->f) != 0 && ok && !st)
            st = ap_err_errno(err, AP_ERR_IO, errno, "%s: close", w->path);
        if (!ok || st) unlink(w->path);
    }
    free(w->path);
    *w = (ap_list_sidecar_writer){0};
    return st;
}
