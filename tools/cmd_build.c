/* annpack build */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "embed_opts.h"

static const char usage_head[] =
    "usage: annpack build --input CSV --text-col COL --output DIR [options]\n"
    "       annpack build --vectors FILE.fvecs [--input CSV] --output DIR [options]\n"
    "\n"
    "Builds a pack directory (pack.annpack, metadata rows, id index, manifest) from a CSV\n"
    "with a header row. Every column goes into each row's metadata, plus an integer \"id\".\n"
    "With --vectors the vectors are given (fvecs: per vector an int32 dim then dim float32)\n"
    "and L2-normalised on the way in; ids are row numbers; an --input CSV is then optional\n"
    "and supplies each row's metadata in the same row order. Such a pack is searched with\n"
    "vectors (annpack search --queries), not text.\n"
    "\n"
    "  --input CSV            input file (RFC 4180; UTF-8)\n"
    "  --text-col COL         column to embed\n"
    "  --id-col COL           integer ids in [0, 2^53) (default: 0-based row numbers)\n"
    "  --vectors FILE.fvecs   the vectors themselves (no embedding)\n"
    "  --output DIR           pack directory to create (replaced if empty or an earlier\n"
    "                         unsigned build output; never a packset or one of its layers)\n"
    "  --lists N              IVF lists (default: about sqrt(rows); clamped to rows)\n"
    "  --seed S               k-means and embedder seed (default 0)\n"
    "  --iters N              k-means iterations (default 20; fewer if it converges)\n"
    "  --sq8                  also write the int8 sidecar pack.sq8: searches scan it first\n"
    "                         and re-rank exactly (about twice the speed; docs/FORMAT.md)\n"
    "  --bits                 also write the 1-bit code sidecar pack.bits: searches scan\n"
    "                         1 bit per dimension and re-rank exactly within the codes'\n"
    "                         error bound (the fastest scan; docs/FORMAT.md)\n"
    "  --dim D                embedding dimension (default 256)\n"
    "  --target-recall R      calibrate the default probe: the smallest reaching recall R\n"
    "                         on held-out self-queries (default 0.95; 0: do not calibrate;\n"
    "                         small packs default to every list; docs/FORMAT.md)\n"
    "  --filter-cols A,B      metadata columns searches can filter on (search --where A=V,\n"
    "                         the mount's ?A=V, Python filters=): pack.filter\n"
    "  --embedder-version 1|2 the hash embedder's version (default 2: BM25 weights from the\n"
    "                         corpus, stored in pack.idf; 1: plain hashing, as before)\n"
    "  --max-rows N           keep only the first N data rows (says how many were left out)\n"
    "  --meta-compression zstd|none   metadata encoding (default zstd, seekable; none for\n"
    "                         --vectors without --input)\n"
    "  --json                 print a JSON report (rows, lists, seconds per phase) on stdout\n"
    "  --force                replace DIR (atomically) even if it is not an earlier output\n"
    "  -h, --help             show this help\n"
    "\n"
    "Embedding with a model through a service (docs/EMBEDDERS.md); with --vectors these name\n"
    "the model the vectors came from, so the pack answers text queries:\n";

static const char usage_tail[] =
    "\n"
    "Environment: ANNPACK_THREADS worker threads (default 1; results never depend on it;\n"
    "with a service, the requests in flight at once); ANNPACK_EMBED_URL,\n"
    "ANNPACK_EMBED_API_KEY (never logged, never written into the pack).\n";

typedef struct build_args {
    ap_build_opts o;
    cli_embed emb;
    int json, codec_given, lists_given, embedder_version;
} build_args;

static int parse_codec(const char *s, ap_meta_codec *out)
{
    if (!strcmp(s, "zstd"))
        *out = AP_META_ZSTD;
    else if (!strcmp(s, "none"))
        *out = AP_META_NONE;
    else
        return cli_usage_error("build", "--meta-compression must be zstd or none, got '%s'", s);
    return EXIT_OK;
}

/* The options into b; returns -1 after printing --help, else an exit status (EXIT_OK to
 * go on). */
static int parse_build_args(int argc, char **argv, build_args *b)
{
    static const struct option opts[] = {{"input", required_argument, 0, 'i'},
                                         {"text-col", required_argument, 0, 't'},
                                         {"id-col", required_argument, 0, 'I'},
                                         {"output", required_argument, 0, 'o'},
                                         {"lists", required_argument, 0, 'l'},
                                         {"seed", required_argument, 0, 's'},
                                         {"dim", required_argument, 0, 'd'},
                                         {"max-rows", required_argument, 0, 'm'},
                                         {"meta-compression", required_argument, 0, 'c'},
                                         {"force", no_argument, 0, 'f'},
                                         {"help", no_argument, 0, 'h'},
                                         {"vectors", required_argument, 0, 'v'},
                                         {"iters", required_argument, 0, 'n'},
                                         {"sq8", no_argument, 0, 'q'},
                                         {"bits", no_argument, 0, 'B'},
                                         {"json", no_argument, 0, 'j'},
                                         {"embedder-version", required_argument, 0, 'E'},
                                         {"target-recall", required_argument, 0, 'R'},
                                         {"filter-cols", required_argument, 0, 'F'},
                                         CLI_EMBED_LONGOPTS,
                                         {0, 0, 0, 0}};
    ap_build_opts *o = &b->o;
    uint64_t v;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
        switch (c) {
        case 'i':
            o->input_csv = optarg;
            break;
        case 't':
            o->text_col = optarg;
            break;
        case 'I':
            o->id_col = optarg;
            break;
        case 'o':
            o->output_dir = optarg;
            break;
        case 'l':
            /* --lists 0 is bad input (exit 1), not a usage slip. */
            if (!strcmp(optarg, "0")) {
                cli_msg("build", AP_LOG_ERROR, "--lists must be at least 1");
                return EXIT_FAIL;
            }
            if (!cli_parse_u64("build", "--lists", optarg, 1, UINT32_MAX, &v)) return EXIT_USAGE;
            o->lists = (uint32_t)v;
            b->lists_given = 1;
            break;
        case 's':
            if (!cli_parse_u64("build", "--seed", optarg, 0, (1ull << 53) - 1, &o->seed))
                return EXIT_USAGE;
            break;
        case 'd':
            if (!cli_parse_u64("build", "--dim", optarg, 1, UINT32_MAX, &v)) return EXIT_USAGE;
            o->dim = (uint32_t)v;
            break;
        case 'm':
            if (!cli_parse_u64("build", "--max-rows", optarg, 1, UINT64_MAX, &o->max_rows))
                return EXIT_USAGE;
            break;
        case 'c':
            b->codec_given = 1;
            if (parse_codec(optarg, &o->meta_codec)) return EXIT_USAGE;
            break;
        case 'f':
            o->force = true;
            break;
        case 'v':
            o->vectors = optarg;
            break;
        case 'n':
            if (!cli_parse_u64("build", "--iters", optarg, 1, 1000, &v)) return EXIT_USAGE;
            o->kmeans_iters = (uint32_t)v;
            break;
        case 'q':
            o->sq8 = true;
            break;
        case 'B':
            o->bits = true;
            break;
        case 'j':
            b->json = 1;
            break;
        case 'R':
            if (cli_parse_recall("build", optarg, &o->target_recall)) return EXIT_USAGE;
            break;
        case 'F':
            o->filter_cols = optarg;
            break;
        case 'E':
            if (!cli_parse_u64("build", "--embedder-version", optarg, 1, 2, &v)) return EXIT_USAGE;
            b->embedder_version = (int)v;
            break;
        case 'h':
            fputs(usage_head, stdout);
            fputs(cli_embed_help_build, stdout);
            fputs(cli_embed_help_endpoint, stdout);
            fputs(usage_tail, stdout);
            return -1;
        case ':':
            return cli_usage_error("build", "option %s needs a value", argv[optind - 1]);
        default: {
            int r = cli_embed_opt("build", c, optarg, &b->emb);
            if (r < 0) return EXIT_USAGE;
            if (r) break;
            return cli_usage_error("build", "unknown option %s", argv[optind - 1]);
        }
        }
    }
    if (optind < argc) return cli_usage_error("build", "unexpected argument '%s'", argv[optind]);
    return EXIT_OK;
}

/* The rules between options; sets what follows from them. */
static int check_build_args(build_args *b)
{
    ap_build_opts *o = &b->o;
    if (!o->input_csv && !o->vectors)
        return cli_usage_error("build", "--input or --vectors is required");
    if (!o->text_col && !o->vectors) return cli_usage_error("build", "--text-col is required");
    if (!o->output_dir) return cli_usage_error("build", "--output is required");
    if (o->vectors && o->id_col)
        return cli_usage_error("build",
                               "--id-col cannot be used with --vectors (ids are row numbers)");
    if (o->vectors && b->embedder_version)
        return cli_usage_error("build", "--embedder-version cannot be used with --vectors");
    if (o->vectors && o->dim)
        return cli_usage_error("build",
                               "--dim cannot be used with --vectors (the file gives the dim)");
    const char *en = b->emb.embedder;
    if (en && strcmp(en, "hash") && !cli_embed_is_http(en))
        return cli_usage_error("build", "--embedder must be hash, openai, tei or ollama, got '%s'",
                               en);
    if (cli_embed_is_http(en) && o->dim)
        return cli_usage_error("build", "--dim is the hash embedder's; a model's is --embed-dim");
    if (o->vectors && en && !cli_embed_is_http(en))
        return cli_usage_error("build", "--vectors takes no --embedder but an HTTP one naming "
                                        "the model the vectors came from");
    int rc = cli_embed_apply("build", &b->emb);
    if (rc) return rc;
    o->embedder = en;
    if (cli_embed_is_http(en)) o->http = &b->emb.model;
    if (b->embedder_version && cli_embed_is_http(en))
        return cli_usage_error("build", "--embedder-version is the hash embedder's, not %s's", en);
    if (b->embedder_version) o->embedder = b->embedder_version == 1 ? "hash:1" : "hash:2";
    /* Rows of a vectors-only pack are just {"id":N}: compressing them buys little and costs
     * every search result a frame decompression, so they stay plain unless asked. */
    if (o->vectors && !o->input_csv && !b->codec_given) o->meta_codec = AP_META_NONE;
    return EXIT_OK;
}

/* The notes and summary on stderr, and with --json the report on stdout. */
static int report_build(const build_args *b, const ap_build_report *rep)
{
    const ap_build_opts *o = &b->o;
    if (rep->rows_skipped)
        cli_msg("build", AP_LOG_WARN, "--max-rows %llu: left out %llu of %llu rows",
                (unsigned long long)o->max_rows, (unsigned long long)rep->rows_skipped,
                (unsigned long long)rep->rows + (unsigned long long)rep->rows_skipped);
    if (b->lists_given && rep->lists_effective < rep->lists_requested)
        cli_msg("build", AP_LOG_WARN, "--lists %u clamped to %u (the number of vectors)",
                rep->lists_requested, rep->lists_effective);
    cli_msg("build", AP_LOG_INFO, "%llu rows, dim %u, %u lists -> %s (%.2f s)",
            (unsigned long long)rep->rows, rep->dim, rep->lists_effective, o->output_dir,
            rep->seconds_total);
    if (!b->json) return EXIT_OK;
    char out[1024];
    snprintf(
        out, sizeof out,
        "{\"rows\":%llu,\"dim\":%u,\"lists\":%u,\"threads\":%u,\"train_rows\":%llu,"
        "\"kmeans_passes\":%u,\"sq8\":%s,\"bits\":%s,\"seconds\":{\"total\":%.6f,\"embed\":%.6f,"
        "\"kmeans\":%.6f,\"assign\":%.6f,\"sq8\":%.6f,\"write\":%.6f}}\n",
        (unsigned long long)rep->rows, rep->dim, rep->lists_effective, rep->threads,
        (unsigned long long)rep->train_rows, rep->kmeans_passes, o->sq8 ? "true" : "false",
        o->bits ? "true" : "false", rep->seconds_total, rep->seconds_embed, rep->seconds_kmeans,
        rep->seconds_assign, rep->seconds_sq8, rep->seconds_write);
    return cli_emit(out);
}

int cmd_build(int argc, char **argv)
{
    build_args b = {.o = {.meta_codec = AP_META_ZSTD, .progress = cli_progress}};
    int rc = parse_build_args(argc, argv, &b);
    if (rc < 0) return EXIT_OK;
    if (rc || (rc = check_build_args(&b))) return rc;
    ap_build_report rep;
    ap_err err = {0};
    ap_status st = ap_pack_build(&b.o, &rep, &err);
    cli_progress_end();
    if (st) return cli_fail("build", &err);
    return report_build(&b, &rep);
}
