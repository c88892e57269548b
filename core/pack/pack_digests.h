/* A pack's pack.digests as opened (internal to core): read whole from its descriptor,
 * checked against the signed manifest's listing, parsed, matched to the manifest's files,
 * and its ranges matched to each file's structure. docs/FORMAT.md, "pack.digests". */
#ifndef ANNPACK_CORE_PACK_DIGESTS_H
#define ANNPACK_CORE_PACK_DIGESTS_H

#include "annpack/format.h"
#include "digest_table.h"
#include "lazy.h"
#include "manifest.h"
#include "source.h"

typedef struct ap_pack_digests {
    uint8_t *raw; /* the table's bytes (what t points into) */
    size_t len;
    ap_digest_table t;
    ap_lazy *lazy; /* the range checker over the pack's open files */
} ap_pack_digests;

/* Reads the table from s (listed as f), checks size and SHA-256 against the listing, parses
 * it and checks it covers exactly the manifest's other files with their listed sizes.
 * AP_ERR_VERIFY naming the file otherwise. */
ap_status ap_pack_digests_load(const ap_src *s, const ap_manifest_file *f,
                               const ap_pack_manifest *m, ap_pack_digests *d, ap_err *err);

/* Checks that the ranges of the files with a structure follow it (digest_layout.h): annp is
 * the pack's opened ANNP file, meta the rows file (mapped here for its seek table when it
 * is zstd). AP_ERR_VERIFY naming the file. */
ap_status ap_pack_digests_check_layout(const ap_pack_digests *d, const ap_annp *annp,
                                       const ap_src *meta, const char *meta_name, ap_err *err);

void ap_pack_digests_free(ap_pack_digests *d);

#endif
