/* annpack keygen, annpack sign */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char keygen_usage[] =
    "usage: annpack keygen --out PREFIX\n"
    "\n"
    "Generates an Ed25519 key pair: PREFIX.pem (private key, PKCS#8 PEM, mode 0600) and\n"
    "PREFIX.pub (public key, SubjectPublicKeyInfo PEM). Both are interchangeable with\n"
    "`openssl genpkey -algorithm ed25519` / `openssl pkey -pubout`. Existing files are\n"
    "never overwritten. Prints the key id.\n";

static const char sign_usage[] =
    "usage: annpack sign DIR --key KEY.pem [--out SIG]\n"
    "\n"
    "Verifies DIR (a pack or a packset; refused if any hash is wrong), then writes the raw\n"
    "64-byte Ed25519 signature of DIR/pack.manifest.json to SIG (default\n"
    "DIR/pack.manifest.json.sig). Prints the key id.\n";

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *prefix = NULL;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
        switch (c) {
        case 'o': prefix = optarg; break;
        case 'h': fputs(keygen_usage, stdout); return EXIT_OK;
        case ':': return cli_usage_error("keygen", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("keygen", "unknown option %s", argv[optind - 1]);
        }
    }
    if (!prefix) return cli_usage_error("keygen", "--out PREFIX is required");
    if (optind < argc) return cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
    size_t n = strlen(prefix) + 5;
    char *pem = malloc(n), *pub = malloc(n);
    ap_err err = {0};
    ap_seckey *key = NULL;
    int rc = EXIT_FAIL;
    if (!pem || !pub) goto out;
    snprintf(pem, n, "%s.pem", prefix);
    snprintf(pub, n, "%s.pub", prefix);
    if (access(pub, F_OK) == 0) {
        ap_err_set(&err, AP_ERR_EXISTS, "%s exists; refusing to overwrite it", pub);
        rc = cli_fail("keygen", &err);
        goto out;
    }
    ap_pubkey pk;
    if (ap_seckey_generate(&key, &err) || ap_seckey_save(key, pem, &err)) {
        rc = cli_fail("keygen", &err);
        goto out;
    }
    ap_seckey_public(key, &pk);
    if (ap_pubkey_save(&pk, pub, &err)) {
        unlink(pem);
        rc = cli_fail("keygen", &err);
        goto out;
    }
    printf("{\"private_key\": \"%s\", \"public_key\": \"%s\", \"key_id\": \"%s\"}\n", pem, pub,
           pk.keyid);
    rc = EXIT_OK;
out:
    ap_seckey_free(key);
    free(pem);
    free(pub);
    return rc;
}

int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {{"key", required_argument, 0, 'k'},
                                         {"out", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *keyfile = NULL, *out = NULL;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
        switch (c) {
        case 'k': keyfile = optarg; break;
        case 'o': out = optarg; break;
        case 'h': fputs(sign_usage, stdout); return EXIT_OK;
        case ':': return cli_usage_error("sign", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("sign", "unknown option %s", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return cli_usage_error("sign", "expected DIR");
    if (!keyfile) return cli_usage_error("sign", "--key KEY.pem is required");
    ap_err err = {0};
    ap_seckey *key = NULL;
    if (ap_seckey_load(keyfile, &key, &err)) return cli_fail("sign", &err);
    char keyid[AP_KEYID_HEX];
    ap_status st = ap_dir_sign(argv[optind], key, out, keyid, &err);
    ap_seckey_free(key);
    if (st) return cli_fail("sign", &err);
    printf("{\"signed\": \"%s\", \"key_id\": \"%s\"}\n", argv[optind], keyid);
    return EXIT_OK;
}
