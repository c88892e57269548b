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

#ifdef __cplusplus
}
#endif
#endif
