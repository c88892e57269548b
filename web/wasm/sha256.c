/* SHA-256 for the WebAssembly build (annpack/sign.h's ap_sha256_hex, which
 * embed/idf_table.c uses to name a pack.idf table; natively it is OpenSSL's,
 * crypto/sha256.c). The core's call is synchronous, WebCrypto's digest is not, and
 * libsodium.js's standard build has no SHA-256: so the client digests the bytes with
 * WebCrypto before the call, and the import "webcrypto"."sha256" (web/client/wasm.js)
 * answers with that digest for exactly those bytes, and traps for any other input. */
#include <stddef.h>

#include "annpack/sign.h"

__attribute__((import_module("webcrypto"), import_name("sha256"))) void
apw_webcrypto_sha256(unsigned char out[32], const void *data, size_t len);

void ap_sha256_hex(const void *data, size_t len, char out[AP_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char h[32];
    apw_webcrypto_sha256(h, data, len);
    for (size_t i = 0; i < sizeof h; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[2 * sizeof h] = '\0';
}
