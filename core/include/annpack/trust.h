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
 * (NULL = DIR/pack.manifest.json.sig). keyid (may be NULL) receives the signer's key id. */
AP_API ap_status ap_dir_sign(const char *dir, const ap_seckey *key, const char *sig_path,
                             char keyid[AP_KEYID_HEX], ap_err *err);

/* Checks the signature of the manifest bytes against keys. sig_path NULL = the default
 * file beside the manifest. On success keyid receives the id of the key that verified.
 * Errors: AP_ERR_NOTFOUND (no signature file), AP_ERR_FORMAT (not 64 bytes),
 * AP_ERR_VERIFY (no key verifies; the message lists the key ids tried). */
AP_API ap_status ap_manifest_check_signature(const char *dir, const char *manifest, size_t len,
                                             const ap_pubkey *keys, size_t nkeys,
                                             const char *sig_path, char keyid[AP_KEYID_HEX],
                                             ap_err *err);

/* Parses an RFC 3339 UTC timestamp "YYYY-MM-DDTHH:MM:SSZ" (fractional seconds allowed)
 * into Unix seconds. */
AP_API ap_status ap_parse_rfc3339_utc(const char *s, long long *out, ap_err *err);

/* The trust policy a serving host applies when it opens a pack or packset: shared by
 * the mount and `annpack verify`. */
typedef struct ap_trust_policy {
    const ap_pubkey *keys; /* nkeys > 0: a valid signature by one of them is required */
    size_t nkeys;
    const char *sig_path; /* NULL: DIR/pack.manifest.json.sig */
    bool hash_files;      /* hash every file against the manifests (else only the small
                             manifests and tombstones are checked) */
    bool allow_expired;   /* accept a manifest whose "expires" has passed */
    uint64_t min_version; /* refuse a lower version ... */
    bool strict_version;  /* ... or an equal one (a reload must be newer) */
} ap_trust_policy;

/* What was established about an opened directory. */
typedef struct ap_trust_result {
    bool signature_present; /* a signature file exists */
    bool signature_checked; /* and it verified with one of the policy's keys */
    char key_id[AP_KEYID_HEX]; /* that key's id, or "" */
    uint64_t version;          /* the root manifest's version (0 for a single pack) */
    long long expires;         /* Unix seconds of "expires", or -1 */
} ap_trust_result;

/* Opens DIR as a view under policy: the root manifest is read once and its signature
 * checked over those bytes before they are parsed; every file is opened once beneath DIR
 * and checked against what the verified bytes say, then served from that same open file.
 * res (may be NULL) is filled on success. The view is the caller's (ap_view_close). */
AP_API ap_status ap_view_open_trusted(const char *dir, const ap_trust_policy *policy,
                                      ap_view **out, ap_trust_result *res, ap_err *err);

#ifdef __cplusplus
}
#endif
#endif
