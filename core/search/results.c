/* Search results as JSON (see ap_results_json in include/annpack/pack.h).
 *
 * Written straight into one buffer: this is on every query's path through the mount, and
 * building a cJSON tree per result cost more than the rest of the response. The output is
 * what cJSON_PrintUnformatted printed for the same tree: strings escaped the same way
 * (quote, backslash, \b \f \n \r \t, other control bytes as \u00XX, UTF-8 as is), metadata
 * rows embedded verbatim (they are JSON objects, covered by the manifest's hashes). */
#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
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

/* %.9g of (double)f (which round-trips a float) into out (32 bytes), exactly as printf
 * prints it, in a tenth of printf's time (a result has one per hit): the length, or 0 for a
 * value outside the range done here (|f| >= 2^64 or below 2^-21, inf, nan; printf them).
 * f = m * 2^e is N * 10^e exactly for -44 <= e < 0 (N = m * 5^-e < 2^127), whose digits
 * are rounded to 9, ties to even, as glibc's printf rounds the exact value. Checked
 * against snprintf over every 13th float bit pattern and around every power of two. */
static size_t fmt_g9(float f, char *out)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t ex = (u >> 23) & 0xffu, mant = u & 0x7fffffu;
    size_t o = 0;
    if (ex == 0xffu) return 0; /* inf, nan */
    if (u >> 31) out[o++] = '-';
    if (ex == 0 && mant == 0) {
        out[o++] = '0';
        return o;
    }
    /* f = m * 2^e = N * 10^d10 exactly, N < 2^127 */
    uint32_t m = ex ? mant | 0x800000u : mant;
    int e = ex ? (int)ex - 150 : -149, d10 = 0;
    unsigned __int128 n = m;
    if (e >= 0) {
        if (e > 40) return 0;
        n <<= e;
    } else {
        if (-e > 44) return 0;
        int k = -e;
        uint64_t a = 1, b = 1; /* 5^k in two factors below 2^64 */
        for (int i = 0; i < (k < 22 ? k : 22); i++)
            a *= 5;
        for (int i = 22; i < k; i++)
            b *= 5;
        n = n * a * b;
        d10 = e;
    }
    /* Its digits: n = hi * 10^19 + lo, each part by 64-bit division. */
    const uint64_t P19 = 10000000000000000000ull;
    uint64_t hi = (uint64_t)(n / P19), lo = (uint64_t)(n % P19);
    char dig[48];
    int nd = 0;
    if (hi) {
        char t[20];
        int k = 0;
        while (hi) {
            t[k++] = (char)('0' + hi % 10);
            hi /= 10;
        }
        while (k)
            dig[nd++] = t[--k];
        for (int i = 18; i >= 0; i--) {
            dig[nd + i] = (char)('0' + lo % 10);
            lo /= 10;
        }
        nd += 19;
    } else {
        char t[20];
        int k = 0;
        while (lo) {
            t[k++] = (char)('0' + lo % 10);
            lo /= 10;
        }
        while (k)
            dig[nd++] = t[--k];
    }
    int x = nd - 1 + d10; /* the decimal exponent of the leading digit */
    if (nd > 9) {         /* round to 9 digits, ties to even, as printf does */
        int up = dig[9] > '5';
        if (dig[9] == '5') {
            int rest = 0;
            for (int i = 10; i < nd; i++)
                rest |= dig[i] != '0';
            up = rest || ((dig[8] - '0') & 1);
        }
        nd = 9;
        for (int i = 8; up && i >= 0; i--) {
            if (dig[i] == '9') {
                dig[i] = '0';
            } else {
                dig[i]++;
                up = 0;
            }
        }
        if (up) { /* 999999999 rounded up */
            dig[0] = '1';
            for (int i = 1; i < 9; i++)
                dig[i] = '0';
            x++;
        }
    }
    while (nd < 9)
        dig[nd++] = '0';
    int last = 8; /* the last significant digit, trailing zeros dropped */
    while (last > 0 && dig[last] == '0')
        last--;
    if (x >= -4 && x < 9) {
        if (x >= 0) {
            for (int i = 0; i <= x; i++)
                out[o++] = dig[i];
            if (last > x) {
                out[o++] = '.';
                for (int i = x + 1; i <= last; i++)
                    out[o++] = dig[i];
            }
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -x - 1; i++)
                out[o++] = '0';
            for (int i = 0; i <= last; i++)
                out[o++] = dig[i];
        }
        return o;
    }
    out[o++] = dig[0];
    if (last > 0) {
        out[o++] = '.';
        for (int i = 1; i <= last; i++)
            out[o++] = dig[i];
    }
    out[o++] = 'e';
    out[o++] = x < 0 ? '-' : '+';
    int ax = x < 0 ? -x : x;
    if (ax >= 100) out[o++] = (char)('0' + ax / 100);
    out[o++] = (char)('0' + ax / 10 % 10);
    out[o++] = (char)('0' + ax % 10);
    return o;
}

static void put_score(sbuf *b, float f)
{
    char tmp[32];
    size_t n = fmt_g9(f, tmp);
    if (n)
        put(b, tmp, n);
    else
        printf_(b, "%.9g", (double)f);
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
        puts_(&b, ",\"score\":");
        put_score(&b, hits[i].score);
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
