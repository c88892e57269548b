/* Opening a per-list sidecar of a pack (internal to core): what the readers of pack.sq8
 * (format/sidecar.c) and pack.bits (format/bits.c) share. Both files are mapped whole,
 * start with a header of magic, version and header size that states dim, n_lists and
 * n_vectors at bytes 12, 16 and 20 (they must be the pack's), and hold a u32 count per
 * list that must be the ANNP list's. What lies between is the kind's to check. */
#ifndef ANNPACK_CORE_LIST_SIDECAR_H
#define ANNPACK_CORE_LIST_SIDECAR_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/format.h"
#include "annpack/status.h"

/* The first member of a reader's struct (ap_sq8, ap_bits), so that the opener allocates
 * and frees the whole struct. */
typedef struct ap_list_sidecar {
    char *path;
    const uint8_t *map;
    size_t size;
    uint32_t dim, n_lists, n_vectors; /* as the header states them: the pack's */
    uint64_t *first;                  /* n_lists + 1: first vector of each list */
} ap_list_sidecar;

typedef struct ap_list_sidecar_kind {
    uint32_t magic, version, header_size;
    const char *what;   /* named when the magic is not ours: "an int8 sidecar" */
    size_t reader_size; /* sizeof the reader's struct */
    /* Checks the kind's own header fields, layout and parts once the shared header fields
     * passed, keeps what the reader needs, and sets *counts to where the counts lie. */
    ap_status (*check)(ap_list_sidecar *sc, uint64_t *counts, ap_err *err);
    /* Frees what check allocated (also after a failed check); NULL: nothing. */
    void (*release)(ap_list_sidecar *sc);
} ap_list_sidecar_kind;

/* Maps the sidecar (fd: size bytes, called name) and checks it against the pack's ANNP
 * file a; one error naming the file and the field on any mismatch. *out is a reader's
 * struct of k->reader_size bytes (ap_list_sidecar_close). */
ap_status ap_list_sidecar_open_fd(int fd, uint64_t size, const char *name, const ap_annp *a,
                                  const ap_list_sidecar_kind *k, ap_list_sidecar **out,
                                  ap_err *err);
/* The same, opening the regular file at path. */
ap_status ap_list_sidecar_open(const char *path, const ap_annp *a, const ap_list_sidecar_kind *k,
                               ap_list_sidecar **out, ap_err *err);
/* NULL is a no-op. */
void ap_list_sidecar_close(ap_list_sidecar *sc, const ap_list_sidecar_kind *k);

#endif
