/* Fuzz target: the signature file reader (ap_manifest_check_signature). A scratch
 * directory holds a fixed manifest; the input is its pack.manifest.json.sig. Two fixed
 * keys (test-only, in this file) are trusted, as in a key rotation. The result must be OK
 * exactly when the file is one key's 64-byte signature of the manifest, naming that key's
 * id; with only the second key trusted, only its signature verifies; a file of another
 * size is AP_ERR_FORMAT; every failure names the file. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annpack/pack.h"
#include "annpack/trust.h"
#include "fsops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test-only keys: never use them for anything else. */
static const char signer_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJXKQAaaeyV0ZpknynxuuklOFgIKmni7MxwDmOQ1Y1e4\n"
    "-----END PRIVATE KEY-----\n";
static const char other_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MC4CAQAwBQYDK2VwBCIEIE1yC0x5tM+tpg7gJ9P++ZSnD8dsaC0c3m0Tb04fMryI\n"
                                "-----END PRIVATE KEY-----\n";
static const char manifest[] =
    "{\"schema_version\":3,\"format\":\"annpack-packset\",\"version\":7}\n";

static char dir[64], sig_path[96];
static ap_pubkey keys[2]; /* other, signer */
static uint8_t good[2][AP_SIG_BYTES];

static void cleanup(void)
{
    ap_rmtree(dir);
}

static void init(void)
{
    const char *pems[2] = {other_pem, signer_pem};
    snprintf(dir, sizeof dir, "/tmp/annpack-fuzz-sig-XXXXXX");
    if (!mkdtemp(dir)) abort();
    atexit(cleanup);
    for (int i = 0; i < 2; i++) {
        ap_seckey *k = NULL;
        if (ap_seckey_parse_pem(pems[i], strlen(pems[i]), "key", &k, NULL) ||
            ap_sign(k, manifest, strlen(manifest), good[i], NULL)) {
            fprintf(stderr, "fuzz_sig: setup failed\n");
            abort();
        }
        ap_seckey_public(k, &keys[i]);
        ap_seckey_free(k);
    }
    snprintf(sig_path, sizeof sig_path, "%s/%s", dir, AP_SIGNATURE);
    char mp[96];
    snprintf(mp, sizeof mp, "%s/%s", dir, AP_MANIFEST);
    FILE *f = fopen(mp, "wb");
    if (!f || fwrite(manifest, 1, strlen(manifest), f) != strlen(manifest)) abort();
    fclose(f);
}

/* Which key signed data (0 or 1), or -1. */
static int signer_of(const uint8_t *data, size_t size)
{
    for (int i = 0; i < 2; i++)
        if (size == AP_SIG_BYTES && memcmp(data, good[i], AP_SIG_BYTES) == 0) return i;
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init();
        ready = 1;
    }
    FILE *f = fopen(sig_path, "wb");
    if (!f) return 0;
    if (size && fwrite(data, 1, size, f) != size) __builtin_trap();
    fclose(f);
    size_t mlen = strlen(manifest);
    int who = signer_of(data, size);
    for (size_t nkeys = 2; nkeys >= 1; nkeys--) {
        /* keys[2 - nkeys ..]: both, then only the signer's (through an explicit path). */
        const ap_pubkey *k = keys + (2 - nkeys);
        char keyid[AP_KEYID_HEX] = "";
        ap_err err = {0};
        ap_status st = ap_manifest_check_signature(dir, manifest, mlen, k, nkeys,
                                                   nkeys == 2 ? NULL : sig_path, keyid, &err);
        int want = who >= 0 && (nkeys == 2 || who == 1);
        if ((st == AP_OK) != want) __builtin_trap();
        if (st == AP_OK && strcmp(keyid, keys[who].keyid) != 0) __builtin_trap();
        if (size != AP_SIG_BYTES && st != AP_ERR_FORMAT) __builtin_trap();
        if (st != AP_OK && !strstr(err.msg, sig_path)) __builtin_trap();
    }
    return 0;
}
