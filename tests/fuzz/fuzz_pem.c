/* Fuzz target: PEM private and public keys. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdint.h>

#include "annpack/sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ap_seckey *k = NULL;
    if (ap_seckey_parse_pem((const char *)data, size, "fuzz.pem", &k, NULL) == AP_OK)
        ap_seckey_free(k);
    ap_pubkey keys[AP_MAX_PUBKEYS];
    size_t n;
    ap_pubkeys_parse_pem((const char *)data, size, "fuzz.pub", keys, &n, NULL);
    return 0;
}
