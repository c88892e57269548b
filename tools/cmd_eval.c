/* annpack eval: search quality against judged queries (docs/SEARCH_QUALITY.md). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

static const char usage_text[] =
    "usage: annpack eval DIR --judgments J.jsonl [-k K] [--probe N] [--per-query]\n"
    "\n"
    "Searches the pack or packset DIR with every judged text query and prints one JSON\n"
    "summary: the means over the queries of recall@K, precision@5, nDCG@10 and MRR (binary\n"
    "relevance, from the judged ids) and overlap@K, the share of the exact top-K (every\n"
    "list scanned) that the search at the probe also returns. J.jsonl holds one object a\n"
    "line: {\"query\": TEXT, \"relevant\": [ID, ...]} (other keys are ignored). Use it to\n"
    "choose an embedder and a probe; tests/data/manpages/ has a judged set.\n"
    "\n"
    "  --judgments J.jsonl    the judged queries\n"
    "  -k K                   cutoff for recall and overlap (default 10, 1..1000)\n"
    "  --probe N              lists scanned (default: the pack's calibrated default probe)\n"
    "  --per-query            also list each query's figures\n"
    "  -h, --help             show this help\n";

typedef struct judged {
    char *query;
    uint64_t *rel;
    size_t nrel;
} judged;

typedef struct figures {
    double recall, p5, ndcg, mrr, overlap;
} figures;

static int has(const uint64_t *v, size_t n, uint64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x) return 1;
    return 0;
}

/* One line of J.jsonl into *j; returns 0 or prints the reason. */
static int parse_line(const char *path, size_t line, const char *text, judged *j)
{
    cJSON *o = cJSON_Parse(text);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "query");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "relevant");
    int rc = -1;
    if (!cJSON_IsObject(o) || !cJSON_IsString(q) || !cJSON_IsArray(r) || !cJSON_GetArraySize(r)) {
        cli_msg("eval", AP_LOG_ERROR,
                "%s:%zu: not {\"query\": TEXT, \"relevant\": [ID, ...]} with at least one id", path,
                line);
        goto out;
    }
    j->nrel = (size_t)cJSON_GetArraySize(r);
    if (!(j->rel = calloc(j->nrel, sizeof *j->rel)) || !(j->query = strdup(q->valuestring))) {
        cli_msg("eval", AP_LOG_ERROR, "out of memory");
        goto out;
    }
    size_t i = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, r)
    {
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= 9007199254740992.0 ||
            id->valuedouble != floor(id->valuedouble)) {
            cli_msg("eval", AP_LOG_ERROR, "%s:%zu: relevant ids must be integers in [0, 2^53)",
                    path, line);
            goto out;
        }
        j->rel[i++] = (uint64_t)id->valuedouble;
    }
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

static int read_judgments(const char *path, judged **out, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_msg("eval", AP_LOG_ERROR, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t cap = 0, line = 0, cnt = 0, jcap = 0;
    judged *js = NULL;
    int rc = 0;
    for (ssize_t len; !rc && (len = getline(&buf, &cap, f)) >= 0;) {
        line++;
        if (len <= 1 && (len == 0 || buf[0] == '\n')) continue;
        if (cnt == jcap) {
            jcap = jcap ? 2 * jcap : 64;
            judged *nj = realloc(js, jcap * sizeof *nj);
            if (!nj) {
                rc = -1;
                break;
            }
            js = nj;
        }
        memset(&js[cnt], 0, sizeof js[cnt]);
        rc = parse_line(path, line, buf, &js[cnt]);
        cnt++;
    }
    free(buf);
    fclose(f);
    if (!rc && cnt == 0) {
        cli_msg("eval", AP_LOG_ERROR, "%s: no judged queries", path);
        rc = -1;
    }
    *out = js;
    *n = cnt;
    return rc;
}

/* The figures of one query from its hits at the probe and the exact hits. */
static figures score(const judged *j, const ap_hit *hits, uint32_t n, const ap_hit *exact,
                     uint32_t ne, uint32_t k)
{
    figures f = {0};
    size_t found = 0, inter = 0;
    double dcg = 0, idcg = 0;
    for (uint32_t i = 0; i < n; i++) {
        int rel = has(j->rel, j->nrel, hits[i].id);
        if (i < k) found += rel;
        if (i < 5) f.p5 += rel / 5.0;
        if (i < 10) dcg += rel / log2(i + 2.0);
        if (rel && f.mrr == 0 && i < k) f.mrr = 1.0 / (i + 1);
    }
    for (size_t i = 0; i < j->nrel && i < 10; i++)
        idcg += 1.0 / log2((double)i + 2.0);
    for (uint32_t i = 0; i < ne && i < k; i++)
        for (uint32_t m = 0; m < n && m < k; m++)
            inter += hits[m].id == exact[i].id;
    f.recall = (double)found / (double)j->nrel;
    f.ndcg = idcg > 0 ? dcg / idcg : 0;
    f.overlap = ne ? (double)inter / (ne < k ? ne : k) : 1.0;
    return f;
}

static cJSON *figures_json(cJSON *o, const figures *f)
{
    cJSON_AddNumberToObject(o, "recall_at_k", f->recall);
    cJSON_AddNumberToObject(o, "precision_at_5", f->p5);
    cJSON_AddNumberToObject(o, "ndcg_at_10", f->ndcg);
    cJSON_AddNumberToObject(o, "mrr", f->mrr);
    cJSON_AddNumberToObject(o, "overlap_at_k", f->overlap);
    return o;
}

typedef struct eval_args {
    const char *judgments;
    uint32_t k, probe;
    int per_query;
} eval_args;

static int run_eval(ap_view *v, const char *dir, const eval_args *a, const judged *js, size_t nj)
{
    uint32_t dim = ap_view_dim(v), lists = ap_view_n_lists(v);
    uint32_t probe = a->probe ? a->probe : ap_view_default_probe(v);
    uint32_t depth = a->k > 10 ? a->k : 10;
    float *q = malloc(dim * sizeof *q);
    ap_hit *hits = malloc(depth * sizeof *hits), *exact = malloc(depth * sizeof *exact);
    cJSON *out = cJSON_CreateObject(), *per = a->per_query ? cJSON_CreateArray() : NULL;
    figures sum = {0};
    int rc = EXIT_OK;
    ap_err err = {0};
    if (!q || !hits || !exact || !out) {
        cli_msg("eval", AP_LOG_ERROR, "out of memory");
        rc = EXIT_FAIL;
    }
    for (size_t i = 0; i < nj && rc == EXIT_OK; i++) {
        uint32_t n = 0, ne = 0;
        if (ap_view_embed(v, js[i].query, strlen(js[i].query), q, &err) ||
            ap_view_search(v, q, depth, probe, hits, &n, &err) ||
            ap_view_search(v, q, depth, lists, exact, &ne, &err)) {
            rc = cli_fail("eval", &err);
            break;
        }
        figures f = score(&js[i], hits, n, exact, ne, a->k);
        sum.recall += f.recall, sum.p5 += f.p5, sum.ndcg += f.ndcg, sum.mrr += f.mrr;
        sum.overlap += f.overlap;
        if (per) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "query", js[i].query);
            cJSON_AddItemToArray(per, figures_json(o, &f));
        }
    }
    if (rc == EXIT_OK) {
        cJSON_AddStringToObject(out, "dir", dir);
        cJSON_AddNumberToObject(out, "queries", (double)nj);
        cJSON_AddNumberToObject(out, "k", a->k);
        cJSON_AddNumberToObject(out, "probe", probe > lists ? lists : probe);
        cJSON_AddNumberToObject(out, "n_lists", lists);
        figures mean = {sum.recall / nj, sum.p5 / nj, sum.ndcg / nj, sum.mrr / nj,
                        sum.overlap / nj};
        figures_json(out, &mean);
        if (per) cJSON_AddItemToObject(out, "per_query", per);
        per = NULL;
        char *s = cJSON_Print(out);
        if (s) {
            rc = cli_emit(s);
            if (rc == EXIT_OK) rc = cli_emit("\n");
        } else {
            rc = EXIT_FAIL;
        }
        free(s);
    }
    cJSON_Delete(per);
    cJSON_Delete(out);
    free(q);
    free(hits);
    free(exact);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {{"judgments", required_argument, 0, 'j'},
                                         {"probe", required_argument, 0, 'p'},
                                         {"per-query", no_argument, 0, 'P'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    eval_args a = {.k = 10};
    uint64_t v;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":hk:", opts, NULL)) != -1;) {
        switch (c) {
        case 'j':
            a.judgments = optarg;
            break;
        case 'k':
            if (!cli_parse_u64("eval", "-k", optarg, 1, AP_MAX_K, &v)) return EXIT_USAGE;
            a.k = (uint32_t)v;
            break;
        case 'p':
            if (!cli_parse_u64("eval", "--probe", optarg, 1, UINT32_MAX, &v)) return EXIT_USAGE;
            a.probe = (uint32_t)v;
            break;
        case 'P':
            a.per_query = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK;
        case ':':
            return cli_usage_error("eval", "option %s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("eval", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc) return cli_usage_error("eval", "expected one pack or packset DIR");
    if (!a.judgments) return cli_usage_error("eval", "--judgments is required");
    judged *js = NULL;
    size_t nj = 0;
    int rc = read_judgments(a.judgments, &js, &nj) ? EXIT_FAIL : EXIT_OK;
    ap_view *view = NULL;
    ap_err err = {0};
    if (rc == EXIT_OK && ap_view_open(argv[optind], &view, &err)) rc = cli_fail("eval", &err);
    if (rc == EXIT_OK) rc = run_eval(view, argv[optind], &a, js, nj);
    ap_view_close(view);
    for (size_t i = 0; i < nj; i++) {
        free(js[i].query);
        free(js[i].rel);
    }
    free(js);
    return rc;
}
