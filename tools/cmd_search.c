/* annpack search, annpack embed */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "embed_opts.h"
#include "search_eval.h"

static const char search_usage[] =
    "usage: annpack search DIR TEXT [-k N] [--probe N] [--where COL=V]... [--scan MODE]\n"
    "                      [--rerank R]\n"
    "       annpack search DIR --queries Q.fvecs [-k N] [--probe N] [--gt GT.ivecs]\n"
    "                      [--ids-out OUT.ivecs] [--threads T] [--warmup W] [--scan ...]\n"
    "\n"
    "DIR is a pack or a packset (searched as its merged view: base + deltas - tombstones).\n"
    "\n"
    "Embeds TEXT with the pack's own embedder, probes the nearest lists and prints the\n"
    "global top k as JSON: {\"query\",\"k\",\"probe\",\"took_ms\",\"results\":[{\"id\",\"score\",\n"
    "\"layer\",\"meta\"}]}, best first (ties by ascending id).\n"
    "\n"
    "With --queries, runs every vector of Q.fvecs as a query, one at a time (T client\n"
    "threads), and prints one JSON summary: queries, qps, latency_us p50/p99/mean,\n"
    "recall_at_k against --gt (ivecs of true neighbour ids, best first), vectors and bytes\n"
    "scanned per query, probe/scan/overhead microseconds (p50) and the scan's GB/s.\n"
    "\n"
    "  -k N            results (default 10, at most 1000)\n"
    "  --where COL=V   only documents whose metadata column COL is V (repeatable: all must\n"
    "                  hold; COL one of the pack's --filter-cols; exact among them)\n"
    "  --probe N       lists to scan (default: the pack's calibrated default probe, see\n"
    "                  annpack inspect; 8 for packs built without one; >= n_lists means\n"
    "                  exact search)\n"
    "  --scan MODE     auto|f16|sq8|bits: auto (default) the int8 sidecar when the pack has\n"
    "                  one, else f16 (the fastest at the calibrated recall as measured);\n"
    "                  f16 exact; sq8 int8 codes, then exact re-ranking (needs pack.sq8);\n"
    "                  bits 1-bit codes, then exact re-ranking of every vector the codes'\n"
    "                  error bound cannot rule out (needs pack.bits)\n"
    "  --rerank R      sq8 candidates re-scored exactly (default max(64, 8k))\n"
    "  --queries F     .fvecs query vectors (normalised like the pack's vectors)\n"
    "  --gt F          .ivecs ground truth for recall@k\n"
    "  --ids-out F     write each query's k result ids as .ivecs (-1 pads short results)\n"
    "  --threads T     client threads (default 1)\n"
    "  --warmup W      unmeasured passes over the queries first (default 0)\n"
    "  --no-canary-check   skip re-embedding the canaries (an HTTP embedder's pack)\n"
    "  -h, --help      show this help\n"
    "\n"
    "A pack built with an embedding service (docs/EMBEDDERS.md) embeds TEXT through the\n"
    "service named here (the endpoint is not in the pack), after checking the pack's\n"
    "canaries: the same texts must embed as at build time, else it refuses.\n";

static const char embed_usage[] =
    "usage: annpack embed DIR TEXT\n"
    "\n"
    "Prints the query vector the pack would search TEXT with, as a JSON array of floats\n"
    "(each printed with 9 significant digits, which round-trips a float exactly).\n";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#define MAX_WHERE 16

typedef struct search_args {
    uint64_t k, probe;
    ap_where where[MAX_WHERE]; /* --where COL=VALUE (col and value point into argv) */
    size_t nwhere;
    ap_scan_mode scan;
    uint32_t rerank;
    search_eval_opts eo;
    cli_embed emb;
    int no_canary;
} search_args;

/* The options into a; returns -1 after printing --help, else an exit status (EXIT_OK to
 * go on). optind is left at the first operand. */
static int parse_search_args(int argc, char **argv, search_args *a)
{
    static const struct option opts[] = {{"probe", required_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},
                                         {"scan", required_argument, 0, 's'},
                                         {"rerank", required_argument, 0, 'r'},
                                         {"queries", required_argument, 0, 'Q'},
                                         {"gt", required_argument, 0, 'g'},
                                         {"ids-out", required_argument, 0, 'o'},
                                         {"threads", required_argument, 0, 'T'},
                                         {"warmup", required_argument, 0, 'w'},
                                         {"where", required_argument, 0, 'W'},
                                         {"no-canary-check", no_argument, 0, 'C'},
                                         CLI_ENDPOINT_LONGOPTS,
                                         {0, 0, 0, 0}};
    uint64_t v;
    ap_err e = {0};
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":hk:", opts, NULL)) != -1;) {
        switch (c) {
        case 'k':
            if (!cli_parse_u64("search", "-k", optarg, 1, AP_MAX_K, &a->k)) return EXIT_USAGE;
            break;
        case 'p':
            if (!cli_parse_u64("search", "--probe", optarg, 1, UINT32_MAX, &a->probe))
                return EXIT_USAGE;
            break;
        case 's':
            if (ap_scan_mode_parse(optarg, &a->scan, &e))
                return cli_usage_error("search", "--%s", e.msg);
            break;
        case 'r':
            if (!cli_parse_u64("search", "--rerank", optarg, 1, AP_MAX_RERANK, &v))
                return EXIT_USAGE;
            a->rerank = (uint32_t)v;
            break;
        case 'Q':
            a->eo.queries = optarg;
            break;
        case 'W': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                return cli_usage_error("search", "--where expects COL=VALUE, got '%s'", optarg);
            if (a->nwhere == MAX_WHERE)
                return cli_usage_error("search", "at most %d --where", MAX_WHERE);
            *eq = '\0';
            a->where[a->nwhere++] = (ap_where){optarg, eq + 1};
            break;
        }
        case 'g':
            a->eo.gt = optarg;
            break;
        case 'o':
            a->eo.ids_out = optarg;
            break;
        case 'T':
            if (!cli_parse_u64("search", "--threads", optarg, 1, 256, &v)) return EXIT_USAGE;
            a->eo.threads = (uint32_t)v;
            break;
        case 'w':
            if (!cli_parse_u64("search", "--warmup", optarg, 0, 100, &v)) return EXIT_USAGE;
            a->eo.warmup = (uint32_t)v;
            break;
        case 'C':
            a->no_canary = 1;
            break;
        case 'h':
            fputs(search_usage, stdout);
            fputs(cli_embed_help_endpoint, stdout);
            return -1;
        case ':':
            return cli_usage_error("search", "option %s needs a value", argv[optind - 1]);
        default: {
            int r = cli_embed_opt("search", c, optarg, &a->emb);
            if (r < 0) return EXIT_USAGE;
            if (r) break;
            return cli_usage_error("search", "unknown option %s", argv[optind - 1]);
        }
        }
    }
    return EXIT_OK;
}

/* search DIR --queries Q.fvecs: search_eval.h. */
static int search_queries(const char *dir, search_args *a, const ap_search_params *sp)
{
    ap_err err = {0};
    ap_view *p = NULL;
    if (ap_view_open(dir, &p, &err)) return cli_fail("search", &err);
    a->eo.params = *sp;
    if (!a->eo.params.probe) a->eo.params.probe = ap_view_default_probe(p);
    int rc = search_eval(p, &a->eo);
    ap_view_close(p);
    return rc;
}

/* search DIR TEXT: embed, search, print the results JSON. */
static int search_text(const char *dir, const char *text, const ap_search_params *given,
                       const ap_where *where, size_t nwhere, int canary_check)
{
    ap_search_params params = *given, *sp = &params;
    ap_err err = {0};
    /* The same check as the mount's query names and Python's search(). */
    if (ap_query_text_check(text, strlen(text), &err)) return cli_fail("search", &err);
    ap_view *p = NULL;
    if (ap_view_open(dir, &p, &err)) return cli_fail("search", &err);
    if (!sp->probe) sp->probe = ap_view_default_probe(p); /* none given: the pack's */
    int rc = EXIT_FAIL;
    const ap_embedder *e = ap_view_embedder(p);
    float *q = malloc(ap_embedder_dim(e) * sizeof *q);
    ap_hit *hits = malloc(sp->k * sizeof *hits);
    uint32_t n = 0;
    char *json = NULL;
    if (!q || !hits) {
        ap_err_set(&err, AP_ERR_NOMEM, "out of memory");
        cli_fail("search", &err);
        goto out;
    }
    if (canary_check && ap_embedder_is_remote(e) && ap_embedder_check(e, NULL, &err)) {
        cli_fail("search", &err);
        goto out;
    }
    double t0 = now_ms();
    if (ap_view_embed(p, text, strlen(text), q, &err) ||
        ap_view_search_where(p, q, sp, where, nwhere, hits, &n, NULL, &err)) {
        cli_fail("search", &err);
        goto out;
    }
    double took = now_ms() - t0;
    uint32_t eff_probe = sp->probe > ap_view_n_lists(p) ? ap_view_n_lists(p) : sp->probe;
    json =
        ap_results_json(text, sp->k, eff_probe, -1, took, hits, n, ap_view_row_of, p, NULL, &err);
    if (!json) {
        cli_fail("search", &err);
        goto out;
    }
    rc = cli_emit(json);
out:
    free(json);
    free(q);
    free(hits);
    ap_view_close(p);
    return rc;
}

int cmd_search(int argc, char **argv)
{
    search_args a = {.k = AP_DEFAULT_K, .probe = 0, .scan = AP_SCAN_AUTO, .eo = {.threads = 1}};
    int rc = parse_search_args(argc, argv, &a);
    if (rc < 0) return EXIT_OK;
    if (rc) return rc;
    if ((rc = cli_embed_apply("search", &a.emb))) return rc;
    ap_search_params sp = {
        .k = (uint32_t)a.k, .probe = (uint32_t)a.probe, .scan = a.scan, .rerank = a.rerank};
    if (a.eo.queries) {
        if (argc - optind != 1)
            return cli_usage_error("search", "expected DIR (and no TEXT) with --queries");
        if (a.nwhere) return cli_usage_error("search", "--where is for text queries");
        return search_queries(argv[optind], &a, &sp);
    }
    if (a.eo.gt || a.eo.ids_out || a.eo.threads != 1 || a.eo.warmup)
        return cli_usage_error("search", "--gt, --ids-out, --threads and --warmup need --queries");
    if (argc - optind != 2) return cli_usage_error("search", "expected DIR and TEXT");
    return search_text(argv[optind], argv[optind + 1], &sp, a.where, a.nwhere, !a.no_canary);
}

int cmd_embed(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(embed_usage, stdout);
        return EXIT_OK;
    }
    if (argc != 3) return cli_usage_error("embed", "expected DIR and TEXT");
    ap_err err = {0};
    ap_view *p = NULL;
    if (ap_view_open(argv[1], &p, &err)) return cli_fail("embed", &err);
    uint32_t dim = ap_embedder_dim(ap_view_embedder(p));
    float *q = malloc(dim * sizeof *q);
    char *out = malloc(dim * 20 + 4);
    int rc = EXIT_FAIL;
    if (!q || !out) {
        ap_err_set(&err, AP_ERR_NOMEM, "out of memory");
        cli_fail("embed", &err);
    } else if (ap_view_embed(p, argv[2], strlen(argv[2]), q, &err)) {
        cli_fail("embed", &err);
    } else {
        size_t at = 0;
        out[at++] = '[';
        for (uint32_t i = 0; i < dim; i++)
            at += (size_t)sprintf(out + at, "%s%.9g", i ? "," : "", (double)q[i]);
        strcpy(out + at, "]\n");
        rc = cli_emit(out);
    }
    free(q);
    free(out);
    ap_view_close(p);
    return rc;
}
