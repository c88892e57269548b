/* Writing a per-list sidecar of a pack being built (internal to the builder): what the
 * writers of pack.sq8 (sidecar_build.c) and pack.bits (bits_build.c) share. The file is
 * created new (O_EXCL), its head (header, the kind's parts and the u32 count per list)
 * written first, then each list's bytes in list order; it is fsynced when complete and
 * removed when not. */
#ifndef AP_LIST_SIDECAR_WRITE_H
#define AP_LIST_SIDECAR_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "annpack/status.h"

typedef struct ap_list_sidecar_writer {
    char *path;
    FILE *f;
} ap_list_sidecar_writer;

/* Fills in the n_lists counts at head + counts_at, creates DIR/name and writes the head's
 * head_size bytes. On failure nothing is left on disk; w is then for
 * ap_list_sidecar_writer_close only. */
ap_status ap_list_sidecar_writer_open(ap_list_sidecar_writer *w, const char *dir, const char *name,
                                      uint8_t *head, size_t head_size, uint64_t counts_at,
                                      const uint32_t *counts, uint32_t n_lists, ap_err *err);
/* Appends n bytes (the next list's, or part of them). */
ap_status ap_list_sidecar_writer_put(ap_list_sidecar_writer *w, const void *p, size_t n,
                                     ap_err *err);
/* ok: flushes, fsyncs and closes (the file is removed if that fails); !ok: closes and
 * removes the file (err may be NULL). Frees what w holds; a w never opened is a no-op. */
ap_status ap_list_sidecar_writer_close(ap_list_sidecar_writer *w, bool ok, ap_err *err);

#endif
