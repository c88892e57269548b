/* The mapping behind an open ANNP file (internal to core). */
#ifndef ANNPACK_CORE_ANNP_MAPPING_H
#define ANNPACK_CORE_ANNP_MAPPING_H

#include "annpack/format.h"

/* Takes a mapped file's pages out of the process's page tables (mapping.h,
 * ap_mapping_release); a no-op for a file opened from memory. */
void ap_annp_release_pages(const ap_annp *a);

#endif
