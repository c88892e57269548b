/* Internals of the merged view (internal to core). */
#ifndef ANNPACK_CORE_VIEW_H
#define ANNPACK_CORE_VIEW_H

#include <pthread.h>

#include <pthread.h>

#include "annpack/packset.h"
#include "annpack/sign.h"
#include "coarse.h"
#include "ivf.h"
#include "liveness.h"
#include "manifest.h"
#include "pack_open.h"
#include "root_manifest.h"

typedef struct ap_layer {
    uint64_t seq;
    char *dir;
    ap_pack *pack;
    uint64_t *tomb; /* sorted */
    size_t ntomb;
    uint8_t *dead; /* bit per position in the layer's ANNP file */
    /* A delta's calibrated default probe over base + delta (its delta manifest's
     * "calibration"), 0 when it has none. */
    uint32_t default_probe;
    cJSON *calibration; /* that manifest's "calibration" object (owned), or NULL */
} ap_layer;

struct ap_view {
    char *dir;
    bool packset;
    uint64_t version;
    ap_root_manifest root;
    ap_layer *layers;
    uint32_t nlayers;
    ap_mention *mentions; /* newest mention per id among deltas, sorted by id */
    size_t nmentions;
    uint64_t live;
    size_t *dstart; /* n_lists + 1 */
    ap_item *ditems;
    size_t nditems;
    uint64_t *layer_seq; /* layer index -> seq */
    uint8_t *dcodes;     /* sq8 codes of ditems under the base's params (or NULL) */
    /* Per base list, what is done the first time a search or the merged files use it,
     * after the list is checked: a lazily checked base's dead bits are set, and the codes
     * of the delta vectors grouped under it are encoded. */
    bool base_lazy;
    uint8_t *list_done;      /* per base list: ready (__atomic); NULL: nothing is lazy */
    pthread_mutex_t list_mu; /* serialises readying */
    ap_ivf ivf;              /* the search engine's view of all of the above */
    ap_coarse_cache coarse;  /* its centroid codes, built on first use */
};

/* The "calibration"."default_probe" of a manifest's build block or a delta manifest
 * (default_probe.c), 0 when absent or not a u32 >= 1. */
uint32_t ap_calibrated_probe(const cJSON *holder);

/* The "calibration" object ap_view_default_probe takes its probe from (the newest delta's
 * that has a usable one, else the base's build block's), or NULL when it uses the old
 * default: what the virtual pack's manifest carries so that a copy of it searches with
 * the same default probe. Borrowed from v. */
const cJSON *ap_view_calibration(const ap_view *v);

/* How ap_view_open_ex checks what it opens. */
typedef struct ap_view_open_opts {
    const ap_pubkey *keys; /* nkeys > 0: the root manifest's signature must verify */
    size_t nkeys;
    const char *sig_path; /* NULL: DIR/pack.manifest.json.sig */
    bool allow_expired;
    ap_checks checks; /* hashing, deep checks, report */
} ap_view_open_opts;

/* What ap_view_open_ex learned about the signature and expiry. */
typedef struct ap_view_trust {
    bool sig_present, sig_checked;
    char key_id[AP_KEYID_HEX];
    long long expires; /* -1: none */
} ap_view_trust;

/* Before base list i is used: checked (pack.digests), and its lazily set parts set (see
 * list_done). Thread-safe. */
ap_status ap_view_ready_list(const ap_view *v, uint32_t i, ap_err *err);

/* verify --deep of pack.filter (filter_verify.c): every listed id a row of p, in one value
 * of each column, the value its row has; the message names the column and the value. */
ap_status ap_pack_check_filter(const ap_pack *p, const ap_checks *cx, ap_err *err);

/* Opens dir with every file opened once beneath its directory descriptor: reads the root
 * manifest's bytes once, checks their signature before parsing them (when keys are
 * given), then each layer against what those bytes say (o NULL: no signature, no
 * hashing beyond the small manifests and tombstones). t may be NULL. */
ap_status ap_view_open_ex(const char *dir, const ap_view_open_opts *o, ap_view **out,
                          ap_view_trust *t, ap_err *err);

/* What a change of the packset at dir relies on, without reading any layer's data files
 * (ops.c): the root manifest read once, its signature checked over those bytes (o's keys),
 * no unlisted root file, and for every layer what the root pins of it: its pack manifest
 * (whose data-file hashes must be the root's), a delta's tombstones and delta manifest.
 * The data files' hashes are only compared, never recomputed: a change copies them into
 * the next version, so a byte changed since the last full verification stays detectable.
 * On success *root holds the checked manifest (the caller's: ap_root_manifest_free); a
 * single pack (schema 2) is returned parsed, nothing else checked. */
ap_status ap_view_check_pins(const char *dir, const ap_view_open_opts *o, ap_root_manifest *root,
                             ap_err *err);

/* view.c: checks that every delta fits the base (delta.c), resolves liveness and groups
 * deltas once the layers are open. */
ap_status ap_view_finish(ap_view *v, ap_err *err);

int32_t ap_view_live_layer(const ap_view *v, uint64_t id);
int ap_view_live_before(const ap_view *v, uint64_t id, uint32_t l);

#endif
