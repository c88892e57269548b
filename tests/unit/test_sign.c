/* Hashing, PEM keys and signatures (OpenSSL interop is in tests/test_trust.py). */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annpack/log.h"
#include "annpack/sign.h"
#include "check.h"
#include "fsops.h"

static int warned;
static void sink(ap_log_level l, const char *c, const char *m, void *ud)
{
    (void)l;
    (void)c;
    (void)ud;
    if (strstr(m, "readable by group or others")) warned++;
}

int main(void)
{
    ap_err err;
    char hex[AP_SHA256_HEX];
    ap_sha256_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));

    char dir[] = "/tmp/annpack-sign-XXXXXX";
    mkdtemp(dir);
    char big[256], pem[256], pub[256], path[300];
    snprintf(big, sizeof big, "%s/big", dir);
    size_t n = 3u << 20;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 31);
    ap_write_file(big, data, n, &err);
    char hex2[AP_SHA256_HEX];
    uint64_t size;
    CHECK_OK(ap_sha256_file(big, hex2, &size, &err), &err);
    ap_sha256_hex(data, n, hex);
    CHECK(!strcmp(hex, hex2) && size == n);

    ap_seckey *k, *k2;
    CHECK_OK(ap_seckey_generate(&k, &err), &err);
    snprintf(pem, sizeof pem, "%s/k.pem", dir);
    snprintf(pub, sizeof pub, "%s/k.pub", dir);
    CHECK_OK(ap_seckey_save(k, pem, &err), &err);
    struct stat sb;
    stat(pem, &sb);
    CHECK((sb.st_mode & 0777) == 0600);
    CHECK_ERR(ap_seckey_save(k, pem, &err), AP_ERR_EXISTS, &err, "k.pem");
    ap_pubkey pk, pk2;
    ap_seckey_public(k, &pk);
    CHECK_OK(ap_pubkey_save(&pk, pub, &err), &err);
    CHECK(strlen(pk.keyid) == 16);
    CHECK_OK(ap_seckey_load(pem, &k2, &err), &err);
    ap_seckey_public(k2, &pk2);
    CHECK(!memcmp(pk.raw, pk2.raw, 32));

    uint8_t sig[AP_SIG_BYTES];
    const char msg[] = "the exact manifest bytes";
    CHECK_OK(ap_sign(k2, msg, sizeof msg, sig, &err), &err);
    ap_pubkey keys[AP_MAX_PUBKEYS];
    size_t nk, which = 99;
    CHECK_OK(ap_pubkeys_load(pub, keys, &nk, &err), &err);
    CHECK(nk == 1);
    CHECK_OK(ap_verify_sig(keys, nk, msg, sizeof msg, sig, &which, &err), &err);
    CHECK(which == 0);
    char tampered[sizeof msg];
    memcpy(tampered, msg, sizeof msg);
    tampered[3] ^= 1;
    CHECK_ERR(ap_verify_sig(keys, nk, tampered, sizeof msg, sig, &which, &err), AP_ERR_VERIFY, &err,
              pk.keyid);

    /* Several keys in one file: the matching one is found. */
    ap_seckey *other;
    ap_seckey_generate(&other, &err);
    ap_pubkey po;
    ap_seckey_public(other, &po);
    char *p1 = ap_pubkey_to_pem(&po), *p2 = ap_pubkey_to_pem(&pk);
    char both[1024];
    snprintf(both, sizeof both, "# rotation\n%s\n%s", p1, p2);
    CHECK_OK(ap_pubkeys_parse_pem(both, strlen(both), "both", keys, &nk, &err), &err);
    CHECK(nk == 2);
    CHECK_OK(ap_verify_sig(keys, nk, msg, sizeof msg, sig, &which, &err), &err);
    CHECK(which == 1);

    /* Malformed inputs. */
    ap_seckey *bad;
    const char *wrong_label =
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    CHECK_ERR(ap_seckey_parse_pem(wrong_label, strlen(wrong_label), "x.pem", &bad, &err),
              AP_ERR_FORMAT, &err, "x.pem");
    const char *enc =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    CHECK_ERR(ap_seckey_parse_pem(enc, strlen(enc), "e.pem", &bad, &err), AP_ERR_FORMAT, &err,
              "encrypted");
    const char *b64 = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
    CHECK_ERR(ap_seckey_parse_pem(b64, strlen(b64), "b.pem", &bad, &err), AP_ERR_FORMAT, &err,
              "base64");
    /* A P-256 key's PKCS#8 header: another algorithm. */
    const char *ec = "-----BEGIN PRIVATE KEY-----\n"
                     "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
                     "-----END PRIVATE KEY-----\n";
    CHECK_ERR(ap_seckey_parse_pem(ec, strlen(ec), "ec.pem", &bad, &err), AP_ERR_FORMAT, &err,
              "Ed25519");
    const char *trunc =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
    CHECK_ERR(ap_seckey_parse_pem(trunc, strlen(trunc), "t.pem", &bad, &err), AP_ERR_FORMAT, &err,
              "t.pem");
    const char *nope = "nothing here\n";
    CHECK_ERR(ap_pubkeys_parse_pem(nope, strlen(nope), "n.pub", keys, &nk, &err), AP_ERR_FORMAT,
              &err, "no PUBLIC KEY block");
    const char *mismatch = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    CHECK_ERR(ap_pubkeys_parse_pem(mismatch, strlen(mismatch), "m.pub", keys, &nk, &err),
              AP_ERR_FORMAT, &err, "malformed");
    char *many = malloc(65 * 200);
    many[0] = 0;
    for (int i = 0; i < 65; i++)
        strcat(many, p1);
    CHECK_ERR(ap_pubkeys_parse_pem(many, strlen(many), "many.pub", keys, &nk, &err), AP_ERR_LIMIT,
              &err, "more than 64");
    char *huge = calloc(1, AP_MAX_PEM_BYTES + 2);
    memset(huge, 'A', AP_MAX_PEM_BYTES + 1);
    CHECK_ERR(ap_pubkeys_parse_pem(huge, AP_MAX_PEM_BYTES + 1, "h.pub", keys, &nk, &err),
              AP_ERR_LIMIT, &err, "too large");

    /* A private key readable by others loads with a warning. */
    ap_log_set_sink(sink, NULL);
    chmod(pem, 0644);
    ap_seckey *k3;
    CHECK_OK(ap_seckey_load(pem, &k3, &err), &err);
    CHECK(warned == 1);
    ap_log_set_sink(NULL, NULL);
    snprintf(path, sizeof path, "%s/none.pem", dir);
    CHECK_ERR(ap_seckey_load(path, &bad, &err), AP_ERR_NOTFOUND, &err, "none.pem");

    ap_seckey_free(k);
    ap_seckey_free(k2);
    ap_seckey_free(k3);
    ap_seckey_free(other);
    free(p1);
    free(p2);
    free(many);
    free(huge);
    free(data);
    ap_rmtree(dir);
    return check_done();
}
