/* annpack — signing and checking the signature of a pack or packset directory.
 *
 * The signature file (default DIR/pack.manifest.json.sig) holds the raw 64-byte Ed25519
 * signature of the exact bytes of DIR/pack.manifest.json. Since the manifest lists the
 * size and SHA-256 of every other file (recursively for packsets), the signature covers
 * every byte served. See docs/SECURITY.md. */
#ifndef ANNPACK_TRUST_H
#define ANNPACK_TRUST_H

#include <stdbool.h>
#include <stddef.h>

#include "packset.h"
#include "sign.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Signs DIR's manifest after verifying DIR (hashes and structure, not deep): an
 * unverifiable directory is refused. Writes the signature atomically to sig_path
 * (NULL = DIR/pack.manifest.json.sig). keyid (may be NULL) receives the signer's key id.
 * key stays the caller's. = ap_dir_sign_ex with only sig_path set. */
AP_API ap_status ap_dir_sign(const char *dir, const ap_seckey *key, const char *sig_path,
                             char keyid[AP_KEYID_HEX], ap_err *err);

typedef struct ap_sign_opts {
    const char *sig_path; /* NULL = DIR/pack.manifest.json.sig */
    /* NULL: keep the manifest's "expires". Else a duration from now or an RFC 3339 UTC time
     * (ap_parse_expires) written into the manifest before signing: for a packset that is a
     * change (version + 1, the root manifest replaced atomically); for a single pack its
     * manifest's "expires". A layer of a packset is refused (its bytes are pinned by the
     * packset's manifest). */
    const char *expires;
    /* Replace a sig_path that exists and is not a signature (a regular 64-byte file). */
    bool force;
} ap_sign_opts;

/* Signs DIR (see ap_dir_sign) with options (o NULL = none). The directory is locked while
 * it is signed. keyid (may be NULL) receives the signer's key id; with o->expires,
 * expires_out (may be NULL) receives the time written. */
AP_API ap_status ap_dir_sign_ex(const char *dir, const ap_seckey *key, const ap_sign_opts *o,
                                char keyid[AP_KEYID_HEX], char expires_out[AP_RFC3339_LEN],
                                ap_err *err);

/* The trust policy a serving host applies when it opens a pack or packset: shared by
 * the mount and `annpack verify`. Its pointers are the caller's and only read. */
typedef struct ap_trust_policy {
    const ap_pubkey *keys; /* nkeys > 0: a valid signature by one of them is required */
    size_t nkeys;
    const char *sig_path; /* NULL: DIR/pack.manifest.json.sig */
    bool hash_files;      /* hash every file against the manifests (else only the small
                             manifests and tombstones are checked) */
    bool allow_expired;   /* accept a manifest whose "expires" has passed */
    uint64_t min_version; /* refuse a lower version ... */
    bool strict_version;  /* ... or an equal one (a reload must be newer) */
    bool lazy;            /* with hash_files, for a pack with pack.digests: check only the
                             table, the heads and the small files now, and each list and
                             frame of the base on first use (a failing one fails that use
                             with AP_ERR_VERIFY; docs/SECURITY.md, "Lazy verification") */
} ap_trust_policy;

/* What was established about an opened directory. */
typedef struct ap_trust_result {
    bool signature_present;    /* a signature file exists */
    bool signature_checked;    /* and it verified with one of the policy's keys */
    char key_id[AP_KEYID_HEX]; /* that key's id, or "" */
    uint64_t version;          /* the root manifest's version (0 for a single pack) */
    long long expires;         /* Unix seconds of "expires", or -1 */
} ap_trust_result;

/* Opens DIR as a view under policy: the root manifest is read once and its signature
 * checked over those bytes before they are parsed; every file is opened once beneath DIR
 * and checked against what the verified bytes say, then served from that same open file.
 * res (may be NULL) is filled on success. The view is the caller's (ap_view_close); on
 * failure *out is NULL and err names the file and the check that failed. */
AP_API ap_status ap_view_open_trusted(const char *dir, const ap_trust_policy *policy, ap_view **out,
                                      ap_trust_result *res, ap_err *err);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_TRUST_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
