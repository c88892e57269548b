/* annpack search, annpack embed */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char search_usage[] =
    "usage: annpack search DIR TEXT [-k N] [--probe N]\n"
    "\n"
    "DIR is a pack or a packset (searched as its merged view: base + deltas - tombstones).\n"
    "\n"
    "Embeds TEXT with the pack's own embedder, probes the nearest lists and prints the\n"
    "global top k as JSON: {\"query\",\"k\",\"probe\",\"took_ms\",\"results\":[{\"id\",\"score\",\n"
    "\"layer\",\"meta\"}]}, best first (ties by ascending id).\n"
    "\n"
    "  -k N          results (default 10, at most 1000)\n"
    "  --probe N     lists to scan (default 8; >= n_lists means exact search)\n"
    "  -h, --help    show this help\n";

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

int cmd_search(int argc, char **argv)
{
    static const struct option opts[] = {{"probe", required_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    uint64_t k = AP_DEFAULT_K, probe = AP_DEFAULT_PROBE;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":hk:", opts, NULL)) != -1;) {
        switch (c) {
        case 'k':
            if (!cli_parse_u64("search", "-k", optarg, 1, AP_MAX_K, &k)) return EXIT_USAGE;
            break;
        case 'p':
            if (!cli_parse_u64("search", "--probe", optarg, 1, UINT32_MAX, &probe)) return EXIT_USAGE;
            break;
        case 'h': fputs(search_usage, stdout); return EXIT_OK;
        case ':': return cli_usage_error("search", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("search", "unknown option %s", argv[optind - 1]);
        }
    }
    if (argc - optind != 2) return cli_usage_error("search", "expected DIR and TEXT");
    const char *dir = argv[optind], *text = argv[optind + 1];
    ap_err err = {0};
    ap_view *p = NULL;
    if (ap_view_open(dir, &p, &err)) return cli_fail("search", &err);
    int rc = EXIT_FAIL;
    const ap_embedder *e = ap_view_embedder(p);
    float *q = malloc(e->dim * sizeof *q);
    ap_hit *hits = malloc(k * sizeof *hits);
    uint32_t n = 0;
    char *json = NULL;
    if (!q || !hits) {
        ap_err_set(&err, AP_ERR_NOMEM, "out of memory");
        cli_fail("search", &err);
        goto out;
    }
    double t0 = now_ms();
    if (ap_view_embed(p, text, strlen(text), q, &err) ||
        ap_view_search(p, q, (uint32_t)k, (uint32_t)probe, hits, &n, &err)) {
        cli_fail("search", &err);
        goto out;
    }
    double took = now_ms() - t0;
    uint32_t eff_probe = probe > ap_view_n_lists(p) ? ap_view_n_lists(p) : (uint32_t)probe;
    json = ap_results_json(text, (uint32_t)k, eff_probe, -1, took, hits, n, ap_view_row_of, p, NULL);
    if (!json) {
        ap_err_set(&err, AP_ERR_NOMEM, "out of memory");
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
    uint32_t dim = ap_view_embedder(p)->dim;
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
