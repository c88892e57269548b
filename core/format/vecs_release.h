/* Letting go of a vector file's mapped pages (internal: the build reads 1M-row files once,
 * front to back, and must not keep them resident next to its own copy of the rows). */
#ifndef AP_VECS_RELEASE_H
#define AP_VECS_RELEASE_H

#include <stddef.h>

#include "annpack/vecs.h"

/* Drops the mapped pages wholly before row `row` from the process (MADV_DONTNEED): they
 * stop counting in its RSS and are read back from the page cache or the file if a row
 * there is touched again, so every row pointer stays valid. */
void ap_vecs_release_before(const ap_vecs *v, size_t row);

#endif
