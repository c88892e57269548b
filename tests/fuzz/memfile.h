/* Fuzz helper: the readers of vector files and sidecars take paths, so fuzz inputs are put
 * in an anonymous memory file and read back through /proc/self/fd. */
#ifndef ANNPACK_FUZZ_MEMFILE_H
#define ANNPACK_FUZZ_MEMFILE_H

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes data to a new memfd; fills path; returns the fd (-1 on failure). */
static inline int memfile(const void *data, size_t size, char path[64])
{
    int fd = memfd_create("annpack-fuzz", MFD_CLOEXEC);
    if (fd < 0) return -1;
    const char *p = data;
    size_t left = size;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
