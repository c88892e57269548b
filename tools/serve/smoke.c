/* annpack smoke: starts what `annpack serve` starts (server.h) and checks every URL over
 * HTTP (fetch.h) against the mounted files, then stops it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "cli.h"
#include "cmd_serve.h"
#include "fetch.h"

#define HTTP_TIMEOUT_S 60
#define MAX_BODY (64u << 20)
#define MAX_QUERY_ENCODED 799 /* the mount caps a query name at 1024 bytes decoded */

static const char smoke_usage[] =
    "usage: annpack smoke DIR [--port N] [--host ADDR] [--pubkey FILE]\n"
    "\n"
    "Starts what `annpack serve` starts (on a free port by default) and checks it over\n"
    "HTTP: the page (/), /health, /pack/pack.manifest.json, Range reads of\n"
    "/pack/pack.annpack against the mounted file's bytes, /pack/pack.meta.jsonl against the\n"
    "manifest's size and SHA-256, /doc/<id> and a query for the first document's own text\n"
    "whose top hit must be that document. Prints one line per check and PASS smoke (exit\n"
    "0), or names the first failing check (exit 1). Always stops and cleans up.\n"
    "\n"
    "  --port N       TCP port (default 0: a free one)\n"
    "  --host ADDR    address to listen on (default 127.0.0.1)\n"
    "  --pubkey FILE  require a valid signature by a key in FILE\n"
    "  --embed-url URL, --embed-key-file FILE   the embedding service (as for serve)\n"
    "  -h, --help     show this help\n";

typedef struct smoke {
    server *s;
    fetcher *f;
    char err[2048];
    cJSON *manifest;
    uint64_t annp_size, meta_size, n_lists;
    char meta_sha[AP_SHA256_HEX];
    char *first_row; /* the first line of pack.meta.jsonl */
} smoke;

static int fail(smoke *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(smoke *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->err, sizeof k->err, fmt, ap);
    va_end(ap);
    return -1;
}

static int get(smoke *k, const char *path, const char *range, fetch_sink sink, void *ud,
               fetch_resp *r)
{
    return fetch_get(k->f, path, range, sink, ud, MAX_BODY, r, k->err, sizeof k->err);
}

static int expect_status(smoke *k, const char *path, const fetch_resp *r, long want)
{
    if (r->status == want) return 0;
    return fail(k, "GET %s: HTTP %ld, expected %ld", path, r->status, want);
}

/* A header of the last response equals want. */
static int header_is(smoke *k, const char *name, const char *want)
{
    char v[256];
    return fetch_header(k->f, name, v, sizeof v) && !strcmp(v, want);
}

/* n bytes at off of the mounted file name. */
static int read_mounted(smoke *k, const char *name, uint64_t off, size_t n, char *out)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", k->s->mnt, name);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(k, "%s: %s", p, strerror(errno));
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, out + got, n - got, (off_t)(off + got));
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) return fail(k, "%s: short read at %llu", p, (unsigned long long)off);
    return 0;
}

/* ---- the checks, in order ---- */

/* The value of the attribute attr="…" that follows the first `after` in html, into out
 * (a relative name of the page: letters, digits, '.', '-', '_'); 0 when found. */
static int page_ref(const char *html, const char *after, const char *attr, char *out, size_t len)
{
    const char *p = strstr(html, after);
    if (!p || !(p = strstr(p, attr))) return -1;
    p += strlen(attr);
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");
    if (n == 0 || n + 2 > len || p[n] != '"') return -1;
    out[0] = '/';
    memcpy(out + 1, p, n);
    out[n + 1] = '\0';
    return 0;
}

/* GET path answers 200; for the index (is_index), text/html whose script and stylesheet
 * (the sources' app.js and style.css, or the built page's hashed names) go to js and css. */
static int check_page_file(smoke *k, const char *path, int is_index, char *js, char *css,
                           size_t len)
{
    fetch_resp r;
    char ct[128];
    int rc = -1;
    if (get(k, path, NULL, NULL, NULL, &r)) return -1;
    if (expect_status(k, path, &r, 200)) goto out;
    if (is_index &&
        (!fetch_header(k->f, "Content-Type", ct, sizeof ct) || strncmp(ct, "text/html", 9))) {
        fail(k, "GET /: Content-Type is not text/html");
        goto out;
    }
    if (is_index &&
        (page_ref(r.body, "<script", "src=\"", js, len) ||
         page_ref(r.body, "rel=\"stylesheet\"", "href=\"", css, len) || strncmp(js, "/app", 4))) {
        fail(k, "GET /: not the search page (no app script and stylesheet)");
        goto out;
    }
    rc = 0;
out:
    fetch_resp_free(&r);
    return rc;
}

static int check_page(smoke *k)
{
    char js[128], css[128];
    if (check_page_file(k, "/", 1, js, css, sizeof js) ||
        check_page_file(k, js, 0, NULL, NULL, 0) || check_page_file(k, css, 0, NULL, NULL, 0))
        return -1;
    printf("ok   page        /, %s, %s\n", js, css);
    return 0;
}

static int check_health(smoke *k)
{
    fetch_resp r;
    cJSON *j = NULL;
    int rc = -1;
    if (get(k, "/health", NULL, NULL, NULL, &r)) return -1;
    if (expect_status(k, "/health", &r, 200)) goto out;
    j = cJSON_Parse(r.body);
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "status"));
    if (!st || strcmp(st, "ok")) {
        fail(k, "GET /health: no \"status\":\"ok\" in %.200s", r.body);
        goto out;
    }
    if (!header_is(k, "Access-Control-Allow-Origin", "*")) {
        fail(k, "GET /health: no Access-Control-Allow-Origin: * header");
        goto out;
    }
    printf("ok   health      %.*s\n", (int)strcspn(r.body, "\n"), r.body);
    rc = 0;
out:
    cJSON_Delete(j);
    fetch_resp_free(&r);
    return rc;
}

/* A JSON number as an unsigned integer; 0 when it is not a non-negative number. */
static uint64_t as_u64(const cJSON *x)
{
    double d = cJSON_GetNumberValue(x); /* NaN when x is not a number */
    return d >= 0 ? (uint64_t)d : 0;
}

/* The sizes, hash and list count the later checks compare against. */
static int read_manifest_facts(smoke *k, const char *path)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(k->manifest, "files");
    const cJSON *annp = cJSON_GetObjectItemCaseSensitive(files, "pack.annpack");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(files, "pack.meta.jsonl");
    k->annp_size = as_u64(cJSON_GetObjectItemCaseSensitive(annp, "size"));
    k->meta_size = as_u64(cJSON_GetObjectItemCaseSensitive(meta, "size"));
    k->n_lists = as_u64(cJSON_GetObjectItemCaseSensitive(k->manifest, "n_lists"));
    const char *sha = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "sha256"));
    if (sha) snprintf(k->meta_sha, sizeof k->meta_sha, "%s", sha);
    if (k->annp_size < 72 || !k->meta_sha[0] || !k->n_lists)
        return fail(
            k, "GET %s: no files.pack.annpack.size, files.pack.meta.jsonl.sha256 or n_lists", path);
    return 0;
}

static int check_manifest(smoke *k)
{
    const char *path = "/pack/pack.manifest.json";
    fetch_resp r;
    char *disk = NULL;
    int rc = -1;
    if (get(k, path, NULL, NULL, NULL, &r)) return -1;
    if (expect_status(k, path, &r, 200)) goto out;
    if (!(disk = malloc(r.body_len + 1))) {
        fail(k, "out of memory");
        goto out;
    }
    if (read_mounted(k, "pack.manifest.json", 0, r.body_len, disk)) goto out;
    if (memcmp(disk, r.body, r.body_len)) {
        fail(k, "GET %s: the bytes differ from the mounted file", path);
        goto out;
    }
    if (!(k->manifest = cJSON_Parse(r.body))) {
        fail(k, "GET %s: not JSON", path);
        goto out;
    }
    if (read_manifest_facts(k, path)) goto out;
    const char *sig = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(k->manifest, "packset"), "signature"));
    printf("ok   manifest    %llu vectors, %llu lists, signature %s\n",
           (unsigned long long)as_u64(cJSON_GetObjectItemCaseSensitive(k->manifest, "n_vectors")),
           (unsigned long long)k->n_lists, sig ? sig : "?");
    rc = 0;
out:
    free(disk);
    fetch_resp_free(&r);
    return rc;
}

/* One Range read of /pack/pack.annpack compared with the mounted file. */
static int check_range_at(smoke *k, uint64_t off, size_t len)
{
    const char *path = "/pack/pack.annpack";
    char range[64], want_cr[96];
    unsigned long long first = off, last = off + len - 1;
    snprintf(range, sizeof range, "bytes=%llu-%llu", first, last);
    snprintf(want_cr, sizeof want_cr, "bytes %llu-%llu/%llu", first, last,
             (unsigned long long)k->annp_size);
    fetch_resp r;
    char *disk = NULL;
    int rc = -1;
    if (get(k, path, range, NULL, NULL, &r)) return -1;
    if (expect_status(k, path, &r, 206)) goto out;
    if (!header_is(k, "Content-Range", want_cr)) {
        fail(k, "GET %s (Range %s): Content-Range is not '%s'", path, range, want_cr);
        goto out;
    }
    if (r.body_len != len) {
        fail(k, "GET %s (Range %s): %zu bytes, expected %zu", path, range, r.body_len, len);
        goto out;
    }
    if (!(disk = malloc(len))) {
        fail(k, "out of memory");
        goto out;
    }
    if (read_mounted(k, "pack.annpack", off, len, disk)) goto out;
    if (memcmp(disk, r.body, len)) {
        fail(k, "GET %s (Range %s): the bytes differ from the mounted file", path, range);
        goto out;
    }
    rc = 0;
out:
    free(disk);
    fetch_resp_free(&r);
    return rc;
}

static int check_range(smoke *k)
{
    uint64_t mid = k->annp_size / 2;
    size_t len = k->annp_size - mid < 4096 ? (size_t)(k->annp_size - mid) : 4096;
    if (check_range_at(k, 0, 72) || check_range_at(k, mid, len)) return -1;
    printf("ok   range       bytes 0-71 and %llu-%llu of %llu match the mounted file\n",
           (unsigned long long)mid, (unsigned long long)(mid + len - 1),
           (unsigned long long)k->annp_size);
    return 0;
}

/* Hashes pack.meta.jsonl as it streams by and keeps its first line. */
typedef struct meta_sink {
    ap_sha256 *h;
    char *first;
    size_t first_len, first_cap;
    int first_done;
} meta_sink;

static int meta_chunk(void *ud, const char *data, size_t len)
{
    meta_sink *m = ud;
    ap_sha256_update(m->h, data, len);
    if (m->first_done) return 0;
    const char *nl = memchr(data, '\n', len);
    size_t take = nl ? (size_t)(nl - data) : len;
    if (m->first_len + take > (1u << 20) + 1) return -1; /* ANNPACK_META_MAX_LINE */
    if (m->first_len + take + 1 > m->first_cap) {
        size_t cap = m->first_len + take + 1 + 4096;
        char *p = realloc(m->first, cap);
        if (!p) return -1;
        m->first = p;
        m->first_cap = cap;
    }
    memcpy(m->first + m->first_len, data, take);
    m->first_len += take;
    m->first[m->first_len] = '\0';
    m->first_done = nl != NULL;
    return 0;
}

static int check_meta(smoke *k)
{
    const char *path = "/pack/pack.meta.jsonl";
    meta_sink m = {.h = ap_sha256_new()};
    char hex[AP_SHA256_HEX];
    fetch_resp r = {0};
    int rc = -1;
    if (!m.h) return fail(k, "out of memory");
    if (get(k, path, NULL, meta_chunk, &m, &r)) goto out;
    ap_sha256_final(m.h, hex);
    m.h = NULL;
    if (expect_status(k, path, &r, 200)) goto out;
    if (r.body_len != k->meta_size) {
        fail(k, "GET %s: %zu bytes, the manifest says %llu", path, r.body_len,
             (unsigned long long)k->meta_size);
        goto out;
    }
    if (strcmp(hex, k->meta_sha)) {
        fail(k, "GET %s: SHA-256 %s, the manifest says %s", path, hex, k->meta_sha);
        goto out;
    }
    if (!m.first_len) {
        fail(k, "GET %s: no rows", path);
        goto out;
    }
    k->first_row = m.first;
    m.first = NULL;
    printf("ok   meta        %zu bytes, SHA-256 matches the manifest\n", r.body_len);
    rc = 0;
out:
    ap_sha256_free(m.h);
    fetch_resp_free(&r);
    free(m.first);
    return rc;
}

/* build.text_col of a manifest's JSON, or NULL. */
static const char *text_col_of(const cJSON *manifest)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(manifest, "build"), "text_col"));
}

/* The text column: the manifest's build.text_col (the mount's virtual manifest has no
 * build block, so also DIR's own manifest, or its base's), else "text". */
static void text_column(smoke *k, char *out, size_t len)
{
    const char *tc = text_col_of(k->manifest);
    snprintf(out, len, "%s", tc ? tc : "text");
    if (tc) return;
    const char *cands[] = {"pack.manifest.json", "base/pack.manifest.json"};
    for (size_t i = 0; i < 2; i++) {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/%s", k->s->dir, cands[i]);
        FILE *f = fopen(p, "re");
        if (!f) continue;
        char *buf = malloc(AP_MAX_MANIFEST_BYTES + 1);
        size_t n = buf ? fread(buf, 1, AP_MAX_MANIFEST_BYTES, f) : 0;
        fclose(f);
        if (!buf) return;
        buf[n] = '\0';
        cJSON *j = cJSON_Parse(buf);
        free(buf);
        tc = text_col_of(j);
        if (tc) snprintf(out, len, "%s", tc);
        cJSON_Delete(j);
        if (tc) return;
    }
}

/* GET path and parse its JSON body into *out (caller frees). */
static int get_json(smoke *k, const char *path, const char *what, cJSON **out)
{
    fetch_resp r;
    int rc = -1;
    *out = NULL;
    if (get(k, path, NULL, NULL, NULL, &r)) return -1;
    if (expect_status(k, what, &r, 200)) goto out;
    if (!(*out = cJSON_Parse(r.body))) {
        fail(k, "GET %s: not JSON: %.200s", what, r.body);
        goto out;
    }
    rc = 0;
out:
    fetch_resp_free(&r);
    return rc;
}

static int check_doc(smoke *k, long long id)
{
    char path[64];
    cJSON *doc = NULL;
    snprintf(path, sizeof path, "/doc/%lld", id);
    if (get_json(k, path, path, &doc)) return -1;
    const cJSON *did = cJSON_GetObjectItemCaseSensitive(doc, "id");
    int ok = cJSON_IsNumber(did) && (long long)did->valuedouble == id;
    cJSON_Delete(doc);
    if (!ok) return fail(k, "GET %s: not the row with id %lld", path, id);
    printf("ok   doc         %s\n", path);
    return 0;
}

/* A query for the text of document id must find it first. The mount caps a query file
 * name at 1024 bytes, so a long text is cut. Probing every list makes the search exact:
 * the check does not depend on the IVF's recall. */
static int check_query(smoke *k, long long id, const char *text)
{
    char *enc = fetch_escape(k->f, text, MAX_QUERY_ENCODED);
    if (!enc) return fail(k, "out of memory");
    char path[MAX_QUERY_ENCODED + 64];
    uint64_t probe = k->n_lists < AP_MAX_PROBE ? k->n_lists : AP_MAX_PROBE;
    snprintf(path, sizeof path, "/query/%s?k=3&probe=%llu", enc, (unsigned long long)probe);
    free(enc);
    cJSON *res = NULL;
    if (get_json(k, path, "/query/<the first row's text>", &res)) return -1;
    const cJSON *hits = cJSON_GetObjectItemCaseSensitive(res, "results");
    const cJSON *tid = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(hits, 0), "id");
    long long top = cJSON_IsNumber(tid) ? (long long)tid->valuedouble : -1;
    int found = cJSON_IsNumber(tid);
    cJSON_Delete(res);
    if (!found) return fail(k, "the query for the text of document %lld found nothing", id);
    if (top != id)
        return fail(k, "the top hit for the text of document %lld is document %lld", id, top);
    printf("ok   query       the text of document %lld finds it first\n", id);
    return 0;
}

static int check_doc_and_query(smoke *k)
{
    char col[256];
    text_column(k, col, sizeof col);
    cJSON *row = cJSON_Parse(k->first_row);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(row, "id");
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, col));
    int rc;
    if (!cJSON_IsNumber(id) || !text || !text[0])
        rc = fail(k,
                  "the first row of pack.meta.jsonl has no integer \"id\" and non-empty string "
                  "\"%s\": %.200s",
                  col, k->first_row);
    else
        rc = check_doc(k, (long long)id->valuedouble) ||
                     check_query(k, (long long)id->valuedouble, text)
                 ? -1
                 : 0;
    cJSON_Delete(row);
    return rc;
}

/* ---- annpack smoke ---- */

/* Runs the checks in order; returns the name of the first that fails (k->err says why),
 * or NULL when all pass. */
static const char *run_checks(smoke *k)
{
    static const struct {
        const char *name;
        int (*fn)(smoke *);
    } checks[] = {{"page", check_page},   {"health", check_health}, {"manifest", check_manifest},
                  {"range", check_range}, {"meta", check_meta},     {"query", check_doc_and_query}};
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        int failed = sv_interrupted(k->err, sizeof k->err) || checks[i].fn(k) != 0;
        fflush(stdout);
        if (failed) return checks[i].name;
    }
    return NULL;
}

int cmd_smoke(int argc, char **argv)
{
    /* A deploy check: every byte verified before the first request (not lazily). */
    serve_opts o = {.host = "127.0.0.1", .port = 0, .verify = "full"};
    int rc = serve_parse_opts("smoke", argc, argv, &o);
    if (rc < 0) {
        fputs(smoke_usage, stdout);
        return EXIT_OK;
    }
    if (rc) return rc;
    if (sv_signals_install() != 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        cli_msg("smoke", AP_LOG_ERROR, "cannot initialise: %s", strerror(errno));
        return EXIT_FAIL;
    }
    server s;
    smoke k = {.s = &s};
    char serr[1024], base[sizeof s.url];
    if (server_start(&s, &o, k.err, sizeof k.err) != 0) {
        cli_msg("smoke", AP_LOG_ERROR, "FAIL serve: %s", k.err);
        return EXIT_FAIL;
    }
    printf("ok   serve       %s on %s\n", s.dir, s.url);
    fflush(stdout);
    snprintf(base, sizeof base, "%.*s", (int)strlen(s.url) - 1, s.url); /* without the '/' */
    const char *failed = NULL;
    if (!(k.f = fetcher_new(base, HTTP_TIMEOUT_S, sv_stop_signal))) {
        snprintf(k.err, sizeof k.err, "out of memory");
        failed = "serve";
    } else {
        failed = run_checks(&k);
    }
    fetcher_free(k.f);
    cJSON_Delete(k.manifest);
    free(k.first_row);
    /* What the children said may explain a failure (an annpackfs error line, say). */
    if (failed) server_relay(&s, 1);
    int stopped = server_stop(&s, serr, sizeof serr);
    curl_global_cleanup();
    if (failed) {
        cli_msg("smoke", AP_LOG_ERROR, "FAIL %s: %s", failed, k.err);
        return EXIT_FAIL;
    }
    if (stopped != 0) {
        cli_msg("smoke", AP_LOG_ERROR, "FAIL cleanup: %s", serr);
        return EXIT_FAIL;
    }
    puts("PASS smoke");
    return EXIT_OK;
}
