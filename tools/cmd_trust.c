/* annpack keygen, annpack sign */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char keygen_usage[] =
    "usage: annpack keygen --out PREFIX\n"
    "\n"
    "Generates an Ed25519 key pair: PREFIX.pem (private key, PKCS#8 PEM, mode 0600) and\n"
    "PREFIX.pub (public key, SubjectPublicKeyInfo PEM). Both are interchangeable with\n"
    "`openssl genpkey -algorithm ed25519` / `openssl pkey -pubout`. Existing files are\n"
    "never overwritten (not even with a symlink there); both appear complete or not at\n"
    "all. Prints the key id.\n";

static const char sign_usage[] =
    "usage: annpack sign DIR --key KEY.pem [--out SIG] [--expires DURATION|DATE] [--force]\n"
    "\n"
    "Verifies DIR (a pack or a packset; refused if any hash is wrong), then writes the raw\n"
    "64-byte Ed25519 signature of DIR/pack.manifest.json to SIG (default\n"
    "DIR/pack.manifest.json.sig). Prints the key id.\n"
    "\n"
    "  --out SIG          where the signature goes; an existing SIG is replaced only when it\n"
    "                     is a signature (a 64-byte file), anything else only with --force\n"
    "  --expires WHEN     set the manifest's \"expires\" first: a duration from now (90s,\n"
    "                     45m, 12h, 30d, 2w) or an RFC 3339 UTC time (2030-01-01T00:00:00Z).\n"
    "                     For a packset this is a change: version + 1. verify and the mount\n"
    "                     refuse the manifest after that time (verify --allow-expired)\n"
    "  --force            replace SIG even if it is not a signature\n";

/* PREFIX.pem and PREFIX.pub, both complete or neither; prints the key id. */
static int keygen_write(const char *prefix)
{
    size_t n = strlen(prefix) + 32;
    char *pem = malloc(n), *pub = malloc(n), *tmp = calloc(1, n), *tpem = malloc(n + 8),
         *tpub = malloc(n + 8);
    ap_err err = {0};
    ap_seckey *key = NULL;
    int rc = EXIT_FAIL, linked = 0;
    if (!pem || !pub || !tmp || !tpem || !tpub) goto out;
    snprintf(pem, n, "%s.pem", prefix);
    snprintf(pub, n, "%s.pub", prefix);
    for (const char *f = pem; f; f = f == pem ? pub : NULL) {
        struct stat sb;
        if (lstat(f, &sb) == 0) {
            ap_err_set(&err, AP_ERR_EXISTS, "%s exists; refusing to overwrite it", f);
            rc = cli_fail("keygen", &err);
            goto out;
        }
    }
    /* Both files are written complete in a private directory, then linked into place
     * (link never replaces an existing name): a crash or a full disk leaves no partial key. */
    snprintf(tmp, n, "%s.keygen-XXXXXX", prefix);
    if (!mkdtemp(tmp)) {
        ap_err_errno(&err, AP_ERR_IO, errno, "cannot create a temporary directory beside %s",
                     prefix);
        rc = cli_fail("keygen", &err);
        *tmp = '\0';
        goto out;
    }
    snprintf(tpem, n + 8, "%s/k.pem", tmp);
    snprintf(tpub, n + 8, "%s/k.pub", tmp);
    ap_pubkey pk;
    if (ap_seckey_generate(&key, &err) || ap_seckey_save(key, tpem, &err)) {
        rc = cli_fail("keygen", &err);
        goto out;
    }
    ap_seckey_public(key, &pk);
    if (ap_pubkey_save(&pk, tpub, &err)) {
        rc = cli_fail("keygen", &err);
        goto out;
    }
    if (link(tpem, pem) != 0 || !(linked = 1) || link(tpub, pub) != 0) {
        ap_err_errno(&err, errno == EEXIST ? AP_ERR_EXISTS : AP_ERR_IO, errno, "%s",
                     linked ? pub : pem);
        if (linked) unlink(pem);
        rc = cli_fail("keygen", &err);
        goto out;
    }
    char *dir = strdup(pem);
    int dfd = dir ? open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
    printf("{\"private_key\": \"%s\", \"public_key\": \"%s\", \"key_id\": \"%s\"}\n", pem, pub,
           pk.keyid);
    rc = EXIT_OK;
out:
    if (tmp && *tmp) {
        if (tpem) unlink(tpem);
        if (tpub) unlink(tpub);
        rmdir(tmp);
    }
    ap_seckey_free(key);
    free(pem);
    free(pub);
    free(tmp);
    free(tpem);
    free(tpub);
    return rc;
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *prefix = NULL;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
        switch (c) {
        case 'o':
            prefix = optarg;
            break;
        case 'h':
            fputs(keygen_usage, stdout);
            return EXIT_OK;
        case ':':
            return cli_usage_error("keygen", "option %s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("keygen", "unknown option %s", argv[optind - 1]);
        }
    }
    if (!prefix) return cli_usage_error("keygen", "--out PREFIX is required");
    if (optind < argc) return cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
    return keygen_write(prefix);
}

int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, 0, 'k'},     {"out", required_argument, 0, 'o'},
        {"expires", required_argument, 0, 'e'}, {"force", no_argument, 0, 'f'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *keyfile = NULL;
    ap_sign_opts so = {0};
    ap_err err = {0};
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
        switch (c) {
        case 'k':
            keyfile = optarg;
            break;
        case 'o':
            so.sig_path = optarg;
            break;
        case 'e': {
            long long t;
            if (ap_parse_expires(optarg, (long long)time(NULL), &t, &err))
                return cli_usage_error("sign", "--expires %s: %s", optarg, err.msg);
            so.expires = optarg;
            break;
        }
        case 'f':
            so.force = true;
            break;
        case 'h':
            fputs(sign_usage, stdout);
            return EXIT_OK;
        case ':':
            return cli_usage_error("sign", "option %s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("sign", "unknown option %s", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return cli_usage_error("sign", "expected DIR");
    if (!keyfile) return cli_usage_error("sign", "--key KEY.pem is required");
    ap_seckey *key = NULL;
    if (ap_seckey_load(keyfile, &key, &err)) return cli_fail("sign", &err);
    char keyid[AP_KEYID_HEX], expires[AP_RFC3339_LEN];
    ap_status st = ap_dir_sign_ex(argv[optind], key, &so, keyid, expires, &err);
    ap_seckey_free(key);
    if (st) return cli_fail("sign", &err);
    if (so.expires)
        printf("{\"signed\": \"%s\", \"key_id\": \"%s\", \"expires\": \"%s\"}\n", argv[optind],
               keyid, expires);
    else
        printf("{\"signed\": \"%s\", \"key_id\": \"%s\"}\n", argv[optind], keyid);
    return EXIT_OK;
}
