/* Opening a pack directory beneath a directory descriptor, checking as it goes (internal
 * to core). Shared by plain opens, verification and the mount: each file is opened once,
 * hashed from that descriptor when hashing is asked for, and read or mapped from it. */
#ifndef ANNPACK_CORE_PACK_OPEN_H
#define ANNPACK_CORE_PACK_OPEN_H

#include <stdbool.h>

#include "annpack/pack.h"
#include "digest.h"
#include "filter.h"
#include "manifest.h"
#include "report.h"
#include "source.h"

/* What the opener checks besides structure. */
typedef struct ap_checks {
    bool hash;      /* every listed file's size and SHA-256, and no unlisted file */
    bool deep;      /* plus the deep structure checks (ap_pack_check_deep) */
    bool lazy;      /* with hash and a pack.digests: eagerly only the table, the heads and the
                       small files; each list and frame on first use (lazy.h) */
    ap_report *rep; /* may be NULL: every check is recorded there */
    ap_progress_fn progress;
    void *progress_ud;
} ap_checks;

/* What a packset's root manifest says about one of its layers (all may be NULL). */
typedef struct ap_pack_expect {
    const char *sha256_manifest;          /* of the layer's pack.manifest.json */
    const char *annpack, *sha256_annpack; /* file names in the layer and their hashes */
    const char *meta, *sha256_meta;
    bool delta; /* a delta layer: tombstones.jsonl and delta.manifest.json are expected */
} ap_pack_expect;

/* Opens the pack in dirfd. display names the directory in messages; prefix (NULL for a
 * single pack) prefixes file names in the report. raw/raw_len: the manifest bytes when
 * the caller has read them already (a single pack is its own root manifest; ownership
 * passes), else NULL. */
ap_status ap_pack_open_at(int dirfd, const char *display, const char *prefix, char *raw,
                          size_t raw_len, const ap_pack_expect *ex, const ap_checks *cx,
                          ap_pack **out, ap_err *err);

/* The files of p that stay mapped (annpack, meta rows, idx, sq8), for change detection;
 * entries with fd -1 are files this pack does not have. */
size_t ap_pack_sources(const ap_pack *p, const ap_src **out);

const ap_pack_manifest *ap_pack_manifest_of(const ap_pack *p);
/* A delta's delta.lists entries (delta_lists.h: ap_delta_lists_at, one per vector in
 * file order), or NULL when it has none; *base_lists: the base list count they name.
 * Borrowed from p. */
const uint8_t *ap_pack_delta_lists(const ap_pack *p, uint32_t *base_lists);

/* The pack's filter sets (pack.filter), or NULL when it has none. */
const ap_filter *ap_pack_filter(const ap_pack *p);

/* Before list i's bytes are used: its ranges in the ANNP file and the sidecar checked
 * against pack.digests (a no-op without a table or when not opened with hashes).
 * AP_ERR_VERIFY naming the file and the list. Thread-safe. */
ap_status ap_pack_check_list(const ap_pack *p, uint32_t list, ap_err *err);

/* Whether p's lists are checked on first use (ap_pack_check_list): not all are yet. */
bool ap_pack_is_lazy(const ap_pack *p);

/* The same for bytes [off, off + len) of the pack's file name (the ANNP file, the sidecar
 * or the rows; other names: AP_OK). */
ap_status ap_pack_check_bytes(const ap_pack *p, const char *name, uint64_t off, uint64_t len,
                              ap_err *err);

/* What range verification has done so far in an open pack. */
typedef struct ap_verify_counts {
    bool digests;                 /* the pack has a table and was opened with hashes */
    uint64_t hashed;              /* ranges hashed (each at most once per open pack) */
    uint64_t bad;                 /* ranges found not to match */
    uint64_t total;               /* ranges covered */
    char bad_msg[AP_ERR_MSG_MAX]; /* the first failure ("" when none) */
} ap_verify_counts;
void ap_pack_verify_counts(const ap_pack *p, ap_verify_counts *c);

/* Checks not-yet-checked ranges in order, up to about max_bytes of them (at least one);
 * *done once none is left. A bad range is recorded (ap_pack_verify_counts) and skipped. */
ap_status ap_pack_verify_step(const ap_pack *p, uint64_t max_bytes, bool *done, ap_err *err);
const char *ap_pack_dir(const ap_pack *p);

/* Deep structure checks of an opened pack (ids, norms, rows, sidecar codes, filter sets); *bad_file
 * receives the failing file's name within the pack. */
ap_status ap_pack_check_deep(const ap_pack *p, const ap_checks *cx, const char **bad_file,
                             ap_err *err);

/* The canonical description (ap_embedder_describe, malloc'd into *desc) of the embedder an
 * "embedder" block of a manifest names; the block is refused as ap_embedder_from_json
 * refuses it (name for messages). */
ap_status ap_embedder_block_describe(const cJSON *block, const char *name, char **desc,
                                     ap_err *err);

/* Whether a file name could change a pack's meaning if a reader picked it up. */
bool ap_meaningful_name(const char *name);

#endif
