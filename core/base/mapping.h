/* Read-only file mappings for the scanned files (internal to core).
 *
 * Search streams pack.annpack and pack.sq8 at the memory bandwidth, which 4 KiB pages do
 * not reach (a TLB miss and a stopped hardware prefetcher at every page boundary). So
 * these files are mapped at a 2 MiB-aligned address with MADV_HUGEPAGE: page-cache
 * folios faulted in through such a mapping are 2 MiB and get mapped by PMD. Pages already
 * cached in small folios stay small; ap_drop_cache lets the writer of a file leave none. */
#ifndef ANNPACK_CORE_MAPPING_H
#define ANNPACK_CORE_MAPPING_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/status.h"

/* Maps size bytes of fd read-only (shared) as described above; path for messages. */
ap_status ap_map_file(int fd, size_t size, const char *path, const void **out, ap_err *err);
void ap_unmap_file(const void *p, size_t size);

/* Takes the pages of such a mapping out of the process's page tables (MADV_DONTNEED): they
 * stay in the page cache and are faulted back in on the next access. For files read whole
 * once at open whose bytes are then used a few at a time (a delta layer's lists), so that
 * the reading does not stay in the daemon's RSS. */
void ap_mapping_release(const void *p, size_t size);

/* Reads fd's first size bytes into the page cache through such a mapping, so they are
 * cached as huge folios (best effort, for files of at least 4 MiB; errors ignored). Used
 * before hashing a file with read(2), which would otherwise cache it in small folios. */
void ap_cache_warm(int fd, uint64_t size);

/* Whether path names a file searches map and stream (*.annpack, *.sq8): the ones worth
 * ap_cache_warm before hashing. */
int ap_is_scanned_file(const char *path);

/* Drops path's clean pages from the page cache (best effort; errors ignored). */
void ap_drop_cache(const char *path);

#endif
