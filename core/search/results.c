/* Search results as JSON (see ap_results_json in include/annpack/pack.h).
 *
 * Written straight into one buffer: this is on every query's path through the mount, and
 * building a cJSON tree per result cost more than the rest of the response. The output is
 * what cJSON_PrintUnformatted printed for the same tree: strings escaped the same way
 * (quote, backslash, \b \f \n \r \t, other control bytes as \u00XX, UTF-8 as is), metadata
 * rows embedded verbatim (they are JSON objects, covered by the manifest's hashes). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/search.h"

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

static void reserve(sbuf *b, size_t more)
{
    if (b->failed || b->len + more + 1 <= b->cap) return;
    size_t c = b->cap ? b->cap : 1024;
    while (c < b->len + more + 1)
        c *= 2;
    char *n = realloc(b->s, c);
    if (!n) {
        b->failed = 1;
        return;
    }
    b->s = n;
    b->cap = c;
}

static void put(sbuf *b, const char *s, size_t n)
{
    reserve(b, n);
    if (b->failed) return;
    assert(b->len + n < b->cap);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_(sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void printf_(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(sbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* An unsigned integer in decimal: what %llu prints, without a vsnprintf per number (a
 * result has three per hit). */
static void put_u64(sbuf *b, unsigned long long v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(b, tmp + i, sizeof tmp - i);
}

static void put_string(sbuf *b, const char *s)
{
    put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = NULL;
        switch (*p) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            break;
        }
        if (esc)
            puts_(b, esc);
        else if (*p < 32)
            printf_(b, "\\u%04x", *p);
        else
            put(b, (const char *)p, 1);
    }
    put(b, "\"", 1);
}

char *ap_results_json(const char *query, uint32_t k, uint32_t probe, long long generation,
                      double took_ms, const ap_hit *hits, uint32_t n, ap_row_fn row_of, void *ud,
                      size_t *len, ap_err *err)
{
    sbuf b = {0};
    reserve(&b, 4095); /* one allocation for a typical answer (k = 10 with rows) */
    put(&b, "{", 1);
    if (query) {
        puts_(&b, "\"query\":");
        put_string(&b, query);
        put(&b, ",", 1);
    }
    puts_(&b, "\"k\":");
    put_u64(&b, k);
    puts_(&b, ",\"probe\":");
    put_u64(&b, probe);
    put(&b, ",", 1);
    if (generation >= 0) {
        puts_(&b, "\"generation\":");
        put_u64(&b, (unsigned long long)generation);
        put(&b, ",", 1);
    }
    /* Right-aligned in 9 characters (JSON allows the spaces), so a result's size does not
     * depend on how long it took: the mount reports sizes before reads. */
    printf_(&b, "\"took_ms\":%9.3f,\"results\":[", took_ms);
    for (uint32_t i = 0; i < n; i++) {
        /* %.9g round-trips a float exactly. */
        puts_(&b, i ? ",{\"id\":" : "{\"id\":");
        put_u64(&b, (unsigned long long)hits[i].id);
        printf_(&b, ",\"score\":%.9g", (double)hits[i].score);
        puts_(&b, ",\"layer\":");
        put_u64(&b, hits[i].layer);
        puts_(&b, ",\"meta\":");
        char *row = NULL;
        if (row_of && row_of(ud, hits[i].id, hits[i].layer, &row, err) != AP_OK) {
            free(b.s);
            return NULL;
        }
        puts_(&b, row ? row : "null");
        free(row);
        put(&b, "}", 1);
    }
    put(&b, "]}\n", 3);
    if (b.failed) {
        free(b.s);
        ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (len) *len = b.len;
    return b.s;
}
