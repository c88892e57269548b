/* ANNP files opened for lazy checking (internal to core; docs/SECURITY.md "What is read
 * before it is checked"). */
#ifndef ANNPACK_CORE_ANNP_DEFERRED_H
#define ANNPACK_CORE_ANNP_DEFERRED_H

#include <stdint.h>

#include "annpack/format.h"
#include "annpack/status.h"

/* As ap_annp_open_fd, but each list's count is the one its offset-table length implies
 * (a length that is not 4 + count x (8 + 2 dim) is refused): no list is read at open. */
ap_status ap_annp_open_fd_deferred(int fd, uint64_t size, const char *name, ap_annp **out,
                                   ap_err *err);

/* For a file opened deferred: list i's stored count against its length (AP_ERR_FORMAT
 * naming the file and the list); call it after the list's bytes are checked. AP_OK
 * otherwise. Reads the mapping. */
ap_status ap_annp_check_count(const ap_annp *a, uint32_t i, ap_err *err);

#endif
