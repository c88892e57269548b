/* annpack — hashing, Ed25519 keys and signatures.
 *
 * Keys are PEM files interchangeable with OpenSSL: private keys are PKCS#8
 * ("-----BEGIN PRIVATE KEY-----", as `openssl genpkey -algorithm ed25519` writes them),
 * public keys SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----", as `openssl pkey
 * -pubout` writes them). A signature is the raw 64-byte Ed25519 signature of the exact
 * bytes signed. The key id is the first 8 bytes of SHA-256 of the raw 32-byte public key,
 * as 16 lowercase hex digits. Private key material lives in libsodium secure memory
 * (sodium_malloc) and is wiped when freed. */
#ifndef ANNPACK_SIGN_H
#define ANNPACK_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_SHA256_BYTES 32
#define AP_SHA256_HEX 65 /* 64 hex digits + NUL */
#define AP_SIG_BYTES 64
#define AP_PUBKEY_BYTES 32
#define AP_KEYID_HEX 17 /* 16 hex digits + NUL */
#define AP_MAX_PEM_BYTES (64u * 1024u)
#define AP_MAX_PUBKEYS 64
#define AP_SIGNATURE "pack.manifest.json.sig" /* beside pack.manifest.json */

/* SHA-256 of a memory buffer, as lowercase hex into the caller's out. */
AP_API void ap_sha256_hex(const void *data, size_t len, char out[AP_SHA256_HEX]);

/* Incremental SHA-256: ap_sha256_new (the caller's state, NULL when out of memory), any
 * number of updates, then ap_sha256_final, which writes the lowercase hex digest and frees
 * the state. ap_sha256_free abandons one (NULL is a no-op). */
typedef struct ap_sha256 ap_sha256;
AP_API ap_sha256 *ap_sha256_new(void);
AP_API void ap_sha256_update(ap_sha256 *h, const void *data, size_t len);
AP_API void ap_sha256_final(ap_sha256 *h, char out[AP_SHA256_HEX]);
AP_API void ap_sha256_free(ap_sha256 *h);

/* SHA-256 of a file, streamed (never the whole file in memory), into out; *size (size may
 * be NULL) receives its size. Errors name the path. */
AP_API ap_status ap_sha256_file(const char *path, char out[AP_SHA256_HEX], uint64_t *size,
                                ap_err *err);

/* How many bytes this process has hashed with SHA-256 so far, over all threads and every
 * function above (and libannpack's internal hashing): what a report can show an operation
 * cost, e.g. that a packset change hashed only its delta. */
AP_API uint64_t ap_sha256_bytes_total(void);

typedef struct ap_seckey ap_seckey; /* opaque, in secure memory: freed by ap_seckey_free */

typedef struct ap_pubkey {
    uint8_t raw[AP_PUBKEY_BYTES];
    char keyid[AP_KEYID_HEX];
} ap_pubkey;

/* Generates a new key pair: *out is the caller's (ap_seckey_free). */
AP_API ap_status ap_seckey_generate(ap_seckey **out, ap_err *err);

/* Reads a PKCS#8 Ed25519 private key PEM file: *out is the caller's (ap_seckey_free).
 * Anything else — another algorithm, an encrypted key, bad base64, trailing garbage in
 * the DER — is AP_ERR_FORMAT naming the file. Warns through the log when the file is
 * readable by group or others. */
AP_API ap_status ap_seckey_load(const char *path, ap_seckey **out, ap_err *err);

/* Writes the private key as PKCS#8 PEM to path, created with mode 0600 (refuses to
 * overwrite an existing file: AP_ERR_EXISTS). */
AP_API ap_status ap_seckey_save(const ap_seckey *key, const char *path, ap_err *err);

/* The public half, into the caller's *out. */
AP_API void ap_seckey_public(const ap_seckey *key, ap_pubkey *out);

/* Wipes and frees; NULL is a no-op. */
AP_API void ap_seckey_free(ap_seckey *key);

/* Reads every "PUBLIC KEY" PEM block of the file at path (one or several, for key
 * rotation) into the caller's keys (room for AP_MAX_PUBKEYS); *nkeys receives their
 * number. Returns AP_ERR_FORMAT when there is none or one is malformed, AP_ERR_LIMIT
 * beyond AP_MAX_PUBKEYS. */
AP_API ap_status ap_pubkeys_load(const char *path, ap_pubkey *keys, size_t *nkeys, ap_err *err);

/* Writes one public key as SPKI PEM (refuses to overwrite: AP_ERR_EXISTS). */
AP_API ap_status ap_pubkey_save(const ap_pubkey *key, const char *path, ap_err *err);

/* ---- expiry ---------------------------------------------------------------------------- */

/* "YYYY-MM-DDTHH:MM:SSZ" plus the NUL. */
#define AP_RFC3339_LEN 21

/* Parses an expiry: a duration from now (a positive integer and one unit: s, m, h, d or w,
 * e.g. "90s", "12h", "30d") or an RFC 3339 UTC time, which must be after now. *out
 * receives Unix seconds (at most the end of year 9999). Errors: AP_ERR_ARG naming s. */
AP_API ap_status ap_parse_expires(const char *s, long long now, long long *out, ap_err *err);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_SIGN_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
