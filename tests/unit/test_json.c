/* Strict JSON (core/json.c, core/json_check.c): RFC 8259 exactly, the nesting and
 * keys-per-object caps, linear duplicate-key detection, and one-line messages that name
 * the document, the byte offset and what is wrong. */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "json.h"

static ap_err err;

static ap_status parse(const char *s, size_t len)
{
    cJSON *j = NULL;
    ap_status st = ap_json_parse_strict(s, len, "doc.json", &j, &err);
    cJSON_Delete(j);
    return st;
}

#define OK(lit) CHECK_OK(parse(lit, sizeof(lit) - 1), &err)
/* Refused with AP_ERR_FORMAT, the message naming the document and containing needle, on
 * one line. */
#define BAD(lit, needle)                                                                           \
    do {                                                                                           \
        CHECK_ERR(parse(lit, sizeof(lit) - 1), AP_ERR_FORMAT, &err, needle);                       \
        CHECK(strncmp(err.msg, "doc.json: ", 10) == 0);                                            \
        CHECK(strchr(err.msg, '\n') == NULL);                                                      \
    } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Appends to a growing buffer. */
typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* {"k0":0,"k1":0,...} with n keys; dup >= 0 repeats key "k<dup>" at the end. */
static void object_with_keys(buf *b, size_t n, long dup)
{
    puts_(b, "{");
    char k[48];
    for (size_t i = 0; i < n; i++) {
        int m = snprintf(k, sizeof k, "%s\"k%zu\":0", i ? "," : "", i);
        put(b, k, (size_t)m);
    }
    if (dup >= 0) {
        int m = snprintf(k, sizeof k, ",\"k%ld\":1", dup);
        put(b, k, (size_t)m);
    }
    puts_(b, "}");
}

static void test_grammar(void)
{
    OK("{}");
    OK("[]");
    OK("0");
    OK("-0");
    OK("\"\"");
    OK("null");
    OK(" \t\r\n{ \"a\" : [ 1 , -2.5e+3 , 0.0 , 1E-2 , true , false , null , \"x\" ] } \n");
    OK("{\"a\":{\"b\":{\"c\":[[],{}]}}}");
    BAD("", "unexpected end of input at byte 0");
    BAD("   ", "unexpected end of input at byte 3");
    BAD("{", "unexpected end of input at byte 1");
    BAD("{\"a\":1", "unexpected end of input at byte 6");
    BAD("{\"a\" 1}", "expected ':' at byte 5");
    BAD("{\"a\":1 \"b\":2}", "expected ',' or '}' at byte 7");
    BAD("[1 2]", "expected ',' or ']' at byte 3");
    BAD("[1,]", "expected a value at byte 3");
    BAD("{\"a\":1,}", "expected a string key at byte 7");
    BAD("{a:1}", "expected a string key at byte 1");
    BAD("{'a':1}", "expected a string key at byte 1");
    BAD("[NaN]", "expected a value at byte 1");
    BAD("[Infinity]", "expected a value at byte 1");
    BAD("[tru]", "expected a value at byte 1");
    BAD("[nulls]", "expected ',' or ']' at byte 5");
    BAD("[1] // c", "trailing bytes after JSON at byte 4");
    BAD("{} x", "trailing bytes after JSON at byte 3");
    BAD("{}{}", "trailing bytes after JSON at byte 2");
    BAD("\xef\xbb\xbf{}", "expected a value at byte 0");
    BAD("{\"a\":\0}", "NUL byte at byte 5");
    BAD("[1,\v2]", "expected a value at byte 3");
}

static void test_numbers(void)
{
    OK("[0,1,10,-1,1.5,0.25,1e5,1E+5,1e-5,-0.0e0,9007199254740993]");
    BAD("{\"n\":040}", "number with a leading zero at byte 5");
    BAD("[-01]", "number with a leading zero at byte 1");
    BAD("[00]", "number with a leading zero at byte 1");
    BAD("[+1]", "expected a value at byte 1");
    BAD("[.5]", "expected a value at byte 1");
    BAD("[1.]", "expected a digit at byte 3");
    BAD("[1.e5]", "expected a digit at byte 3");
    BAD("[1e]", "expected a digit at byte 3");
    BAD("[1e+]", "expected a digit at byte 4");
    BAD("[-]", "expected a digit at byte 2");
    BAD("[0x10]", "expected ',' or ']' at byte 2");
    BAD("[1_000]", "expected ',' or ']' at byte 2");
}

static void test_strings(void)
{
    OK("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"]");
    OK("[\"caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x98\x80\"]");
    /* \u0000 would cut the key in C while other readers keep the whole string. */
    BAD("{\"files\":{\"pack.meta.idx\\u0000/../../etc/passwd\":1}}",
        "\\u0000 (NUL) in a string at byte 24");
    BAD("[\"a\\u0000\"]", "\\u0000 (NUL) in a string at byte 3");
    BAD("[\"\\ud800\"]", "unpaired surrogate \\ud800 at byte 2");
    BAD("[\"\\ud800\\u0041\"]", "unpaired surrogate \\ud800 at byte 2");
    BAD("[\"\\ud800x\"]", "unpaired surrogate \\ud800 at byte 2");
    BAD("[\"\\udc00\"]", "unpaired surrogate \\udc00 at byte 2");
    BAD("[\"\\ude00\\ud83d\"]", "unpaired surrogate \\ude00 at byte 2");
    BAD("[\"\\u12g4\"]", "invalid \\u escape at byte 2");
    BAD("[\"\\u12\"]", "invalid \\u escape at byte 2");
    BAD("[\"\\x41\"]", "invalid escape \\x at byte 2");
    BAD("[\"\\'\"]", "invalid escape \\' at byte 2");
    BAD("[\"a\tb\"]", "control byte 0x09 in a string at byte 3");
    BAD("[\"a\nb\"]", "control byte 0x0a in a string at byte 3");
    BAD("[\"abc", "unterminated string at byte 1");
    BAD("[\"abc\\", "unterminated string at byte 1");
    /* Invalid UTF-8: stray continuation, overlongs, surrogates, above U+10FFFF, truncated. */
    BAD("{\"a\":\"\xff\"}", "invalid UTF-8 at byte 6");
    BAD("[\"\x80\"]", "invalid UTF-8 at byte 2");
    BAD("[\"\xc0\xaf\"]", "invalid UTF-8 at byte 2");
    BAD("[\"\xc1\xbf\"]", "invalid UTF-8 at byte 2");
    BAD("[\"\xe0\x80\xaf\"]", "invalid UTF-8 at byte 2");
    BAD("[\"\xf0\x80\x80\xaf\"]", "invalid UTF-8 at byte 2");
    BAD("[\"\xed\xa0\x80\"]", "invalid UTF-8 at byte 2");
    BAD("[\"\xf4\x90\x80\x80\"]", "invalid UTF-8 at byte 2");
    BAD("[\"ab\xe6\x9d\"]", "invalid UTF-8 at byte 4");
    BAD("{\"k\xff\":1}", "invalid UTF-8 at byte 3");
    BAD("[\xc3\xa9]", "expected a value at byte 1");
}

static void test_duplicates(void)
{
    BAD("{\"a\":1,\"a\":2}", "duplicate key \"a\" at byte 7");
    BAD("{\"a\":{\"b\":1,\"b\":1}}", "duplicate key \"b\" at byte 12");
    BAD("[{\"a\":1},{\"b\":1,\"c\":{\"d\":1},\"b\":2}]", "duplicate key \"b\" at byte 28");
    /* Keys are compared decoded. */
    BAD("{\"a\":1,\"\\u0061\":2}", "duplicate key \"a\" at byte 7");
    /* The key is escaped: the message stays one line. */
    BAD("{\"x\\ny\":1,\"x\\ny\":2}", "duplicate key \"x\\ny\" at byte 10");
    OK("{\"a\":1,\"A\":2,\"a \":3,\"b\":{\"a\":1}}");

    /* Many keys: the cap fits, every key distinct; a duplicate at the end is found. */
    buf b = {0};
    object_with_keys(&b, 65536, -1);
    CHECK_OK(parse(b.p, b.n), &err);
    b.n = 0;
    object_with_keys(&b, 65535, 123);
    CHECK_ERR(parse(b.p, b.n), AP_ERR_FORMAT, &err, "duplicate key \"k123\" at byte ");
    /* Four objects at the cap: linear, not 4 x 65536^2 / 2 comparisons. */
    b.n = 0;
    puts_(&b, "[");
    for (int i = 0; i < 4; i++) {
        if (i) puts_(&b, ",");
        object_with_keys(&b, 65536, -1);
    }
    puts_(&b, "]");
    double t0 = now();
    CHECK_OK(parse(b.p, b.n), &err);
    double t = now() - t0;
    /* About 0.2 s (0.7 s with ASan); the quadratic check took tens of seconds. */
    printf("4 objects of 65536 keys (%zu bytes) parsed in %.3f s\n", b.n, t);
    CHECK(t < 3.0);
    free(b.p);
}

static void test_caps(void)
{
    /* 64 levels are fine, 65 are not, and the message names the limit. */
    buf b = {0};
    for (int i = 0; i < 64; i++)
        puts_(&b, "[");
    for (int i = 0; i < 64; i++)
        puts_(&b, "]");
    CHECK_OK(parse(b.p, b.n), &err);
    b.n = 0;
    for (int i = 0; i < 32; i++)
        puts_(&b, "{\"a\":[");
    puts_(&b, "{}");
    for (int i = 0; i < 32; i++)
        puts_(&b, "]}");
    CHECK_ERR(parse(b.p, b.n), AP_ERR_LIMIT, &err,
              "doc.json: JSON nested deeper than 64 levels at byte 192");
    /* 100,000 levels: refused at once, naming the limit (not "invalid JSON"). */
    b.n = 0;
    for (int i = 0; i < 100000; i++)
        puts_(&b, "[");
    double t0 = now();
    CHECK_ERR(parse(b.p, b.n), AP_ERR_LIMIT, &err,
              "doc.json: JSON nested deeper than 64 levels at byte 64");
    CHECK(now() - t0 < 0.5);

    /* Keys per object: the cap is 65536; one more is refused naming the cap, quickly. */
    b.n = 0;
    object_with_keys(&b, 65537, -1);
    CHECK_ERR(parse(b.p, b.n), AP_ERR_LIMIT, &err, "more than 65536 keys");
    CHECK(strstr(err.msg, "the cap on keys per object") != NULL);
    /* The hostile manifest of the issue: 400k keys in one object (about 6 MB). */
    b.n = 0;
    puts_(&b, "{\"schema_version\":2,\"files\":");
    object_with_keys(&b, 400000, -1);
    puts_(&b, "}");
    t0 = now();
    CHECK_ERR(parse(b.p, b.n), AP_ERR_LIMIT, &err, "doc.json: object at byte 28 has more than");
    double t = now() - t0;
    printf("400k-key document (%zu bytes) refused in %.3f s: %s\n", b.n, t, err.msg);
    CHECK(t < 0.5);
    free(b.p);
}

static void test_excerpt(void)
{
    char out[64];
    ap_json_excerpt(out, sizeof out, "ab\ncd\"\\\x01\xff", 9, 40);
    CHECK(strcmp(out, "ab\\ncd\\\"\\\\\\x01\\xff") == 0);
    ap_json_excerpt(out, sizeof out, "caf\xc3\xa9", 5, 40);
    CHECK(strcmp(out, "caf\xc3\xa9") == 0);
    ap_json_excerpt(out, sizeof out, "0123456789abcdef", 16, 10);
    CHECK(strcmp(out, "0123456789...") == 0);
    char tiny[8];
    ap_json_excerpt(tiny, sizeof tiny, "\n\n\n\n\n\n\n\n", 8, 40);
    CHECK(strlen(tiny) < sizeof tiny);
}

int main(void)
{
    test_grammar();
    test_numbers();
    test_strings();
    test_duplicates();
    test_caps();
    test_excerpt();
    return check_done();
}
