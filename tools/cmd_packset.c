/* annpack packset build-base | build-delta | promote-delta | revert | rebase | create | status */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "embed_opts.h"

static const char usage_text[] =
    "usage: annpack packset SUBCOMMAND [options]   (see docs/PACKSET.md)\n"
    "\n"
    "  build-base    --input CSV --packset DIR [--text-col C] [--id-col C] [--lists N]\n"
    "                [--seed S] [--dim D] [--embedder-version 1|2] [--target-recall R]\n"
    "                [--filter-cols A,B] [--sq8] [--bits] [--force] [--embedder openai|tei|ollama\n"
    "                --model NAME --embed-url URL ...]   (docs/EMBEDDERS.md)\n"
    "  build-delta   (--packset DIR [--pubkey PUB] | --base BASE_DIR) [--add CSV]\n"
    "                [--delete-ids 1,2] [--delete-ids-file F] --out DELTA_DIR [--seq N]\n"
    "                [--text-col C] [--id-col C] [--lists N] [--seed S] [--force]\n"
    "                [--embed-url URL ...]   (a base built with an embedding service: the\n"
    "                delta embeds with the base's recorded model, canaries checked first)\n"
    "  promote-delta --packset DIR --delta DELTA_DIR [--pubkey PUB] [--force]\n"
    "  revert        --packset DIR --to SEQ [--pubkey PUB]\n"
    "  rebase        --packset DIR --out NEW_DIR [--lists N] [--seed S] [--pubkey PUB]\n"
    "                [--force]   (the new base gets the int8 and 1-bit sidecars the old base\n"
    "                has)\n"
    "  create        --base PACK --out DIR [--delta D ...] [--force]\n"
    "  status        [--packset] DIR\n"
    "\n"
    "--text-col defaults to \"text\", --id-col to \"id\". Every change is atomic: new files\n"
    "are written and fsynced, then the root manifest is renamed into place; its integer\n"
    "\"version\" increases with every change. A packset is verified before it is changed or\n"
    "rebased; a signed one needs --pubkey PUB (its signature is checked first). A change\n"
    "removes the old signature: re-sign the packset after changing it. An existing output\n"
    "that is not what the command writes is refused unless --force, which replaces it\n"
    "atomically (docs/CLI.md).\n";

typedef struct args {
    const char *input, *packset, *text_col, *id_col, *base, *add, *delete_ids, *delete_file, *out,
        *delta, *pubkey, *deltas[256];
    size_t ndeltas;
    uint64_t lists, seed, dim, seq, to, embedder_version;
    double target_recall;
    const char *filter_cols;
    int has_to, force, sq8, bits;
    cli_embed emb;
    int endpoint_given;
} args;

static int parse(const char *cmd, int argc, char **argv, args *a)
{
    static const struct option opts[] = {{"input", required_argument, 0, 'i'},
                                         {"packset", required_argument, 0, 'P'},
                                         {"text-col", required_argument, 0, 't'},
                                         {"id-col", required_argument, 0, 'I'},
                                         {"base", required_argument, 0, 'b'},
                                         {"add", required_argument, 0, 'a'},
                                         {"delete-ids", required_argument, 0, 'D'},
                                         {"delete-ids-file", required_argument, 0, 'F'},
                                         {"out", required_argument, 0, 'o'},
                                         {"delta", required_argument, 0, 'd'},
                                         {"lists", required_argument, 0, 'l'},
                                         {"seed", required_argument, 0, 's'},
                                         {"dim", required_argument, 0, 'm'},
                                         {"embedder-version", required_argument, 0, 'E'},
                                         {"target-recall", required_argument, 0, 'R'},
                                         {"filter-cols", required_argument, 0, 'C'},
                                         {"seq", required_argument, 0, 'q'},
                                         {"to", required_argument, 0, 'T'},
                                         {"force", no_argument, 0, 'f'},
                                         {"help", no_argument, 0, 'h'},
                                         {"sq8", no_argument, 0, 'Q'},
                                         {"bits", no_argument, 0, 'B'},
                                         {"pubkey", required_argument, 0, 'K'},
                                         CLI_EMBED_LONGOPTS,
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->text_col = "text";
    a->id_col = "id";
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
        switch (c) {
        case 'i':
            a->input = optarg;
            break;
        case 'P':
            a->packset = optarg;
            break;
        case 't':
            a->text_col = optarg;
            break;
        case 'I':
            a->id_col = optarg;
            break;
        case 'b':
            a->base = optarg;
            break;
        case 'a':
            a->add = optarg;
            break;
        case 'D':
            a->delete_ids = optarg;
            break;
        case 'F':
            a->delete_file = optarg;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'd':
            if (a->ndeltas == 256) return cli_usage_error(cmd, "at most 256 --delta");
            a->delta = a->deltas[a->ndeltas++] = optarg;
            break;
        case 'l':
            if (!cli_parse_u64(cmd, "--lists", optarg, 1, UINT32_MAX, &a->lists)) return EXIT_USAGE;
            break;
        case 's':
            if (!cli_parse_u64(cmd, "--seed", optarg, 0, (1ull << 53) - 1, &a->seed))
                return EXIT_USAGE;
            break;
        case 'm':
            if (!cli_parse_u64(cmd, "--dim", optarg, 1, UINT32_MAX, &a->dim)) return EXIT_USAGE;
            break;
        case 'q':
            if (!cli_parse_u64(cmd, "--seq", optarg, 1, UINT32_MAX, &a->seq)) return EXIT_USAGE;
            break;
        case 'T':
            if (!cli_parse_u64(cmd, "--to", optarg, 0, UINT32_MAX, &a->to)) return EXIT_USAGE;
            a->has_to = 1;
            break;
        case 'f':
            a->force = 1;
            break;
        case 'Q':
            a->sq8 = 1;
            break;
        case 'B':
            a->bits = 1;
            break;
        case 'E':
            if (!cli_parse_u64(cmd, "--embedder-version", optarg, 1, 2, &a->embedder_version))
                return EXIT_USAGE;
            break;
        case 'R':
            if (cli_parse_recall(cmd, optarg, &a->target_recall)) return EXIT_USAGE;
            break;
        case 'C':
            a->filter_cols = optarg;
            break;
        case 'K':
            a->pubkey = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            fputs("\nEmbedding service options (build-base; build-delta takes the endpoint's):\n",
                  stdout);
            fputs(cli_embed_help_build, stdout);
            fputs(cli_embed_help_endpoint, stdout);
            return -1;
        case ':':
            return cli_usage_error(cmd, "option %s needs a value", argv[optind - 1]);
        default: {
            int r = cli_embed_opt(cmd, c, optarg, &a->emb);
            if (r < 0) return EXIT_USAGE;
            if (r) {
                a->endpoint_given = 1;
                break;
            }
            return cli_usage_error(cmd, "unknown option %s", argv[optind - 1]);
        }
        }
    }
    if (optind < argc && !a->packset && !strcmp(cmd, "packset status")) a->packset = argv[optind++];
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* --delete-ids 1,2,3 plus --delete-ids-file F (JSONL {"id":N} or one integer per line). */
static ap_status delete_list(const args *a, uint64_t **ids, size_t *n, ap_err *err)
{
    *ids = NULL;
    *n = 0;
    size_t cap = 0;
    if (a->delete_ids) {
        char *copy = strdup(a->delete_ids);
        if (!copy) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        for (char *p = copy; *p; p++)
            if (*p == ',') *p = '\n';
        ap_status st = ap_parse_id_list(copy, strlen(copy), "--delete-ids", ids, n, err);
        free(copy);
        if (st) return st;
        cap = *n;
    }
    if (a->delete_file) {
        FILE *f = fopen(a->delete_file, "rb");
        if (!f) return ap_err_errno(err, AP_ERR_NOTFOUND, errno, "%s", a->delete_file);
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        char buf[65536];
        size_t r;
        while (m && (r = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, r, m);
        fclose(f);
        if (m) fclose(m);
        uint64_t *more = NULL;
        size_t nm = 0;
        ap_status st = text ? ap_parse_id_list(text, len, a->delete_file, &more, &nm, err)
                            : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        free(text);
        if (st) return st;
        uint64_t *all = realloc(*ids, (cap + nm + 1) * sizeof *all);
        if (!all) {
            free(more);
            return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        }
        if (nm) memcpy(all + *n, more, nm * sizeof *more);
        *ids = all;
        *n += nm;
        free(more);
    }
    return AP_OK;
}

/* Whether path (which need not exist yet) lies inside dir. */
static int inside(const char *dir, const char *path)
{
    char rd[PATH_MAX], rp[PATH_MAX];
    char *copy = strdup(path);
    if (!copy || !realpath(dir, rd)) {
        free(copy);
        return 0;
    }
    char *parent = dirname(copy);
    int ok = realpath(parent, rp) != NULL;
    free(copy);
    if (!ok) {
        /* A parent that does not exist yet (deltas/): check its own parent. */
        char *c2 = strdup(path);
        if (!c2) return 0;
        ok = realpath(dirname(dirname(c2)), rp) != NULL;
        free(c2);
        if (!ok) return 0;
    }
    size_t n = strlen(rd);
    return strncmp(rp, rd, n) == 0 && (rp[n] == '/' || rp[n] == '\0');
}

/* Whether dir carries a signature (a change removes it). */
static int signed_dir(const char *dir)
{
    char p[PATH_MAX];
    struct stat sb;
    snprintf(p, sizeof p, "%s/pack.manifest.json.sig", dir);
    return lstat(p, &sb) == 0;
}

static void resign_note(const char *cmd, const char *dir)
{
    cli_msg(cmd, AP_LOG_WARN,
            "removed %s/pack.manifest.json.sig (it signed the previous version); "
            "re-sign before publishing: annpack sign %s --key KEY.pem",
            dir, dir);
}

/* The packset's status JSON; with hashed non-NULL, plus "sha256_bytes": what the command
 * hashed to make the change (docs/CLI.md). */
/* s with a newline appended (s freed), or NULL. */
static char *with_newline(char *s)
{
    size_t n = strlen(s);
    char *r = realloc(s, n + 2);
    if (!r) {
        free(s);
        return NULL;
    }
    r[n] = '\n';
    r[n + 1] = '\0';
    return r;
}

static int status_json_hashed(const char *dir, const uint64_t *hashed)
{
    ap_err err = {0};
    ap_view *v = NULL;
    if (ap_view_open(dir, &v, &err)) return cli_fail("packset status", &err);
    char *s = ap_view_status_json(v);
    ap_view_close(v);
    if (s && hashed) {
        cJSON *j = cJSON_Parse(s);
        char *t = j && cJSON_AddNumberToObject(j, "sha256_bytes", (double)*hashed) ? cJSON_Print(j)
                                                                                   : NULL;
        cJSON_Delete(j);
        free(s);
        s = t ? with_newline(t) : NULL;
    }
    int rc = s ? cli_emit(s) : EXIT_FAIL;
    free(s);
    return rc;
}

static int status_json(const char *dir)
{
    return status_json_hashed(dir, NULL);
}

/* The packset after a change: the re-sign note if the change removed a signature, then
 * its status with the bytes the change hashed. */
static int changed(const char *cmd, const char *dir, int was_signed)
{
    uint64_t hashed = ap_sha256_bytes_total();
    if (was_signed) resign_note(cmd, dir);
    return status_json_hashed(dir, &hashed);
}

static int sub_build_base(const char *cmd, const args *a, const ap_change_opts *co)
{
    (void)co; /* a new packset: nothing to verify first */
    if (!a->input || !a->packset) return cli_usage_error(cmd, "--input and --packset are required");
    ap_build_opts o = {.input_csv = a->input,
                       .text_col = a->text_col,
                       .id_col = a->id_col,
                       .output_dir = a->packset,
                       .lists = (uint32_t)a->lists,
                       .seed = a->seed,
                       .dim = (uint32_t)a->dim,
                       .target_recall = a->target_recall,
                       .filter_cols = a->filter_cols,
                       .force = a->force,
                       .progress = cli_progress,
                       .sq8 = a->sq8,
                       .bits = a->bits,
                       .embedder = a->emb.embedder,
                       .http = cli_embed_is_http(a->emb.embedder) ? &a->emb.model : NULL};
    const char *en = a->emb.embedder;
    if (en && strcmp(en, "hash") && !cli_embed_is_http(en))
        return cli_usage_error(cmd, "--embedder must be hash, openai, tei or ollama, got '%s'", en);
    if (cli_embed_is_http(en) && a->dim)
        return cli_usage_error(cmd, "--dim is the hash embedder's; a model's is --embed-dim");
    if (a->embedder_version && cli_embed_is_http(en))
        return cli_usage_error(cmd, "--embedder-version is the hash embedder's, not %s's", en);
    if (a->embedder_version) o.embedder = a->embedder_version == 1 ? "hash:1" : "hash:2";
    ap_build_report rep;
    ap_err err = {0};
    ap_status st = ap_packset_build_base(&o, &rep, &err);
    cli_progress_end();
    if (st) return cli_fail(cmd, &err);
    return status_json(a->packset);
}

static int sub_build_delta(const char *cmd, const args *a, const ap_change_opts *co)
{
    if (!a->out) return cli_usage_error(cmd, "--out DELTA_DIR is required");
    if (!!a->packset == !!a->base)
        return cli_usage_error(cmd, "give exactly one of --packset and --base");
    if (a->seq && !a->packset) return cli_usage_error(cmd, "--seq needs --packset");
    if (a->pubkey && !a->packset) return cli_usage_error(cmd, "--pubkey needs --packset");
    if (a->packset && !inside(a->packset, a->out))
        return cli_usage_error(
            cmd,
            "with --packset, --out must be inside it (e.g. %s/deltas/0001.delta);"
            " to build elsewhere use --base, then promote-delta",
            a->packset);
    ap_err err = {0};
    uint64_t *del = NULL;
    size_t nd = 0;
    if (delete_list(a, &del, &nd, &err)) return cli_fail(cmd, &err);
    ap_delta_opts o = {.base_dir = a->base,
                       .add_csv = a->add,
                       .text_col = a->text_col,
                       .id_col = a->id_col,
                       .delete_ids = del,
                       .n_delete = nd,
                       .out_dir = a->out,
                       .lists = (uint32_t)a->lists,
                       .seed = a->seed,
                       .progress = cli_progress,
                       .force = a->force};
    int was_signed = a->packset && signed_dir(a->packset);
    ap_status st = a->packset ? ap_packset_add_delta(a->packset, &o, a->seq, co, &err)
                              : ap_delta_build(&o, &err);
    cli_progress_end();
    free(del);
    if (st) return cli_fail(cmd, &err);
    return a->packset ? changed(cmd, a->packset, was_signed) : EXIT_OK;
}

static int sub_promote_delta(const char *cmd, const args *a, const ap_change_opts *co)
{
    if (!a->packset || !a->delta) return cli_usage_error(cmd, "--packset and --delta are required");
    ap_err err = {0};
    uint64_t seq = 0;
    int was_signed = signed_dir(a->packset);
    if (ap_packset_promote_delta(a->packset, a->delta, co, &seq, &err)) return cli_fail(cmd, &err);
    return changed(cmd, a->packset, was_signed);
}

static int sub_revert(const char *cmd, const args *a, const ap_change_opts *co)
{
    if (!a->packset || !a->has_to) return cli_usage_error(cmd, "--packset and --to are required");
    ap_err err = {0};
    int was_signed = signed_dir(a->packset);
    if (ap_packset_revert(a->packset, a->to, co, &err)) return cli_fail(cmd, &err);
    return changed(cmd, a->packset, was_signed);
}

static int sub_rebase(const char *cmd, const args *a, const ap_change_opts *co)
{
    if (!a->packset || !a->out) return cli_usage_error(cmd, "--packset and --out are required");
    ap_err err = {0};
    ap_status st = ap_packset_rebase(a->packset, a->out, (uint32_t)a->lists, a->seed, co,
                                     cli_progress, NULL, &err);
    cli_progress_end();
    if (st) return cli_fail(cmd, &err);
    return status_json(a->out);
}

static int sub_create(const char *cmd, const args *a, const ap_change_opts *co)
{
    if (!a->base || !a->out) return cli_usage_error(cmd, "--base and --out are required");
    ap_err err = {0};
    if (ap_packset_create(a->base, a->deltas, a->ndeltas, a->out, co, &err))
        return cli_fail(cmd, &err);
    return status_json(a->out);
}

static int sub_status(const char *cmd, const args *a, const ap_change_opts *co)
{
    (void)co;
    if (!a->packset) return cli_usage_error(cmd, "expected DIR");
    return status_json(a->packset);
}

static const struct subcommand {
    const char *name;
    int (*fn)(const char *cmd, const args *a, const ap_change_opts *co);
    int pubkey; /* takes --pubkey (it changes or rebases a packset that may be signed) */
} subcommands[] = {
    {"build-base", sub_build_base, 0},
    {"build-delta", sub_build_delta, 1},
    {"promote-delta", sub_promote_delta, 1},
    {"revert", sub_revert, 1},
    {"rebase", sub_rebase, 1},
    {"create", sub_create, 0},
    {"status", sub_status, 0},
};

int cmd_packset(int argc, char **argv)
{
    if (argc < 2 && ap_log_json()) return cli_usage_error("packset", "expected a SUBCOMMAND");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *name = argv[1];
    char cmd[64];
    snprintf(cmd, sizeof cmd, "packset %s", name);
    args a;
    int pr = parse(cmd, argc - 1, argv + 1, &a);
    if (pr < 0) return EXIT_OK;
    if (pr) return pr;
    const struct subcommand *sub = NULL;
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (!strcmp(name, subcommands[i].name)) sub = &subcommands[i];
    ap_pubkey keys[AP_MAX_PUBKEYS];
    ap_change_opts co = {.force = a.force};
    /* build-base makes a new packset: a --pubkey there has nothing to check. */
    if (a.pubkey && !(sub && sub->fn == sub_build_base)) {
        if (!sub || !sub->pubkey)
            return cli_usage_error(cmd, "--pubkey applies to build-delta, promote-delta, revert "
                                        "and rebase");
        ap_err err = {0};
        if (ap_pubkeys_load(a.pubkey, keys, &co.npubkeys, &err)) return cli_fail(cmd, &err);
        co.pubkeys = keys;
    }
    if (!sub) return cli_usage_error("packset", "unknown subcommand '%s'", name);
    if (a.endpoint_given || sub->fn == sub_build_base || sub->fn == sub_build_delta) {
        if (sub->fn != sub_build_base && (a.emb.embedder || a.emb.model_given))
            return cli_usage_error(cmd, "--embedder and the model options apply to build-base "
                                        "(a delta embeds with its base's recorded embedder)");
        if (sub->fn != sub_build_base && sub->fn != sub_build_delta)
            return cli_usage_error(cmd, "the embedding endpoint options apply to build-base "
                                        "and build-delta");
        int rc = cli_embed_apply(cmd, &a.emb);
        if (rc) return rc;
    }
    return sub->fn(cmd, &a, &co);
}
