/* What every change of a packset shares (internal to core; ops.c). */
#ifndef ANNPACK_CORE_PACKSET_OPS_H
#define ANNPACK_CORE_PACKSET_OPS_H

#include <cjson/cJSON.h>

#include "annpack/packset.h"
#include "faults.h" /* ap_crash_point, for the crash points of the operations */
#include "view.h"

/* A packset being changed: locked (ap_dir_lock), verified (ap_change_opts), its root
 * manifest loaded. */
typedef struct ap_change {
    const char *dir;
    int lock_fd;
    ap_root_manifest m;
    char *base_dir;  /* dir/base path */
    bool was_signed; /* DIR/pack.manifest.json.sig was present */
} ap_change;

/* Locks, verifies and loads the packset dir for a change. what names the operation in
 * messages ("append", "revert"...). A change that reads the layers' data to write new data
 * (reads_data: build-delta's calibration, rebase) verifies every hash first; one that only
 * adds or drops layers (append, promote, revert) checks the signature and what the root
 * manifest pins of each layer (ap_view_check_pins), so it costs O(what it writes), and
 * copies the kept layers' hashes unchanged (ap_change_next_root). On error nothing is
 * held. */
ap_status ap_change_begin(const char *dir, const ap_change_opts *co, const char *what,
                          bool reads_data, ap_change *c, ap_err *err);
void ap_change_end(ap_change *c);

/* The root manifest of the next version: the loaded one with version + 1 and only its
 * first keep deltas, every kept entry copied as it is (its hashes were just verified:
 * nothing is re-hashed, so bytes changed since are never laundered into the new version). */
cJSON *ap_change_next_root(const ap_change *c, size_t keep, ap_err *err);

/* Writes root as dir/pack.manifest.json atomically, then removes the signature of the old
 * version (it does not sign the new one). Crash points "<step>:before-manifest" and
 * "<step>:after-manifest" (after the rename, before the signature is removed). */
ap_status ap_change_commit(ap_change *c, const cJSON *root, const char *step, ap_err *err);

/* Whether the paths a and b (relative, checked) are equal or one contains the other. */
bool ap_paths_overlap(const char *a, const char *b);

/* The output of rebase and create: a missing or empty directory, an unsigned packset
 * (compared with the result when it is published), or anything with force; otherwise
 * AP_ERR_EXISTS. *exists says whether it exists. */
ap_status ap_check_packset_out(const char *out, bool force, bool *exists, ap_err *err);

/* Publishes tmp as out after ap_check_packset_out: an out identical to tmp is kept (tmp
 * removed), a different one replaced atomically only with force. */
ap_status ap_publish_packset_out(const char *tmp, const char *out, bool exists, bool force,
                                 ap_err *err);

#endif
