/* Checking a manifest's signature and expiry from bytes already read (internal to core;
 * the signature is checked before the manifest is parsed). */
#ifndef ANNPACK_CORE_TRUST_CHECK_H
#define ANNPACK_CORE_TRUST_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "annpack/sign.h"

/* Verifies sig (slen bytes read from sig_name) over the manifest bytes against keys. */
ap_status ap_signature_check_bytes(const char *sig, size_t slen, const char *sig_name,
                                   const char *manifest, size_t len, const ap_pubkey *keys,
                                   size_t nkeys, char keyid[AP_KEYID_HEX], ap_err *err);

/* Parses root's optional "expires" into *expires (-1 when absent) and refuses a time
 * before now unless allow_expired. name is the manifest, for messages. */
ap_status ap_expiry_check(const cJSON *root, const char *name, bool allow_expired, long long now,
                          long long *expires, ap_err *err);

#endif
