/* Building a pack directory from a CSV or vectors: see include/annpack/build.h.
 *
 * Data flows one way: the rows (rows.c: metadata rows written as they arrive, vectors
 * embedded or given) -> k-means -> lists -> ANNP writer (and the int8 sidecar) ->
 * manifest with hashes. Everything is written into a temporary directory beside the
 * output and renamed into place at the end. */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "annp_stream.h"
#include "annpack/bits.h"
#include "annpack/build.h"
#include "annpack/caps.h"
#include "annpack/embed.h"
#include "annpack/format.h"
#include "annpack/log.h"
#include "annpack/sign.h"
#include "annpack/sq8.h"
#include "bits_stream.h"
#include "calibrate.h"
#include "corpus.h"
#include "delta_group.h"
#include "delta_lists.h"
#include "digest_table.h"
#include "digests_write.h"
#include "env.h"
#include "filter.h"
#include "filter_build.h"
#include "fp16.h"
#include "fsops.h"
#include "json.h"
#include "kmeans.h"
#include "manifest.h"
#include "mapping.h"
#include "output.h"
#include "pack_write.h"
#include "parallel.h"
#include "quant8.h"
#include "rows.h"
#include "sq8_stream.h"

/* The k-means progress context is not const: the spec travels in a box. */
typedef struct spec_box {
    const ap_pack_spec *sp;
} spec_box;

static void kmeans_progress(void *ud, uint32_t it, uint32_t iters)
{
    const ap_pack_spec *sp = ((const spec_box *)ud)->sp;
    if (sp->progress) sp->progress(sp->progress_ud, "kmeans", it, iters);
}

/* The lists as ap_annp_write_stream asks for them: list l is rows order[start[l]..) (row
 * order within a list), gathered and rounded to f16 into one list's buffers, and passed on
 * to the int8 sidecar while they are at hand. */
typedef struct list_source {
    const ap_pack_spec *sp;
    uint32_t dim;
    const uint32_t *order, *counts;
    const size_t *start;
    uint64_t *ids;  /* one list's */
    uint16_t *vecs; /* one list's */
    ap_sq8_stream *sq8;
    ap_bits_stream *bits;
    const float *centroids;
} list_source;

/* Rows are gathered and rounded each on its own, so splitting a list into parts changes
 * nothing. */
typedef struct gather_job {
    const list_source *s;
    const uint32_t *rows;
    uint32_t count;
} gather_job;

static void gather_part(void *ctx, uint32_t p, uint32_t nparts)
{
    const gather_job *g = ctx;
    const list_source *s = g->s;
    size_t from, to;
    ap_part_range(g->count, p, nparts, &from, &to);
    for (size_t i = from; i < to; i++) {
        s->ids[i] = s->sp->ids[g->rows[i]];
        ap_f32_to_f16_n(s->vecs + i * s->dim, s->sp->vecs + (size_t)g->rows[i] * s->dim, s->dim);
    }
}

static ap_status next_list(void *ctx, uint32_t l, const uint64_t **ids, const uint16_t **vecs,
                           ap_err *err)
{
    list_source *s = ctx;
    gather_job g = {s, s->order + s->start[l], s->counts[l]};
    ap_parallel_for(ap_parallel_parts(g.count, 512), gather_part, &g);
    *ids = s->ids;
    *vecs = s->vecs;
    ap_status st = s->sq8 ? ap_sq8_stream_list(s->sq8, s->vecs, s->counts[l], err) : AP_OK;
    if (!st && s->bits)
        st = ap_bits_stream_list(s->bits, s->vecs, s->counts[l], s->centroids + (size_t)l * s->dim,
                                 err);
    return st;
}

/* Assigns every vector to its list and writes pack.annpack (and pack.sq8) list by list:
 * beside the rows themselves only an assignment, a row order and one list's buffers are
 * held (the lean build; the bytes are those of grouping everything first). With a target
 * recall, calibrates the default probe into *cal (cal->n_lists 0 otherwise). */
static ap_status write_lists(const ap_pack_spec *sp, const char *dir, uint32_t k,
                             const float *centroids, ap_build_report *rep, ap_calibration *cal,
                             ap_err *err)
{
    size_t n = sp->n;
    uint32_t dim = ap_embedder_dim(sp->emb);
    ap_status st = AP_OK;
    uint32_t *assign = malloc((n ? n : 1) * sizeof *assign);
    uint32_t *order = malloc((n ? n : 1) * sizeof *order);
    uint32_t *counts = calloc(k, sizeof *counts);
    size_t *start = calloc(k + 1ull, sizeof *start), *fill = calloc(k, sizeof *fill);
    char *path = ap_path_join(dir, AP_ANNPACK);
    list_source src = {
        .sp = sp, .dim = dim, .counts = counts, .start = start, .centroids = centroids};
    if (!assign || !order || !counts || !start || !fill || !path) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory grouping %zu vectors", n);
        goto out;
    }
    if (n > UINT32_MAX) {
        st = ap_err_set(err, AP_ERR_LIMIT, "%zu vectors exceed the format's u32 count", n);
        goto out;
    }
    double ta = ap_now_s(), tp = ta;
    if (n && (st = ap_kmeans_assign(sp->vecs, n, dim, centroids, k, assign, NULL, err))) goto out;
    rep->seconds_assign = ap_now_s() - ta;
    ap_phase_log("assign", &tp);
    uint32_t max_count = 0;
    for (size_t i = 0; i < n; i++) {
        assert(assign[i] < k);
        counts[assign[i]]++;
    }
    if (n && sp->target_recall > 0 &&
        (st = ap_calibrate(sp->vecs, n, dim, centroids, k, assign, sp->target_recall, cal, err)))
        goto out;
    ap_phase_log("calibrate", &tp);
    for (uint32_t l = 0; l < k; l++) {
        start[l + 1] = start[l] + counts[l];
        fill[l] = start[l];
        if (counts[l] > max_count) max_count = counts[l];
    }
    assert(start[k] == n);
    for (size_t i = 0; i < n; i++)
        order[fill[assign[i]]++] = (uint32_t)i;
    src.order = order;
    src.ids = malloc((max_count ? max_count : 1) * sizeof *src.ids);
    src.vecs = malloc((max_count ? max_count : 1) * (size_t)dim * sizeof *src.vecs);
    if (!src.ids || !src.vecs) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory for a list of %u vectors", max_count);
        goto out;
    }
    double ts = ap_now_s();
    if (sp->sq8) {
        float *params = malloc(3ull * dim * sizeof *params);
        uint16_t *h = malloc((size_t)dim * sizeof *h);
        if (!params || !h)
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        else {
            ap_sq8_train_f16_of_f32(sp->vecs, n, dim, params, params + dim, h, params + 2ull * dim);
            st = ap_sq8_stream_open(dir, dim, k, counts, n, params, params + dim, &src.sq8, err);
        }
        free(params);
        free(h);
        if (st) goto out;
    }
    /* training; the encoding is inside the list writing (0 without a sidecar) */
    rep->seconds_sq8 = sp->sq8 ? ap_now_s() - ts : 0;
    ap_phase_log("group and sq8 training", &tp);
    if (sp->bits && (st = ap_bits_stream_open(dir, dim, k, counts, n, &src.bits, err))) goto out;
    st = ap_annp_write_stream(path, dim, k, centroids, counts, next_list, &src, err);
    if (src.bits) {
        ap_status cst = ap_bits_stream_close(src.bits, !st, st ? NULL : err);
        if (!st) st = cst;
        src.bits = NULL;
    }
    if (src.sq8) {
        ap_status cst = ap_sq8_stream_close(src.sq8, !st, st ? NULL : err);
        if (!st) st = cst;
        src.sq8 = NULL;
    }
    ap_phase_log("lists", &tp);
out:
    ap_sq8_stream_close(src.sq8, false, NULL);
    ap_bits_stream_close(src.bits, false, NULL);
    free(assign);
    free(order);
    free(counts);
    free(start);
    free(fill);
    free(src.ids);
    free(src.vecs);
    free(path);
    return st;
}

/* SOURCE_DATE_EPOCH, when set, is the build's "created" time (reproducible builds). */
static ap_status add_created(cJSON *b, ap_err *err)
{
    const ap_env *env = ap_env_get();
    if (env->source_date_epoch_set) {
        if (!env->source_date_epoch_ok)
            return ap_err_set(err, AP_ERR_ARG, "SOURCE_DATE_EPOCH=%s is not a Unix time",
                              env->source_date_epoch_text);
        time_t tt = (time_t)env->source_date_epoch;
        struct tm tm;
        char ts[32];
        gmtime_r(&tt, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        cJSON_AddStringToObject(b, "created", ts);
    }
    return AP_OK;
}

/* The manifest's "build" block: the tool's fields, then the caller's (sp->build), then how
 * the pack was written, for a stable order. */
static ap_status manifest_build_block(const ap_pack_spec *sp, uint32_t k, uint32_t iters,
                                      const ap_calibration *cal, cJSON **out, ap_err *err)
{
    cJSON *b = cJSON_CreateObject();
    *out = NULL;
    if (!b) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(b, "tool", "annpack");
    cJSON_AddStringToObject(b, "version", ap_version());
    ap_json_add_u64(b, "seed", sp->seed);
    ap_json_add_u64(b, "lists_requested", sp->lists ? sp->lists : ap_auto_lists(sp->n));
    ap_json_add_u64(b, "lists_effective", k);
    ap_json_add_u64(b, "kmeans_iterations_max", iters);
    ap_json_add_u64(b, "kmeans_sample_max", (uint64_t)k * AP_KMEANS_SAMPLE_PER_LIST);
    ap_json_add_u64(b, "rows", sp->n);
    const cJSON *c;
    cJSON_ArrayForEach(c, sp->build)
    {
        cJSON_AddItemToObject(b, c->string, cJSON_Duplicate(c, 1));
    }
    cJSON_AddStringToObject(b, "meta_compression", sp->codec == AP_META_NONE ? "none" : "zstd");
    cJSON_AddStringToObject(b, "device", "cpu");
    cJSON_AddBoolToObject(b, "offline", !ap_embedder_is_remote(sp->emb));
    if (cal->n_lists) {
        cJSON *cj = ap_calibration_json(cal);
        if (!cj) {
            cJSON_Delete(b);
            return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        }
        cJSON_AddItemToObject(b, "calibration", cj);
    }
    ap_status st = add_created(b, err);
    if (st) {
        cJSON_Delete(b);
        return st;
    }
    *out = b;
    return AP_OK;
}

/* The embedder's corpus table (corpus.h), when it has one, as its sidecar file in dir. */
static ap_status write_table(const ap_embedder *e, const char *dir, ap_err *err)
{
    const char *name = ap_embedder_sidecar(e);
    if (!name) return AP_OK;
    const void *bytes;
    size_t len;
    ap_embedder_table_bytes(e, &bytes, &len);
    if (!len)
        return ap_err_set(err, AP_ERR_INTERNAL, "embedder %s has no %s to write",
                          ap_embedder_name(e), name);
    char *path = ap_path_join(dir, name);
    ap_status st = path ? ap_write_file(path, bytes, len, err)
                        : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    free(path);
    return st;
}

/* Hashes the files the build wrote into dir and writes its pack.manifest.json. */
static ap_status write_manifest(const ap_pack_spec *sp, const char *dir, uint32_t k, uint32_t iters,
                                const ap_calibration *cal, ap_err *err)
{
    const char *meta_name = sp->codec == AP_META_NONE ? AP_META_JSONL : AP_META_ZST;
    /* Sorted by name, so the manifest is canonical; pack.digests (second) covers the rest:
     * the filter sets (ap_filter_build's, when written) and the embedder's corpus table too. */
    const char *names[9], *covered[8];
    size_t nfiles = 0, ncov = 0;
    if (sp->under) covered[ncov++] = names[nfiles++] = AP_DELTA_LISTS;
    covered[ncov++] = names[nfiles++] = AP_ANNPACK;
    if (sp->bits) covered[ncov++] = names[nfiles++] = AP_BITS;
    const size_t di = nfiles; /* pack.digests' place in the sorted names */
    names[nfiles++] = AP_DIGESTS;
    char *fpath = ap_path_join(dir, AP_FILTER);
    struct stat fsb;
    if (fpath && stat(fpath, &fsb) == 0) covered[ncov++] = names[nfiles++] = AP_FILTER;
    free(fpath);
    if (ap_embedder_sidecar(sp->emb))
        covered[ncov++] = names[nfiles++] = ap_embedder_sidecar(sp->emb);
    covered[ncov++] = names[nfiles++] = AP_META_IDX;
    covered[ncov++] = names[nfiles++] = meta_name;
    if (sp->sq8) covered[ncov++] = names[nfiles++] = AP_SQ8;
    char hex[9][AP_SHA256_HEX], chex[8][AP_SHA256_HEX];
    uint64_t csize[8] = {0};
    ap_manifest_file files[9];
    ap_status st = ap_digests_write(dir, covered, ncov, chex, csize, hex[di], &files[di].size, err);
    for (size_t i = 0, c = 0; i < nfiles && !st; i++) {
        files[i].path = names[i];
        files[i].sha256 = hex[i];
        if (i == di) continue;
        memcpy(hex[i], chex[c], AP_SHA256_HEX);
        files[i].size = csize[c++];
    }
    if (st) return st;
    char *desc = ap_embedder_describe(sp->emb), *text = NULL;
    cJSON *build = NULL;
    if (!desc) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if ((st = manifest_build_block(sp, k, iters, cal, &build, err))) goto out;
    ap_pack_manifest_spec ms = {.dim = ap_embedder_dim(sp->emb),
                                .n_lists = k,
                                .n_vectors = sp->n,
                                .meta = meta_name,
                                .files = files,
                                .nfiles = nfiles,
                                .embedder = desc,
                                .build = build};
    size_t len;
    if ((st = ap_pack_manifest_write(&ms, &text, &len, err))) goto out;
    char *path = ap_path_join(dir, AP_MANIFEST);
    st =
        path ? ap_write_file(path, text, len, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    free(path);
out:
    free(desc);
    free(text);
    cJSON_Delete(build);
    return st;
}

uint32_t ap_auto_lists(size_t n)
{
    uint32_t l = 1;
    while ((size_t)(l + 1) * (l + 1) <= n)
        l++;
    return l > 65536 ? 65536 : l;
}

ap_status ap_pack_finish(const char *dir, const ap_pack_spec *sp, ap_build_report *rep, ap_err *err)
{
    ap_build_report dummy = {0};
    if (!rep) rep = &dummy;
    uint32_t dim = ap_embedder_dim(sp->emb);
    uint32_t req = sp->lists ? sp->lists : ap_auto_lists(sp->n);
    uint32_t k = sp->n == 0 ? 1 : (req > sp->n ? (uint32_t)sp->n : req);
    uint32_t iters = sp->iters ? sp->iters : AP_KMEANS_DEFAULT_ITERS;
    rep->lists_effective = k;
    rep->train_rows = (uint64_t)k * AP_KMEANS_SAMPLE_PER_LIST < sp->n
                          ? (uint64_t)k * AP_KMEANS_SAMPLE_PER_LIST
                          : sp->n;
    rep->threads = ap_parallel_threads();
    double tk = ap_now_s();
    float *centroids = calloc((size_t)k * dim, sizeof *centroids);
    if (!centroids) return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %u centroids", k);
    ap_status st = AP_OK;
    spec_box box = {sp};
    if (sp->n)
        st = ap_kmeans_train(sp->vecs, sp->n, dim, k, sp->seed, iters, centroids, kmeans_progress,
                             &box, &rep->kmeans_passes, err);
    rep->seconds_kmeans = ap_now_s() - tk;
    double tp = tk;
    ap_phase_log("kmeans", &tp);
    if (!st && sp->progress) sp->progress(sp->progress_ud, "write", 0, 1);
    ap_calibration cal = {0};
    if (!st) st = write_lists(sp, dir, k, centroids, rep, &cal, err);
    tp = ap_now_s(); /* write_lists logs its own phases */
    if (!st && sp->under && !(st = ap_delta_lists_write(dir, sp->under, err)))
        ap_phase_log("group under the base's lists", &tp);
    if (!st) st = write_table(sp->emb, dir, err);
    if (!st) st = write_manifest(sp, dir, k, iters, &cal, err);
    if (!st) ap_phase_log("digests and manifest", &tp);
    if (!st) {
        /* Hashing read the scanned files through 4 KiB folios; drop them so the first
         * search faults them in as huge folios (mapping.h). */
        const char *scanned[3] = {AP_ANNPACK, AP_SQ8, AP_BITS};
        const bool has[3] = {true, sp->sq8, sp->bits};
        for (int i = 0; i < 3; i++) {
            if (!has[i]) continue;
            char *p = ap_path_join(dir, scanned[i]);
            if (p) ap_drop_cache(p);
            free(p);
        }
    }
    if (!st) st = ap_fsync_dir(dir, err);
    if (!st) ap_phase_log("drop cache and fsync", &tp);
    free(centroids);
    return st;
}

/* The options that need no file: what to read, the seed, the list count, the device. */
static ap_status check_build_opts(const ap_build_opts *o, ap_err *err)
{
    if (!o->output_dir || (!o->vectors && (!o->input_csv || !o->text_col)))
        return ap_err_set(err, AP_ERR_ARG,
                          "build needs an output and either vectors or an input CSV and a text "
                          "column");
    if (o->vectors && o->id_col)
        return ap_err_set(err, AP_ERR_ARG,
                          "an id column cannot be used with vectors: ids are the row numbers of %s",
                          o->vectors);
    bool http = o->embedder && (!strcmp(o->embedder, "openai") || !strcmp(o->embedder, "tei") ||
                                !strcmp(o->embedder, "ollama"));
    if (o->vectors && ((o->embedder && !http) || o->embedder_json || o->dim))
        return ap_err_set(err, AP_ERR_ARG,
                          "an embedder or dim cannot be used with vectors: %s gives the vectors "
                          "and their dim (an HTTP embedder may name the model they came from)",
                          o->vectors);
    const char *dev = ap_env_get()->device;
    if (dev[0] && strcmp(dev, "cpu") != 0)
        return ap_err_set(err, AP_ERR_UNSUPPORTED,
                          "ANNPACK_DEVICE=%s is not supported: this build runs on \"cpu\" only",
                          dev);
    if (o->target_recall > 1 || o->target_recall != o->target_recall)
        return ap_err_set(err, AP_ERR_ARG, "target recall %g is not in (0, 1]", o->target_recall);
    if (o->seed > AP_JSON_MAX_SAFE_INT)
        return ap_err_set(err, AP_ERR_ARG, "seed %llu is not below 2^53",
                          (unsigned long long)o->seed);
    const ap_caps *caps = ap_caps_get();
    if (o->lists > caps->max_lists)
        return ap_err_set(err, AP_ERR_LIMIT, "lists %u exceeds ANNPACK_MAX_LISTS (%u)", o->lists,
                          caps->max_lists);
    return AP_OK;
}

/* pack.filter in dir from its rows, for the columns of list ("a,b"). */
static ap_status filter_from_rows(const char *dir, const char *list, ap_err *err)
{
    char **cols = NULL;
    uint32_t nc = 0;
    ap_status st = ap_filter_cols_parse(list, &cols, &nc, err);
    if (!st) st = ap_filter_build(dir, cols, nc, err);
    ap_filter_cols_free(cols, nc);
    return st;
}

/* k-means, the lists, the sidecar and the manifest in tmp (ap_pack_finish), with the input's
 * part of the build block; *tw: when the writing began (after the inputs were hashed). */
static ap_status finish_pack(const ap_rows *b, const ap_annp *under, const char *tmp,
                             ap_build_report *rep, double *tw, ap_err *err)
{
    const ap_build_opts *o = b->o;
    /* ids in row order for the writer */
    uint64_t *ids = malloc((b->n ? b->n : 1) * sizeof *ids);
    cJSON *input = ap_rows_build_block(b, rep->rows_skipped);
    ap_status st = AP_OK;
    if (!ids || !input)
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    else
        for (size_t i = 0; i < b->n; i++)
            ids[i] = b->ids[i].id;
    ap_pack_spec sp = {.emb = b->emb,
                       .n = b->n,
                       .vecs = b->vecs,
                       .ids = ids,
                       .lists = o->lists,
                       .seed = o->seed,
                       .codec = o->meta_codec,
                       .build = input,
                       .iters = o->kmeans_iters,
                       .sq8 = o->sq8,
                       .bits = o->bits,
                       .target_recall = o->target_recall < 0   ? 0
                                        : o->target_recall > 0 ? o->target_recall
                                                               : AP_CALIB_TARGET,
                       .under = under,
                       .progress = o->progress,
                       .progress_ud = o->progress_ud};
    *tw = ap_now_s();
    if (!st) st = ap_pack_finish(tmp, &sp, rep, err);
    cJSON_Delete(input);
    free(ids);
    return st;
}

/* Reading the rows, and hashing the input files at the same time: the reading is mostly one
 * thread's work (a --vectors build's is all of it), hashing 1.5 GB of vectors another's. */
typedef struct read_job {
    const ap_build_opts *o;
    const ap_embedder *emb;
    ap_rows *b;
    char *tmp;
    uint64_t *skipped;
    ap_status st, hst;
    ap_err err, herr;
    ap_input_hashes hashes;
    atomic_int stop; /* the reader failed: the hashing may stop */
} read_job;

static void read_part(void *ctx, uint32_t p, uint32_t nparts)
{
    read_job *j = ctx;
    if (p == 0) {
        ap_status st = ap_rows_open_with(j->b, j->o, j->emb, &j->err);
        if (!st) st = ap_mkdtemp_beside(j->o->output_dir, &j->tmp, &j->err);
        if (!st) st = ap_rows_read(j->b, j->tmp, j->skipped, &j->err);
        if ((j->st = st)) atomic_store(&j->stop, 1);
    }
    if (p == nparts - 1) j->hst = ap_rows_hash_inputs(j->o, &j->hashes, &j->stop, &j->herr);
}

ap_status ap_pack_build(const ap_build_opts *o, ap_build_report *rep, ap_err *err)
{
    return ap_pack_build_with(o, NULL, NULL, rep, err);
}

ap_status ap_pack_build_with(const ap_build_opts *o, const ap_embedder *emb, const ap_annp *under,
                             ap_build_report *rep, ap_err *err)
{
    double t0 = ap_now_s();
    ap_build_report dummy;
    if (!rep) rep = &dummy;
    memset(rep, 0, sizeof *rep);
    bool replace = false;
    ap_status st = check_build_opts(o, err);
    if (!st) st = ap_check_build_output(o->output_dir, o->force, &replace, err);
    if (st) return st;

    ap_rows b = {0};
    ap_blas_threads_from_env();
    char *tmp = NULL;
    read_job rj = {.o = o, .emb = emb, .b = &b, .skipped = &rep->rows_skipped};
    atomic_init(&rj.stop, 0);
    ap_parallel_for(ap_parallel_parts(2, 1), read_part, &rj);
    tmp = rj.tmp;
    b.hashes = rj.hashes;
    if ((st = rj.st ? rj.st : rj.hst)) {
        if (err) *err = rj.st ? rj.err : rj.herr;
        goto out;
    }
    double tp = t0;
    ap_phase_log("read and hash the inputs", &tp);
    if (o->filter_cols && (st = filter_from_rows(tmp, o->filter_cols, err))) goto out;
    rep->seconds_embed = b.t_embed;
    double tw;
    if ((st = finish_pack(&b, under, tmp, rep, &tw, err))) goto out;
    rep->lists_requested = o->lists ? o->lists : ap_auto_lists(b.n);
    if (o->lists && rep->lists_effective < o->lists)
        ap_log(AP_LOG_INFO, "build", "--lists %u clamped to %u: only %zu vectors", o->lists,
               rep->lists_effective, b.n);
    tp = ap_now_s();
    if ((st = ap_publish_dir(tmp, o->output_dir, replace, err))) goto out;
    ap_phase_log("publish", &tp);
    if (o->progress) o->progress(o->progress_ud, "write", 1, 1);
    free(tmp);
    tmp = NULL;
    rep->seconds_write =
        ap_now_s() - tw - rep->seconds_kmeans - rep->seconds_assign - rep->seconds_sq8;
    rep->rows = b.n;
    rep->dim = b.dim;
out:
    rep->seconds_total = ap_now_s() - t0;
    if (tmp) ap_rmtree(tmp);
    free(tmp);
    ap_rows_free(&b);
    return st;
}
