/* annpack canary: the gate before promoting a rebased or rebuilt packset (docs/CLI.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

static const char usage_text[] =
    "usage: annpack canary --base A --candidate B --queries Q.jsonl [--top-k K]\n"
    "                      [--min-overlap X] [--avg-overlap Y] [--probe N]\n"
    "\n"
    "Searches the packs or packsets A (what is served now) and B (what would replace it)\n"
    "with every query of Q.jsonl (one {\"query\": TEXT} a line; other keys, such as a\n"
    "judgments file's, are ignored), each embedded by its own pack's embedder at its own\n"
    "default probe (or --probe N), and compares the top K ids. Prints one JSON object\n"
    "(per query overlap, min, mean, the worst queries) and exits 1 when any query's overlap\n"
    "is below --min-overlap or the mean below --avg-overlap: run it after a rebase or a\n"
    "rebuild and promote B only when it passes.\n"
    "\n"
    "  --base A           the packset or pack served now\n"
    "  --candidate B      the one to compare\n"
    "  --queries Q.jsonl  the text queries\n"
    "  --top-k K          results compared per query (default 5, 1..1000)\n"
    "  --min-overlap X    the least overlap any query may have (default 0.7)\n"
    "  --avg-overlap Y    the least mean overlap (default 0.8)\n"
    "  --probe N          lists probed in both (default: each one's default probe)\n"
    "  -h, --help         show this help\n";

typedef struct canary_args {
    const char *base, *cand, *queries;
    uint32_t k, probe;
    double min_overlap, avg_overlap;
} canary_args;

/* The "query" of every line of path (malloc'd strings); NULL after printing why. */
static char **read_queries(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_msg("canary", AP_LOG_ERROR, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL, **qs = NULL;
    size_t cap = 0, line = 0, cnt = 0, qcap = 0;
    int bad = 0;
    for (ssize_t len; !bad && (len = getline(&buf, &cap, f)) >= 0;) {
        line++;
        if (len == 0 || buf[0] == '\n') continue;
        cJSON *o = cJSON_Parse(buf);
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "query");
        if (!cJSON_IsString(q) || !q->valuestring[0]) {
            cli_msg("canary", AP_LOG_ERROR, "%s:%zu: not {\"query\": TEXT}", path, line);
            bad = 1;
        } else if (cnt == qcap) {
            qcap = qcap ? 2 * qcap : 64;
            char **nq = realloc(qs, qcap * sizeof *nq);
            if (nq) qs = nq;
            bad = !nq;
        }
        if (!bad && !(qs[cnt++] = strdup(q->valuestring))) bad = 1;
        cJSON_Delete(o);
    }
    free(buf);
    fclose(f);
    if (!bad && cnt == 0) {
        cli_msg("canary", AP_LOG_ERROR, "%s: no queries", path);
        bad = 1;
    }
    if (bad) {
        for (size_t i = 0; i < cnt; i++)
            free(qs[i]);
        free(qs);
        return NULL;
    }
    *n = cnt;
    return qs;
}

/* Top-k ids of text in v (n filled). */
static int top_ids(ap_view *v, const char *text, uint32_t k, uint32_t probe, ap_hit *hits,
                   uint32_t *n, ap_err *err)
{
    float *q = malloc(ap_view_dim(v) * sizeof *q);
    if (!q) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = ap_view_embed(v, text, strlen(text), q, err);
    if (!st) st = ap_view_search(v, q, k, probe ? probe : ap_view_default_probe(v), hits, n, err);
    free(q);
    return st;
}

static int run(ap_view *a, ap_view *b, const canary_args *o, char **qs, size_t nq)
{
    ap_hit *ha = malloc(o->k * sizeof *ha), *hb = malloc(o->k * sizeof *hb);
    double *ov = malloc(nq * sizeof *ov);
    cJSON *out = cJSON_CreateObject(), *per = cJSON_CreateArray();
    int rc = EXIT_OK;
    ap_err err = {0};
    double sum = 0, min = 1;
    size_t below = 0;
    if (!ha || !hb || !ov || !out || !per) {
        cli_msg("canary", AP_LOG_ERROR, "out of memory");
        rc = EXIT_FAIL;
    }
    for (size_t i = 0; i < nq && rc == EXIT_OK; i++) {
        uint32_t na = 0, nb = 0, inter = 0;
        if (top_ids(a, qs[i], o->k, o->probe, ha, &na, &err) ||
            top_ids(b, qs[i], o->k, o->probe, hb, &nb, &err)) {
            rc = cli_fail("canary", &err);
            break;
        }
        for (uint32_t x = 0; x < na; x++)
            for (uint32_t y = 0; y < nb; y++)
                inter += ha[x].id == hb[y].id;
        uint32_t denom = na > nb ? na : nb;
        ov[i] = denom ? (double)inter / denom : 1.0;
        sum += ov[i];
        if (ov[i] < min) min = ov[i];
        below += ov[i] < o->min_overlap;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "query", qs[i]);
        cJSON_AddNumberToObject(e, "overlap", ov[i]);
        cJSON_AddItemToArray(per, e);
    }
    if (rc == EXIT_OK) {
        double avg = sum / (double)nq;
        bool pass = min >= o->min_overlap && avg >= o->avg_overlap;
        cJSON_AddBoolToObject(out, "pass", pass);
        cJSON_AddNumberToObject(out, "queries", (double)nq);
        cJSON_AddNumberToObject(out, "top_k", o->k);
        cJSON_AddNumberToObject(out, "min_overlap", min);
        cJSON_AddNumberToObject(out, "avg_overlap", avg);
        cJSON_AddNumberToObject(out, "below_min", (double)below);
        cJSON_AddNumberToObject(out, "threshold_min", o->min_overlap);
        cJSON_AddNumberToObject(out, "threshold_avg", o->avg_overlap);
        cJSON_AddItemToObject(out, "per_query", per);
        per = NULL;
        char *s = cJSON_Print(out);
        rc = s ? cli_emit(s) : EXIT_FAIL;
        if (rc == EXIT_OK) rc = cli_emit("\n");
        free(s);
        if (rc == EXIT_OK && !pass) {
            cli_msg("canary", AP_LOG_ERROR,
                    "FAIL: min overlap@%u %.3f (threshold %.3f, %zu queries below), mean %.3f "
                    "(threshold %.3f)",
                    o->k, min, o->min_overlap, below, avg, o->avg_overlap);
            rc = EXIT_FAIL;
        }
    }
    cJSON_Delete(per);
    cJSON_Delete(out);
    free(ha);
    free(hb);
    free(ov);
    return rc;
}

static int parse_fraction(const char *opt, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!end || end == s || *end || errno || !(v >= 0 && v <= 1))
        return cli_usage_error("canary", "%s expects a number in [0, 1], got '%s'", opt, s);
    *out = v;
    return EXIT_OK;
}

int cmd_canary(int argc, char **argv)
{
    static const struct option opts[] = {{"base", required_argument, 0, 'a'},
                                         {"candidate", required_argument, 0, 'b'},
                                         {"queries", required_argument, 0, 'q'},
                                         {"top-k", required_argument, 0, 'k'},
                                         {"min-overlap", required_argument, 0, 'm'},
                                         {"avg-overlap", required_argument, 0, 'v'},
                                         {"probe", required_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    canary_args o = {.k = 5, .min_overlap = 0.7, .avg_overlap = 0.8};
    uint64_t v;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
        switch (c) {
        case 'a':
            o.base = optarg;
            break;
        case 'b':
            o.cand = optarg;
            break;
        case 'q':
            o.queries = optarg;
            break;
        case 'k':
            if (!cli_parse_u64("canary", "--top-k", optarg, 1, AP_MAX_K, &v)) return EXIT_USAGE;
            o.k = (uint32_t)v;
            break;
        case 'p':
            if (!cli_parse_u64("canary", "--probe", optarg, 1, UINT32_MAX, &v)) return EXIT_USAGE;
            o.probe = (uint32_t)v;
            break;
        case 'm':
            if (parse_fraction("--min-overlap", optarg, &o.min_overlap)) return EXIT_USAGE;
            break;
        case 'v':
            if (parse_fraction("--avg-overlap", optarg, &o.avg_overlap)) return EXIT_USAGE;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK;
        case ':':
            return cli_usage_error("canary", "option %s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("canary", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("canary", "unexpected argument '%s'", argv[optind]);
    if (!o.base || !o.cand || !o.queries)
        return cli_usage_error("canary", "--base, --candidate and --queries are required");
    size_t nq = 0;
    char **qs = read_queries(o.queries, &nq);
    if (!qs) return EXIT_FAIL;
    ap_view *a = NULL, *b = NULL;
    ap_err err = {0};
    int rc = EXIT_OK;
    if (ap_view_open(o.base, &a, &err) || ap_view_open(o.cand, &b, &err))
        rc = cli_fail("canary", &err);
    if (rc == EXIT_OK) rc = run(a, b, &o, qs, nq);
    ap_view_close(a);
    ap_view_close(b);
    for (size_t i = 0; i < nq; i++)
        free(qs[i]);
    free(qs);
    return rc;
}
