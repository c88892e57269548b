/* Building a pack directory from a CSV: see include/annpack/pack.h.
 *
 * Data flows one way: CSV rows -> metadata rows (written as they arrive) and texts ->
 * embedder (in parallel batches) -> vectors -> k-means -> lists -> ANNP writer ->
 * manifest with hashes. Everything is written into a temporary directory beside the
 * output and renamed into place at the end. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "annpack/build.h"
#include "annpack/caps.h"
#include "annpack/csv.h"
#include "annpack/embed.h"
#include "annpack/format.h"
#include "annpack/log.h"
#include "annpack/sign.h"
#include "annpack/sq8.h"
#include "annpack/vecs.h"
#include "fp16.h"
#include "fsops.h"
#include "json.h"
#include "kmeans.h"
#include "manifest.h"
#include "mapping.h"
#include "output.h"
#include "pack_write.h"
#include "parallel.h"
#include "utf8.h"

#define EMBED_BATCH 2048u

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct id_line {
    uint64_t id, line;
} id_line;

static int cmp_id_line(const void *a, const void *b)
{
    const id_line *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* A batch of texts embedded in parts: rows are independent and each part keeps its own
 * error, reported in part order (so the first bad row's), so the result does not depend on
 * the thread count. */
typedef struct embed_part {
    ap_status st;
    ap_err err;
} embed_part;

typedef struct embed_job {
    const ap_embedder *e;
    char **texts;
    size_t *lens;
    size_t n;
    float *out; /* n x dim */
    embed_part *parts;
} embed_job;

static void embed_range(void *ctx, uint32_t p, uint32_t nparts)
{
    embed_job *j = ctx;
    embed_part *r = &j->parts[p];
    size_t from, to;
    ap_part_range(j->n, p, nparts, &from, &to);
    for (size_t i = from; i < to && !r->st; i++)
        r->st = ap_embedder_embed(j->e, j->texts[i], j->lens[i], j->out + i * j->e->dim, &r->err);
}

static ap_status embed_batch(const ap_embedder *e, char **texts, size_t *lens, size_t n, float *out,
                             ap_err *err)
{
    uint32_t nparts = ap_parallel_parts(n, 64);
    embed_job j = {.e = e, .texts = texts, .lens = lens, .n = n, .out = out};
    if (!(j.parts = calloc(nparts, sizeof *j.parts)))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_parallel_for(nparts, embed_range, &j);
    ap_status st = AP_OK;
    for (uint32_t p = 0; p < nparts && !st; p++)
        if ((st = j.parts[p].st) && err) *err = j.parts[p].err;
    free(j.parts);
    return st;
}

/* Parses a document id: decimal digits only, < 2^53 (so every JSON reader agrees). */
static int parse_id(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 16) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > AP_JSON_MAX_SAFE_INT) return 0;
    *out = v;
    return 1;
}

typedef struct build_state {
    const ap_build_opts *o;
    ap_embedder *emb;
    uint32_t dim;
    /* column layout */
    char **cols;
    size_t ncols;
    size_t text_i, id_i;
    int has_id;
    ap_vecs *vin; /* given vectors (build --vectors), or NULL: embed the text column */
    /* accumulated rows */
    float *vecs;
    size_t n, cap;
    id_line *ids;
    /* pending batch */
    char *texts[EMBED_BATCH];
    size_t lens[EMBED_BATCH];
    size_t pending;
    double t_embed;
} build_state;

static ap_status flush_batch(build_state *b, ap_err *err)
{
    if (!b->pending) return AP_OK;
    double t0 = now_s();
    ap_status st = embed_batch(b->emb, b->texts, b->lens, b->pending,
                               b->vecs + (b->n - b->pending) * b->dim, err);
    for (size_t i = 0; i < b->pending; i++) {
        free(b->texts[i]);
        b->texts[i] = NULL;
    }
    b->pending = 0;
    b->t_embed += now_s() - t0;
    return st;
}

static ap_status grow(build_state *b, ap_err *err)
{
    if (b->n < b->cap) return AP_OK;
    size_t ncap = b->cap ? b->cap * 2 : 4096;
    float *v = realloc(b->vecs, ncap * b->dim * sizeof *v);
    if (!v) return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %zu vectors", ncap);
    b->vecs = v;
    id_line *il = realloc(b->ids, ncap * sizeof *il);
    if (!il) return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %zu rows", ncap);
    b->ids = il;
    b->cap = ncap;
    return AP_OK;
}

static ap_status read_header(build_state *b, ap_csv *csv, ap_err *err)
{
    const ap_build_opts *o = b->o;
    ap_csv_record rec;
    int eof = 0;
    ap_status st = ap_csv_next(csv, &rec, &eof, err);
    if (st) return st;
    if (eof) return ap_err_set(err, AP_ERR_FORMAT, "%s: empty input (no header row)", o->input_csv);
    /* A row is a JSON object with a key per column plus "id"; readers cap keys per object. */
    if (rec.nfields >= AP_JSON_MAX_KEYS)
        return ap_err_set(err, AP_ERR_LIMIT,
                          "%s:%llu: %zu columns; at most %u (a row has one JSON key per column "
                          "plus \"id\", and readers refuse objects of more than %u keys)",
                          o->input_csv, (unsigned long long)rec.line, rec.nfields,
                          AP_JSON_MAX_KEYS - 1, AP_JSON_MAX_KEYS);
    b->ncols = rec.nfields;
    b->cols = calloc(rec.nfields, sizeof *b->cols);
    if (!b->cols) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    size_t list_len = 1;
    for (size_t i = 0; i < rec.nfields; i++) {
        if (ap_utf8_invalid_at(rec.fields[i], rec.lens[i]) != rec.lens[i] ||
            strlen(rec.fields[i]) != rec.lens[i])
            return ap_err_set(err, AP_ERR_FORMAT, "%s:%llu: column %zu name is not valid UTF-8",
                              o->input_csv, (unsigned long long)rec.line, i + 1);
        if (!(b->cols[i] = strdup(rec.fields[i])))
            return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        for (size_t j = 0; j < i; j++)
            if (strcmp(b->cols[j], b->cols[i]) == 0)
                return ap_err_set(err, AP_ERR_FORMAT, "%s:%llu: duplicate column name \"%s\"",
                                  o->input_csv, (unsigned long long)rec.line, b->cols[i]);
        list_len += strlen(b->cols[i]) + 4;
    }
    char *list = malloc(list_len);
    if (!list) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    list[0] = '\0';
    for (size_t i = 0; i < b->ncols; i++) {
        strcat(list, i ? ", \"" : "\"");
        strcat(list, b->cols[i]);
        strcat(list, "\"");
    }
    int found_text = 0, found_id = 0;
    for (size_t i = 0; i < b->ncols; i++) {
        if (o->text_col && strcmp(b->cols[i], o->text_col) == 0) {
            b->text_i = i;
            found_text = 1;
        }
        if (o->id_col && strcmp(b->cols[i], o->id_col) == 0) {
            b->id_i = i;
            found_id = 1;
        }
    }
    st = AP_OK;
    if (o->text_col && !found_text)
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: text column \"%s\" not found; columns: %s",
                        o->input_csv, o->text_col, list);
    else if (o->id_col && !found_id)
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: id column \"%s\" not found; columns: %s",
                        o->input_csv, o->id_col, list);
    b->has_id = found_id;
    for (size_t i = 0; i < b->ncols && !st; i++)
        if (strcmp(b->cols[i], "id") == 0 && o->vectors)
            st = ap_err_set(err, AP_ERR_FORMAT,
                            "%s: column \"id\" is reserved: with --vectors the ids are row "
                            "numbers; rename the column",
                            o->input_csv);
        else if (strcmp(b->cols[i], "id") == 0 && !(found_id && i == b->id_i))
            st = ap_err_set(err, AP_ERR_FORMAT,
                            "%s: column \"id\" is reserved for the integer document id: pass "
                            "--id-col id, or rename the column",
                            o->input_csv);
    free(list);
    return st;
}

/* Builds the metadata row of one record: {"id": N, <every other column as a string>}. */
static char *row_json(const build_state *b, const ap_csv_record *rec, uint64_t id)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char *s = NULL;
    if (!ap_json_add_u64(o, "id", id)) goto out;
    for (size_t i = 0; i < b->ncols; i++) {
        if (strcmp(b->cols[i], "id") == 0) continue;
        if (!cJSON_AddStringToObject(o, b->cols[i], rec->fields[i])) goto out;
    }
    s = cJSON_PrintUnformatted(o);
out:
    cJSON_Delete(o);
    return s;
}

/* Appends given vector number b->n, normalised (the slot was grown by the caller). */
static ap_status take_vector(build_state *b, ap_err *err)
{
    float *dst = b->vecs + b->n * b->dim;
    memcpy(dst, ap_vecs_f32(b->vin, b->n), b->dim * sizeof *dst);
    if (ap_l2_normalize(dst, b->dim) == 0)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: row %zu is the zero vector (it has no direction)", b->o->vectors,
                          b->n);
    b->n++;
    return AP_OK;
}

/* Rows for a --vectors build without a CSV: ids are row numbers, metadata is {"id": N}. */
static ap_status vector_rows(build_state *b, ap_meta_writer *mw, uint64_t *skipped, ap_err *err)
{
    size_t n = ap_vecs_count(b->vin);
    if (b->o->max_rows && n > b->o->max_rows) {
        *skipped = n - b->o->max_rows;
        n = (size_t)b->o->max_rows;
    }
    for (size_t i = 0; i < n; i++) {
        ap_status st = grow(b, err);
        if (st) return st;
        b->ids[b->n] = (id_line){i, i + 1};
        char row[40];
        int len = snprintf(row, sizeof row, "{\"id\":%zu}", i);
        if ((st = ap_meta_writer_add(mw, i, row, (size_t)len, err))) return st;
        if ((st = take_vector(b, err))) return st;
        if (b->o->progress && (i & 65535) == 65535) b->o->progress(b->o->progress_ud, "read", i, n);
    }
    return AP_OK;
}

/* One data row: checked, its metadata row written, its vector taken or its text queued
 * for embedding. */
static ap_status add_row(build_state *b, const ap_csv_record *rec, ap_meta_writer *mw, ap_err *err)
{
    const ap_build_opts *o = b->o;
    for (size_t i = 0; i < rec->nfields; i++) {
        size_t bad = ap_utf8_invalid_at(rec->fields[i], rec->lens[i]);
        if (bad != rec->lens[i] || strlen(rec->fields[i]) != rec->lens[i])
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s:%llu: column \"%s\" is not valid UTF-8 text (byte %zu)",
                              o->input_csv, (unsigned long long)rec->line, b->cols[i], bad);
    }
    uint64_t id = b->n;
    if (b->has_id && !parse_id(rec->fields[b->id_i], rec->lens[b->id_i], &id))
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s:%llu: id \"%.64s\" in column \"%s\" is not an integer in "
                          "[0, 2^53)",
                          o->input_csv, (unsigned long long)rec->line, rec->fields[b->id_i],
                          o->id_col);
    ap_status st = grow(b, err);
    if (st) return st;
    b->ids[b->n] = (id_line){id, rec->line};
    char *row = row_json(b, rec, id);
    if (!row) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    st = ap_meta_writer_add(mw, id, row, strlen(row), err);
    free(row);
    if (st) return st;
    if (b->vin) {
        if (b->n >= ap_vecs_count(b->vin))
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s:%llu: more data rows than the %zu vectors of %s", o->input_csv,
                              (unsigned long long)rec->line, ap_vecs_count(b->vin), o->vectors);
        return take_vector(b, err);
    }
    if (!(b->texts[b->pending] = malloc(rec->lens[b->text_i] + 1)))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    memcpy(b->texts[b->pending], rec->fields[b->text_i], rec->lens[b->text_i] + 1);
    b->lens[b->pending++] = rec->lens[b->text_i];
    b->n++;
    return AP_OK;
}

/* Duplicate ids: report both lines. */
static ap_status check_unique_ids(const build_state *b, ap_err *err)
{
    id_line *sorted = malloc(b->n * sizeof *sorted);
    if (!sorted) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    memcpy(sorted, b->ids, b->n * sizeof *sorted);
    qsort(sorted, b->n, sizeof *sorted, cmp_id_line);
    ap_status st = AP_OK;
    for (size_t i = 1; i < b->n && !st; i++)
        if (sorted[i].id == sorted[i - 1].id)
            st = ap_err_set(err, AP_ERR_FORMAT, "%s:%llu: duplicate id %llu (first on line %llu)",
                            b->o->input_csv, (unsigned long long)sorted[i].line,
                            (unsigned long long)sorted[i].id,
                            (unsigned long long)sorted[i - 1].line);
    free(sorted);
    return st;
}

static ap_status read_rows(build_state *b, ap_csv *csv, ap_meta_writer *mw, uint64_t *skipped,
                           ap_err *err)
{
    const ap_build_opts *o = b->o;
    uint64_t total = 0;
    struct stat sb;
    if (stat(o->input_csv, &sb) == 0) total = (uint64_t)sb.st_size;
    for (;;) {
        ap_csv_record rec;
        int eof = 0;
        ap_status st = ap_csv_next(csv, &rec, &eof, err);
        if (st) return st;
        if (eof) break;
        if (rec.nfields != b->ncols)
            return ap_err_set(err, AP_ERR_FORMAT, "%s:%llu: %zu fields, the header has %zu",
                              o->input_csv, (unsigned long long)rec.line, rec.nfields, b->ncols);
        if (o->max_rows && b->n >= o->max_rows) {
            (*skipped)++;
            continue;
        }
        if ((st = add_row(b, &rec, mw, err))) return st;
        if (b->pending == EMBED_BATCH) {
            if ((st = flush_batch(b, err))) return st;
            if (o->progress)
                o->progress(o->progress_ud, "read+embed", ap_csv_bytes_read(csv), total);
        }
    }
    ap_status st = flush_batch(b, err);
    if (st) return st;
    if (b->n == 0) return ap_err_set(err, AP_ERR_FORMAT, "%s: no data rows", o->input_csv);
    if (b->vin && !(o->max_rows && b->n >= o->max_rows) && b->n != ap_vecs_count(b->vin))
        return ap_err_set(err, AP_ERR_FORMAT, "%s has %zu data rows but %s has %zu vectors",
                          o->input_csv, b->n, o->vectors, ap_vecs_count(b->vin));
    return check_unique_ids(b, err);
}

/* The k-means progress context is not const: the spec travels in a box. */
typedef struct spec_box {
    const ap_pack_spec *sp;
} spec_box;

static void kmeans_progress(void *ud, uint32_t it, uint32_t iters)
{
    const ap_pack_spec *sp = ((const spec_box *)ud)->sp;
    if (sp->progress) sp->progress(sp->progress_ud, "kmeans", it, iters);
}

/* Groups vectors by list (stable: row order within a list) and writes pack.annpack. */
static ap_status write_lists(const ap_pack_spec *sp, const char *dir, uint32_t k,
                             const float *centroids, ap_build_report *rep, ap_err *err)
{
    size_t n = sp->n;
    uint32_t dim = sp->emb->dim;
    ap_status st = AP_OK;
    uint32_t *assign = malloc((n ? n : 1) * sizeof *assign);
    uint32_t *counts = calloc(k, sizeof *counts);
    size_t *start = calloc(k + 1ull, sizeof *start);
    uint64_t *ids = malloc((n ? n : 1) * sizeof *ids);
    uint16_t *vecs = malloc((n ? n : 1) * dim * sizeof *vecs);
    char *path = ap_path_join(dir, AP_ANNPACK);
    if (!assign || !counts || !start || !ids || !vecs || !path) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory grouping %zu vectors", n);
        goto out;
    }
    double ta = now_s();
    if (n && (st = ap_kmeans_assign(sp->vecs, n, dim, centroids, k, assign, NULL, err))) goto out;
    rep->seconds_assign = now_s() - ta;
    for (size_t i = 0; i < n; i++)
        counts[assign[i]]++;
    for (uint32_t l = 0; l < k; l++)
        start[l + 1] = start[l] + counts[l];
    for (size_t i = 0; i < n; i++) {
        size_t at = start[assign[i]]++;
        ids[at] = sp->ids[i];
        ap_f32_to_f16_n(vecs + at * dim, sp->vecs + i * dim, dim);
    }
    st = ap_annp_write(path, dim, k, centroids, counts, ids, vecs, err);
    if (!st && sp->sq8) {
        double ts = now_s();
        st = ap_sq8_build(dir, dim, k, counts, vecs, n, err);
        rep->seconds_sq8 = now_s() - ts;
    }
out:
    free(assign);
    free(counts);
    free(start);
    free(ids);
    free(vecs);
    free(path);
    return st;
}

/* SOURCE_DATE_EPOCH, when set, is the build's "created" time (reproducible builds). */
static ap_status add_created(cJSON *b, ap_err *err)
{
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) {
        char *end;
        errno = 0;
        long long t = strtoll(sde, &end, 10);
        if (errno || *end || t < 0)
            return ap_err_set(err, AP_ERR_ARG, "SOURCE_DATE_EPOCH=%s is not a Unix time", sde);
        time_t tt = (time_t)t;
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
                                      cJSON **out, ap_err *err)
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
    cJSON_AddBoolToObject(b, "offline", 1);
    ap_status st = add_created(b, err);
    if (st) {
        cJSON_Delete(b);
        return st;
    }
    *out = b;
    return AP_OK;
}

/* Hashes the files the build wrote into dir and writes its pack.manifest.json. */
static ap_status write_manifest(const ap_pack_spec *sp, const char *dir, uint32_t k, uint32_t iters,
                                ap_err *err)
{
    const char *meta_name = sp->codec == AP_META_NONE ? AP_META_JSONL : AP_META_ZST;
    /* Sorted by name, so the manifest is canonical. */
    const char *names[4] = {AP_ANNPACK, AP_META_IDX, meta_name, AP_SQ8};
    size_t nfiles = sp->sq8 ? 4 : 3;
    char hex[4][AP_SHA256_HEX];
    ap_manifest_file files[4];
    ap_status st = AP_OK;
    for (size_t i = 0; i < nfiles && !st; i++) {
        char *p = ap_path_join(dir, names[i]);
        files[i] = (ap_manifest_file){.path = names[i], .sha256 = hex[i]};
        st = p ? ap_sha256_file(p, hex[i], &files[i].size, err)
               : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        free(p);
    }
    if (st) return st;
    char *desc = ap_embedder_describe(sp->emb), *text = NULL;
    cJSON *build = NULL;
    if (!desc) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if ((st = manifest_build_block(sp, k, iters, &build, err))) goto out;
    ap_pack_manifest_spec ms = {.dim = sp->emb->dim,
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
    uint32_t dim = sp->emb->dim;
    uint32_t req = sp->lists ? sp->lists : ap_auto_lists(sp->n);
    uint32_t k = sp->n == 0 ? 1 : (req > sp->n ? (uint32_t)sp->n : req);
    uint32_t iters = sp->iters ? sp->iters : AP_KMEANS_DEFAULT_ITERS;
    rep->lists_effective = k;
    rep->train_rows = (uint64_t)k * AP_KMEANS_SAMPLE_PER_LIST < sp->n
                          ? (uint64_t)k * AP_KMEANS_SAMPLE_PER_LIST
                          : sp->n;
    rep->threads = ap_parallel_threads();
    double tk = now_s();
    float *centroids = calloc((size_t)k * dim, sizeof *centroids);
    if (!centroids) return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %u centroids", k);
    ap_status st = AP_OK;
    spec_box box = {sp};
    if (sp->n)
        st = ap_kmeans_train(sp->vecs, sp->n, dim, k, sp->seed, iters, centroids, kmeans_progress,
                             &box, &rep->kmeans_passes, err);
    rep->seconds_kmeans = now_s() - tk;
    if (!st && sp->progress) sp->progress(sp->progress_ud, "write", 0, 1);
    if (!st) st = write_lists(sp, dir, k, centroids, rep, err);
    if (!st) st = write_manifest(sp, dir, k, iters, err);
    if (!st) {
        /* Hashing read the scanned files through 4 KiB folios; drop them so the first
         * search faults them in as huge folios (mapping.h). */
        const char *scanned[2] = {AP_ANNPACK, AP_SQ8};
        for (int i = 0; i < (sp->sq8 ? 2 : 1); i++) {
            char *p = ap_path_join(dir, scanned[i]);
            if (p) ap_drop_cache(p);
            free(p);
        }
    }
    if (!st) st = ap_fsync_dir(dir, err);
    free(centroids);
    return st;
}

/* The CSV-specific part of the manifest's "build" block. */
static cJSON *build_block(const build_state *b, uint64_t skipped)
{
    const ap_build_opts *o = b->o;
    char hex[AP_SHA256_HEX];
    uint64_t size = 0;
    cJSON *c = cJSON_CreateObject();
    if (!c) return NULL;
    ap_json_add_u64(c, "rows_skipped", skipped);
    if (o->vectors) {
        if (ap_sha256_file(o->vectors, hex, &size, NULL)) goto fail;
        cJSON_AddStringToObject(c, "vectors_sha256", hex);
        ap_json_add_u64(c, "vectors_size", size);
        if (!o->input_csv) {
            cJSON_AddStringToObject(c, "input", "vectors only");
            return c;
        }
    }
    if (ap_sha256_file(o->input_csv, hex, &size, NULL)) goto fail;
    if (o->text_col)
        cJSON_AddStringToObject(c, "text_col", o->text_col);
    else
        cJSON_AddNullToObject(c, "text_col");
    if (o->id_col)
        cJSON_AddStringToObject(c, "id_col", o->id_col);
    else
        cJSON_AddNullToObject(c, "id_col");
    cJSON_AddStringToObject(c, "input_sha256", hex);
    ap_json_add_u64(c, "input_size", size);
    return c;
fail:
    cJSON_Delete(c);
    return NULL;
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
    if (o->vectors && (o->embedder || o->embedder_json || o->dim))
        return ap_err_set(err, AP_ERR_ARG,
                          "an embedder or dim cannot be used with vectors: %s gives the vectors "
                          "and their dim",
                          o->vectors);
    const char *dev = getenv("ANNPACK_DEVICE");
    if (dev && *dev && strcmp(dev, "cpu") != 0)
        return ap_err_set(err, AP_ERR_UNSUPPORTED,
                          "ANNPACK_DEVICE=%s is not supported: this build runs on \"cpu\" only",
                          dev);
    if (o->seed > AP_JSON_MAX_SAFE_INT)
        return ap_err_set(err, AP_ERR_ARG, "seed %llu is not below 2^53",
                          (unsigned long long)o->seed);
    const ap_caps *caps = ap_caps_get();
    if (o->lists > caps->max_lists)
        return ap_err_set(err, AP_ERR_LIMIT, "lists %u exceeds ANNPACK_MAX_LISTS (%u)", o->lists,
                          caps->max_lists);
    return AP_OK;
}

/* The embedder: the given vectors' ("vectors" of their dim), a recorded one
 * (embedder_json), or a named one (default "hash"). */
static ap_status open_embedder(build_state *b, ap_err *err)
{
    const ap_build_opts *o = b->o;
    ap_status st;
    if (o->vectors) {
        if ((st = ap_vecs_open(o->vectors, AP_VECS_F32, &b->vin, err))) return st;
        st = ap_embedder_create("vectors", ap_vecs_dim(b->vin), 0, &b->emb, err);
    } else if (o->embedder_json) {
        st = ap_embedder_from_json(o->embedder_json, strlen(o->embedder_json), "embedder", &b->emb,
                                   err);
    } else {
        st = ap_embedder_create(o->embedder ? o->embedder : "hash", o->dim, o->seed, &b->emb, err);
    }
    if (!st) b->dim = b->emb->dim;
    return st;
}

/* Every row: its vector into b, its metadata into the files of tmp. */
static ap_status read_input(build_state *b, ap_csv *csv, const char *tmp, uint64_t *skipped,
                            ap_err *err)
{
    ap_meta_writer *mw = NULL;
    ap_status st = ap_meta_writer_open(tmp, b->o->meta_codec, 0, &mw, err);
    if (!st) st = csv ? read_rows(b, csv, mw, skipped, err) : vector_rows(b, mw, skipped, err);
    if (!st) st = ap_meta_writer_finish(mw, err);
    ap_meta_writer_free(mw);
    return st;
}

/* k-means, the lists, the sidecar and the manifest in tmp (ap_pack_finish), with the input's
 * part of the build block; *tw: when the writing began (after the inputs were hashed). */
static ap_status finish_pack(const build_state *b, const char *tmp, ap_build_report *rep,
                             double *tw, ap_err *err)
{
    const ap_build_opts *o = b->o;
    /* ids in row order for the writer */
    uint64_t *ids = malloc((b->n ? b->n : 1) * sizeof *ids);
    cJSON *input = build_block(b, rep->rows_skipped);
    ap_status st = !ids || !input ? ap_err_set(err, AP_ERR_NOMEM, "out of memory") : AP_OK;
    for (size_t i = 0; !st && i < b->n; i++)
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
                       .progress = o->progress,
                       .progress_ud = o->progress_ud};
    *tw = now_s();
    if (!st) st = ap_pack_finish(tmp, &sp, rep, err);
    cJSON_Delete(input);
    free(ids);
    return st;
}

static void build_state_clear(build_state *b)
{
    for (size_t i = 0; i < b->pending; i++)
        free(b->texts[i]);
    for (size_t i = 0; i < b->ncols; i++)
        free(b->cols[i]);
    free(b->cols);
    free(b->vecs);
    free(b->ids);
    ap_embedder_free(b->emb);
    ap_vecs_close(b->vin);
}

ap_status ap_pack_build(const ap_build_opts *o, ap_build_report *rep, ap_err *err)
{
    double t0 = now_s();
    ap_build_report dummy;
    if (!rep) rep = &dummy;
    memset(rep, 0, sizeof *rep);
    bool replace = false;
    ap_status st = check_build_opts(o, err);
    if (!st) st = ap_check_build_output(o->output_dir, o->force, &replace, err);
    if (st) return st;

    build_state b = {.o = o};
    ap_blas_threads_from_env();
    char *tmp = NULL;
    ap_csv *csv = NULL;
    if ((st = open_embedder(&b, err))) goto out;
    if (o->input_csv) {
        if ((st = ap_csv_open(o->input_csv, &csv, err))) goto out;
        if ((st = read_header(&b, csv, err))) goto out;
    }
    if ((st = ap_mkdtemp_beside(o->output_dir, &tmp, err))) goto out;
    if ((st = read_input(&b, csv, tmp, &rep->rows_skipped, err))) goto out;
    rep->seconds_embed = b.t_embed;
    double tw;
    if ((st = finish_pack(&b, tmp, rep, &tw, err))) goto out;
    rep->lists_requested = o->lists ? o->lists : ap_auto_lists(b.n);
    if (o->lists && rep->lists_effective < o->lists)
        ap_log(AP_LOG_INFO, "build", "--lists %u clamped to %u: only %zu vectors", o->lists,
               rep->lists_effective, b.n);
    if ((st = ap_publish_dir(tmp, o->output_dir, replace, err))) goto out;
    if (o->progress) o->progress(o->progress_ud, "write", 1, 1);
    free(tmp);
    tmp = NULL;
    rep->seconds_write =
        now_s() - tw - rep->seconds_kmeans - rep->seconds_assign - rep->seconds_sq8;
    rep->rows = b.n;
    rep->dim = b.dim;
out:
    rep->seconds_total = now_s() - t0;
    ap_csv_close(csv);
    if (tmp) ap_rmtree(tmp);
    free(tmp);
    build_state_clear(&b);
    return st;
}
