/* annpack inspect, annpack verify */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char inspect_usage[] =
    "usage: annpack inspect DIR\n"
    "\n"
    "Prints a pack's facts as JSON: dim, n_lists, n_vectors, list sizes (min/median/max),\n"
    "metadata rows, the embedder and build blocks, and the files with sizes and hashes.\n";

static const char verify_usage[] =
    "usage: annpack verify DIR [--pubkey PUB] [--sig SIG] [--allow-expired] [--deep]\n"
    "\n"
    "With --pubkey, first checks the Ed25519 signature of the exact manifest bytes\n"
    "(SIG, default DIR/pack.manifest.json.sig) against the key(s) in PUB (one PEM block\n"
    "each; the matching one is used and its key id reported). An \"expires\" time in the\n"
    "past fails unless --allow-expired. Then checks the manifest (strict JSON, safe paths, no "
    "unlisted pack files) and the size and\n"
    "SHA-256 of every file it lists, then opens the pack. --deep also checks the structure:\n"
    "ids unique, one metadata row per id, vectors finite and unit-norm, the id index\n"
    "consistent with the rows, the filter sets (pack.filter) those of the rows. Prints a\n"
    "JSON report; exit 0 when valid, 1 when not.\n"
    "\n"
    "  --pubkey PUB      public key file (SPKI PEM; several blocks for rotation)\n"
    "  --sig SIG         signature file (default DIR/pack.manifest.json.sig)\n"
    "  --allow-expired   accept a manifest whose \"expires\" has passed\n"
    "  --deep            structural checks too\n"
    "  -h, --help    show this help\n";

int cmd_inspect(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(inspect_usage, stdout);
        return EXIT_OK;
    }
    if (argc != 2) return cli_usage_error("inspect", "expected DIR");
    ap_err err = {0};
    ap_view *p = NULL;
    if (ap_view_open(argv[1], &p, &err)) return cli_fail("inspect", &err);
    char *s = ap_view_inspect_json(p);
    int rc = s ? cli_emit(s) : EXIT_FAIL;
    free(s);
    ap_view_close(p);
    return rc;
}

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"deep", no_argument, 0, 'd'},      {"pubkey", required_argument, 0, 'p'},
        {"sig", required_argument, 0, 's'}, {"allow-expired", no_argument, 0, 'x'},
        {"help", no_argument, 0, 'h'},      {0, 0, 0, 0}};
    ap_pubkey keys[AP_MAX_PUBKEYS];
    const char *pubfile = NULL;
    ap_verify_opts vo = {.progress = cli_progress};
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
        switch (c) {
        case 'd':
            vo.deep = true;
            break;
        case 'p':
            pubfile = optarg;
            break;
        case 's':
            vo.sig_path = optarg;
            break;
        case 'x':
            vo.allow_expired = true;
            break;
        case 'h':
            fputs(verify_usage, stdout);
            return EXIT_OK;
        case ':':
            return cli_usage_error("verify", "option %s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("verify", "unknown option %s", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return cli_usage_error("verify", "expected DIR");
    ap_err err = {0};
    if (pubfile) {
        if (ap_pubkeys_load(pubfile, keys, &vo.npubkeys, &err)) return cli_fail("verify", &err);
        vo.pubkeys = keys;
    }
    char *report = NULL;
    ap_status st = ap_verify_dir(argv[optind], &vo, &report, &err);
    cli_progress_end();
    if (report) cli_emit(report);
    free(report);
    if (st) return cli_fail("verify", &err);
    return EXIT_OK;
}
