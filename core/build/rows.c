/* The rows of a build: see rows.h.
 *
 * CSV rows -> metadata rows (written as they arrive) and texts -> embedder (in parallel
 * batches) -> vectors; or given vectors, whose rows are their numbers. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "annpack/log.h"
#include "annpack/sign.h"
#include "builtin.h"
#include "corpus.h"
#include "fsops.h"
#include "json.h"
#include "parallel.h"
#include "rows.h"
#include "utf8.h"
#include "vecs_release.h"

double ap_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* This process's peak RSS in KiB: VmHWM, its own memory's high-water mark (getrusage's
 * ru_maxrss would also count what the parent held when it forked us, kept across exec). */
static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[128];
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

void ap_phase_log(const char *phase, double *t0)
{
    double now = ap_now_s();
    if (ap_log_enabled(AP_LOG_DEBUG))
        ap_log(AP_LOG_DEBUG, "build", "%s: %.2f s, peak RSS so far %ld MiB", phase, now - *t0,
               peak_rss_kib() / 1024);
    *t0 = now;
}

static int cmp_id_line(const void *a, const void *b)
{
    const ap_id_line *x = a, *y = b;
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
    if (from < to)
        r->st = ap_embedder_embed_docs(j->e, j->texts + from, j->lens + from, to - from,
                                       j->out + from * ap_embedder_dim(j->e), &r->err);
}

static ap_status embed_batch(const ap_embedder *e, char **texts, size_t *lens, size_t n, float *out,
                             ap_err *err)
{
    /* An HTTP embedder's parts are requests in flight at once (one per thread). */
    uint32_t nparts =
        ap_parallel_parts(n, ap_embedder_is_remote(e) ? AP_EMBED_HTTP_DEFAULT_BATCH : 64);
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

static ap_status flush_batch(ap_rows *b, ap_err *err)
{
    if (!b->pending) return AP_OK;
    ap_status fst = AP_OK;
    if (ap_embedder_needs_table(b->emb)) {
        double tf = ap_now_s();
        fst = ap_embedder_fit(b->emb, b->texts, b->lens, b->pending, err);
        b->t_embed += ap_now_s() - tf;
    }
    double t0 = ap_now_s();
    ap_status st = fst ? fst
                       : embed_batch(b->emb, b->texts, b->lens, b->pending,
                                     b->vecs + (b->n - b->pending) * b->dim, err);
    for (size_t i = 0; i < b->pending; i++) {
        free(b->texts[i]);
        b->texts[i] = NULL;
    }
    b->pending = 0;
    b->t_embed += ap_now_s() - t0;
    return st;
}

static ap_status grow(ap_rows *b, ap_err *err)
{
    if (b->n < b->cap) return AP_OK;
    size_t ncap = b->cap ? b->cap * 2 : 4096;
    float *v = realloc(b->vecs, ncap * b->dim * sizeof *v);
    if (!v) return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %zu vectors", ncap);
    b->vecs = v;
    ap_id_line *il = realloc(b->ids, ncap * sizeof *il);
    if (!il) return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %zu rows", ncap);
    b->ids = il;
    b->cap = ncap;
    return AP_OK;
}

static ap_status read_header(ap_rows *b, ap_csv *csv, ap_err *err)
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
static char *row_json(const ap_rows *b, const ap_csv_record *rec, uint64_t id)
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
static ap_status take_vector(ap_rows *b, ap_err *err)
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

/* Copying and normalising a chunk of given vectors: each row on its own, so the split into
 * parts changes nothing; each part notes its first zero row, and the first of those is the
 * one reported. */
typedef struct take_job {
    ap_rows *b;
    size_t from, to;
    size_t zero[AP_PARALLEL_MAX]; /* a part's first zero row, or SIZE_MAX */
} take_job;

static void take_part(void *ctx, uint32_t p, uint32_t nparts)
{
    take_job *j = ctx;
    size_t from, to;
    ap_part_range(j->to - j->from, p, nparts, &from, &to);
    j->zero[p] = SIZE_MAX;
    for (size_t i = j->from + from; i < j->from + to; i++) {
        float *dst = j->b->vecs + i * j->b->dim;
        memcpy(dst, ap_vecs_f32(j->b->vin, i), j->b->dim * sizeof *dst);
        if (ap_l2_normalize(dst, j->b->dim) == 0 && j->zero[p] == SIZE_MAX) j->zero[p] = i;
    }
}

/* Rows for a --vectors build without a CSV: ids are row numbers, metadata is {"id": N}; the
 * vectors are copied and normalised a chunk at a time on the worker threads. */
static ap_status vector_rows(ap_rows *b, ap_meta_writer *mw, uint64_t *skipped, ap_err *err)
{
    size_t n = ap_vecs_count(b->vin);
    if (b->o->max_rows && n > b->o->max_rows) {
        *skipped = n - b->o->max_rows;
        n = (size_t)b->o->max_rows;
    }
    const size_t chunk = 65536;
    take_job j = {.b = b};
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        size_t c1 = n - c0 < chunk ? n : c0 + chunk;
        for (size_t i = c0; i < c1; i++) {
            ap_status st = grow(b, err);
            if (st) return st;
            b->ids[i] = (ap_id_line){i, i + 1};
            char row[40];
            int len = snprintf(row, sizeof row, "{\"id\":%zu}", i);
            if ((st = ap_meta_writer_add(mw, i, row, (size_t)len, err))) return st;
            b->n = i + 1;
        }
        j.from = c0;
        j.to = c1;
        uint32_t nparts = ap_parallel_parts(c1 - c0, 4096);
        ap_parallel_for(nparts, take_part, &j);
        for (uint32_t p = 0; p < nparts; p++)
            if (j.zero[p] != SIZE_MAX)
                return ap_err_set(err, AP_ERR_FORMAT,
                                  "%s: row %zu is the zero vector (it has no direction)",
                                  b->o->vectors, j.zero[p]);
        ap_vecs_release_before(b->vin, c1); /* normalised copies are kept, not the file */
        if (b->o->progress) b->o->progress(b->o->progress_ud, "read", c1, n);
    }
    return AP_OK;
}

/* One data row: checked, its metadata row written, its vector taken or its text queued
 * for embedding. */
static ap_status add_row(ap_rows *b, const ap_csv_record *rec, ap_meta_writer *mw, ap_err *err)
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
    b->ids[b->n] = (ap_id_line){id, rec->line};
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
    if (b->pending == b->tcap) {
        size_t ncap = b->tcap ? b->tcap * 2 : AP_EMBED_BATCH;
        char **nt = realloc(b->texts, ncap * sizeof *nt);
        if (nt) b->texts = nt;
        size_t *nl = nt ? realloc(b->lens, ncap * sizeof *nl) : NULL;
        if (!nl) return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %zu texts", ncap);
        b->lens = nl;
        b->tcap = ncap;
    }
    if (!(b->texts[b->pending] = malloc(rec->lens[b->text_i] + 1)))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    memcpy(b->texts[b->pending], rec->fields[b->text_i], rec->lens[b->text_i] + 1);
    b->lens[b->pending++] = rec->lens[b->text_i];
    b->n++;
    return AP_OK;
}

/* Duplicate ids: report both lines. */
static ap_status check_unique_ids(const ap_rows *b, ap_err *err)
{
    ap_id_line *sorted = malloc(b->n * sizeof *sorted);
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

/* Progress: an HTTP embedder's phase is "embed" in rows (the total estimated from the bytes
 * read, exact at the end), so the tool can show rows/s and an ETA; local ones report bytes. */
static void report_embed(const ap_rows *b, const ap_csv *csv, uint64_t total)
{
    const ap_build_opts *o = b->o;
    if (!o->progress) return;
    uint64_t rd = ap_csv_bytes_read(csv);
    if (!ap_embedder_is_remote(b->emb)) {
        o->progress(o->progress_ud, "read+embed", rd, total);
        return;
    }
    uint64_t est = rd && total > rd ? (uint64_t)((double)b->n * (double)total / (double)rd) : b->n;
    o->progress(o->progress_ud, "embed", b->n, est < b->n ? b->n : est);
}

static ap_status read_rows(ap_rows *b, ap_csv *csv, ap_meta_writer *mw, uint64_t *skipped,
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
        /* An embedder learning its corpus sees every text before embedding any. */
        if (b->pending ==
                (ap_embedder_is_remote(b->emb) ? AP_EMBED_REMOTE_BATCH : AP_EMBED_BATCH) &&
            !ap_embedder_needs_table(b->emb)) {
            if ((st = flush_batch(b, err))) return st;
            report_embed(b, csv, total);
        }
    }
    ap_status st = flush_batch(b, err);
    if (st) return st;
    if (ap_embedder_is_remote(b->emb) && !b->vin && b->n) report_embed(b, csv, 0);
    if (b->n == 0) return ap_err_set(err, AP_ERR_FORMAT, "%s: no data rows", o->input_csv);
    if (b->vin && !(o->max_rows && b->n >= o->max_rows) && b->n != ap_vecs_count(b->vin))
        return ap_err_set(err, AP_ERR_FORMAT, "%s has %zu data rows but %s has %zu vectors",
                          o->input_csv, b->n, o->vectors, ap_vecs_count(b->vin));
    return check_unique_ids(b, err);
}

/* SHA-256 and size of the file at path, read 1 MiB at a time, checking *stop between. */
static ap_status hash_input(const char *path, char hex[AP_SHA256_HEX], uint64_t *size,
                            const atomic_int *stop, ap_err *err)
{
    int fd;
    uint64_t fsize;
    ap_status st = ap_open_regular(path, &fd, &fsize, err);
    if (st) return st;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    size_t cap = 1u << 20;
    unsigned char *buf = malloc(cap);
    ap_sha256 *h = ap_sha256_new();
    if (!buf || !h) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    *size = 0;
    while (!st) {
        if (atomic_load(stop)) {
            st = ap_err_set(err, AP_ERR_INTERNAL, "%s: hashing abandoned", path);
            break;
        }
        ssize_t r = read(fd, buf, cap);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: read", path);
        if (r <= 0) break;
        ap_sha256_update(h, buf, (size_t)r);
        *size += (uint64_t)r;
    }
    free(buf);
    close(fd);
    if (st || !h)
        ap_sha256_free(h);
    else
        ap_sha256_final(h, hex);
    return st;
}

ap_status ap_rows_hash_inputs(const ap_build_opts *o, ap_input_hashes *h, const atomic_int *stop,
                              ap_err *err)
{
    ap_status st = AP_OK;
    if (o->vectors) st = hash_input(o->vectors, h->vectors_hex, &h->vectors_size, stop, err);
    if (!st && o->input_csv) st = hash_input(o->input_csv, h->csv_hex, &h->csv_size, stop, err);
    return st;
}

/* The CSV-specific part of the manifest's "build" block. */
cJSON *ap_rows_build_block(const ap_rows *b, uint64_t skipped)
{
    const ap_build_opts *o = b->o;
    cJSON *c = cJSON_CreateObject();
    if (!c) return NULL;
    ap_json_add_u64(c, "rows_skipped", skipped);
    if (o->vectors) {
        cJSON_AddStringToObject(c, "vectors_sha256", b->hashes.vectors_hex);
        ap_json_add_u64(c, "vectors_size", b->hashes.vectors_size);
        if (!o->input_csv) {
            cJSON_AddStringToObject(c, "input", "vectors only");
            return c;
        }
    }
    if (o->text_col)
        cJSON_AddStringToObject(c, "text_col", o->text_col);
    else
        cJSON_AddNullToObject(c, "text_col");
    if (o->id_col)
        cJSON_AddStringToObject(c, "id_col", o->id_col);
    else
        cJSON_AddNullToObject(c, "id_col");
    cJSON_AddStringToObject(c, "input_sha256", b->hashes.csv_hex);
    ap_json_add_u64(c, "input_size", b->hashes.csv_size);
    return c;
}

/* The embedder: the given vectors' ("vectors" of their dim), a recorded one
 * (embedder_json), or a named one (default "hash"). */
static ap_status open_embedder(ap_rows *b, ap_err *err)
{
    const ap_build_opts *o = b->o;
    ap_status st;
    int http = o->embedder && ap_http_api_named(o->embedder);
    if (o->vectors) {
        if ((st = ap_vecs_open(o->vectors, AP_VECS_F32, &b->vin, err))) return st;
        if (!http) {
            st = ap_embedder_create("vectors", ap_vecs_dim(b->vin), 0, &b->emb, err);
        } else if (!(st = ap_embedder_create_http(o->embedder, o->http, &b->emb, err)) &&
                   ap_embedder_dim(b->emb) != ap_vecs_dim(b->vin)) {
            st = ap_err_set(err, AP_ERR_ARG,
                            "%s has vectors of dim %u but embedder %s writes dim %u: they did not "
                            "come from this model",
                            o->vectors, ap_vecs_dim(b->vin), o->embedder, ap_embedder_dim(b->emb));
        }
    } else if (http && !o->embedder_json) {
        st = ap_embedder_create_http(o->embedder, o->http, &b->emb, err);
    } else if (o->embedder_json) {
        st = ap_embedder_from_json(o->embedder_json, strlen(o->embedder_json), "embedder", &b->emb,
                                   err);
        /* A recorded HTTP embedder (a delta): the endpoint must still embed as the base's
         * build did, or the new rows would not be comparable with the old. */
        if (!st && ap_embedder_is_remote(b->emb)) st = ap_embedder_check(b->emb, NULL, err);
    } else {
        st = ap_embedder_create(o->embedder ? o->embedder : "hash", o->dim, o->seed, &b->emb, err);
    }
    if (!st) b->dim = ap_embedder_dim(b->emb);
    return st;
}

/* Every row: its vector into b, its metadata into the files of tmp. */
ap_status ap_rows_read(ap_rows *b, const char *tmp, uint64_t *skipped, ap_err *err)
{
    ap_meta_writer *mw = NULL;
    ap_status st = ap_meta_writer_open(tmp, b->o->meta_codec, 0, &mw, err);
    if (!st)
        st = b->csv ? read_rows(b, b->csv, mw, skipped, err) : vector_rows(b, mw, skipped, err);
    if (!st) st = ap_meta_writer_finish(mw, err);
    ap_meta_writer_free(mw);
    return st;
}

void ap_rows_free(ap_rows *b)
{
    for (size_t i = 0; i < b->pending; i++)
        free(b->texts[i]);
    for (size_t i = 0; i < b->ncols; i++)
        free(b->cols[i]);
    free(b->cols);
    free(b->texts);
    free(b->lens);
    free(b->vecs);
    free(b->ids);
    if (!b->emb_given) ap_embedder_free(b->emb);
    ap_vecs_close(b->vin);
    ap_csv_close(b->csv);
}

ap_status ap_rows_open_with(ap_rows *b, const ap_build_opts *o, const ap_embedder *emb, ap_err *err)
{
    b->o = o;
    ap_status st = AP_OK;
    if (emb) {
        /* Shared read-only: its table is loaded, so it is never fitted. */
        b->emb = (ap_embedder *)(uintptr_t)emb;
        b->emb_given = true;
        b->dim = ap_embedder_dim(emb);
        /* A base's HTTP embedder (a delta): the endpoint must still embed as the base's
         * build did, or the new rows would not be comparable with the old. */
        if (ap_embedder_is_remote(emb)) st = ap_embedder_check(emb, NULL, err);
    } else {
        st = open_embedder(b, err);
    }
    if (!st && o->input_csv && !(st = ap_csv_open(o->input_csv, &b->csv, err)))
        st = read_header(b, b->csv, err);
    return st;
}

ap_status ap_rows_open(ap_rows *b, const ap_build_opts *o, ap_err *err)
{
    return ap_rows_open_with(b, o, NULL, err);
}
