/* File mappings for the scanned files: see mapping.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mapping.h"

#define HUGE_ALIGN (2u << 20)

ap_status ap_map_file(int fd, size_t size, const char *path, const void **out, ap_err *err)
{
    *out = NULL;
    if (size < HUGE_ALIGN) {
        void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) return ap_err_errno(err, AP_ERR_IO, errno, "%s: mmap", path);
        *out = m;
        return AP_OK;
    }
    /* Reserve size + 2 MiB of address space, map the file at the first aligned address
     * inside it, and give back the slack on both sides. */
    size_t span = size + HUGE_ALIGN;
    char *res = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (res == MAP_FAILED) return ap_err_errno(err, AP_ERR_IO, errno, "%s: mmap", path);
    char *at = (char *)(((uintptr_t)res + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
    void *m = mmap(at, size, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    if (m == MAP_FAILED) {
        int e = errno;
        munmap(res, span);
        return ap_err_errno(err, AP_ERR_IO, e, "%s: mmap", path);
    }
    if (at > res) munmap(res, (size_t)(at - res));
    size_t tail_at = (size_t)(at - res) + ((size + 4095) & ~(size_t)4095);
    if (tail_at < span) munmap(res + tail_at, span - tail_at);
    madvise(m, size, MADV_HUGEPAGE); /* a hint: without THP support it changes nothing */
    *out = m;
    return AP_OK;
}

void ap_unmap_file(const void *p, size_t size)
{
    /* The mapping is read-only to everyone else; munmap takes it back whole. */
    if (p && size) munmap((void *)(uintptr_t)p, size);
}

void ap_mapping_release(const void *p, size_t size)
{
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095;
    if (p && size) (void)madvise((void *)a, size + ((uintptr_t)p - a), MADV_DONTNEED);
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

void ap_cache_warm(int fd, uint64_t size)
{
    if (size < 2 * HUGE_ALIGN || size > SIZE_MAX / 2) return;
    const void *m;
    if (ap_map_file(fd, (size_t)size, "", &m, NULL) != AP_OK) return;
    /* Faults through the huge-page mapping read the file in as 2 MiB folios. Populating
     * reports a vanished page as an error, where touching it would raise SIGBUS. It goes a
     * window at a time, each unmapped from the process once read (the folios stay in the
     * page cache): warming a 1 GB file must not add 1 GB to the caller's RSS, e.g. the
     * builder's, which still holds every row while it hashes what it wrote. */
    const size_t window = 32 * HUGE_ALIGN;
    for (size_t at = 0; at < (size_t)size; at += window) {
        size_t len = (size_t)size - at < window ? (size_t)size - at : window;
        uint8_t *w = (uint8_t *)(uintptr_t)m + at;
        if (madvise(w, len, MADV_POPULATE_READ) != 0) break;
        (void)madvise(w, len, MADV_DONTNEED);
    }
    ap_unmap_file(m, (size_t)size);
}

int ap_is_scanned_file(const char *path)
{
    size_t n = strlen(path);
    return (n >= 8 && strcmp(path + n - 8, ".annpack") == 0) ||
           (n >= 4 && strcmp(path + n - 4, ".sq8") == 0);
}

void ap_drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}
