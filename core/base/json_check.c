/* The strict JSON validator: see json.h.
 *
 * One pass over the bytes with an explicit stack (no recursion), enforcing RFC 8259
 * exactly before cJSON sees anything: cJSON accepts things other readers refuse or read
 * differently (`\u0000` cuts its strings, invalid UTF-8 passes through, `040` and `1.`
 * parse as numbers, a BOM is skipped), and a signed document must mean the same thing to
 * every reader. Work and memory are linear in the input; nesting and keys per object are
 * capped. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "utf8.h"

typedef struct {
    const unsigned char *s;
    size_t len;
    const char *name;
    ap_err *err;
} scan;

static ap_status fail(const scan *sc, ap_status st, size_t at, const char *fmt, ...)
    AP_PRINTF(4, 5);

static ap_status fail(const scan *sc, ap_status st, size_t at, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ap_err_set(sc->err, st, "%s: %s at byte %zu", sc->name, what, at);
}

/* "expected X" at i, or what is there instead when that says more. */
static ap_status unexpected(const scan *sc, size_t i, const char *expected)
{
    if (i >= sc->len) return fail(sc, AP_ERR_FORMAT, i, "unexpected end of input");
    if (sc->s[i] == 0) return fail(sc, AP_ERR_FORMAT, i, "NUL byte");
    return fail(sc, AP_ERR_FORMAT, i, "expected %s", expected);
}

static size_t skip_ws(const scan *sc, size_t i)
{
    while (i < sc->len &&
           (sc->s[i] == ' ' || sc->s[i] == '\t' || sc->s[i] == '\n' || sc->s[i] == '\r'))
        i++;
    return i;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The code unit of "\uXXXX" at s[i] (the backslash), or -1. */
static long u_escape(const scan *sc, size_t i)
{
    if (i + 6 > sc->len || sc->s[i] != '\\' || sc->s[i + 1] != 'u') return -1;
    long v = 0;
    for (size_t k = 2; k < 6; k++) {
        int h = hexval(sc->s[i + k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* A string starting at the quote at *pos; leaves *pos after the closing quote. */
static ap_status scan_string(const scan *sc, size_t *pos)
{
    size_t start = *pos, i = start + 1;
    for (;;) {
        if (i >= sc->len) return fail(sc, AP_ERR_FORMAT, start, "unterminated string");
        unsigned char c = sc->s[i];
        if (c == '"') break;
        if (c < 0x20) {
            if (c == 0) return fail(sc, AP_ERR_FORMAT, i, "NUL byte in a string");
            return fail(sc, AP_ERR_FORMAT, i, "control byte 0x%02x in a string", c);
        }
        if (c >= 0x80) {
            size_t n = ap_utf8_char_len((const char *)sc->s + i, sc->len - i);
            if (!n) return fail(sc, AP_ERR_FORMAT, i, "invalid UTF-8");
            i += n;
            continue;
        }
        if (c != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= sc->len) return fail(sc, AP_ERR_FORMAT, start, "unterminated string");
        unsigned char e = sc->s[i + 1];
        if (e && strchr("\"\\/bfnrt", e)) {
            i += 2;
            continue;
        }
        if (e != 'u') {
            if (e >= 0x20 && e < 0x7f) return fail(sc, AP_ERR_FORMAT, i, "invalid escape \\%c", e);
            return fail(sc, AP_ERR_FORMAT, i, "invalid escape \\ followed by byte 0x%02x", e);
        }
        long u = u_escape(sc, i);
        if (u < 0) return fail(sc, AP_ERR_FORMAT, i, "invalid \\u escape");
        if (u == 0) return fail(sc, AP_ERR_FORMAT, i, "\\u0000 (NUL) in a string");
        if (u >= 0xdc00 && u <= 0xdfff)
            return fail(sc, AP_ERR_FORMAT, i, "unpaired surrogate \\u%04lx", u);
        if (u >= 0xd800 && u <= 0xdbff) {
            long lo = u_escape(sc, i + 6);
            if (lo < 0xdc00 || lo > 0xdfff)
                return fail(sc, AP_ERR_FORMAT, i, "unpaired surrogate \\u%04lx", u);
            i += 12;
        } else {
            i += 6;
        }
    }
    *pos = i + 1;
    return AP_OK;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at *pos. */
static ap_status scan_number(const scan *sc, size_t *pos)
{
    size_t start = *pos, i = start;
    const unsigned char *s = sc->s;
#define DIGIT(k) ((k) < sc->len && s[k] >= '0' && s[k] <= '9')
    if (s[i] == '-') i++;
    if (!DIGIT(i)) return unexpected(sc, i, "a digit");
    if (s[i] == '0') {
        i++;
        if (DIGIT(i)) return fail(sc, AP_ERR_FORMAT, start, "number with a leading zero");
    } else {
        while (DIGIT(i))
            i++;
    }
    if (i < sc->len && s[i] == '.') {
        i++;
        if (!DIGIT(i)) return unexpected(sc, i, "a digit");
        while (DIGIT(i))
            i++;
    }
    if (i < sc->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < sc->len && (s[i] == '+' || s[i] == '-')) i++;
        if (!DIGIT(i)) return unexpected(sc, i, "a digit");
        while (DIGIT(i))
            i++;
    }
#undef DIGIT
    *pos = i;
    return AP_OK;
}

enum { IN_ARRAY, IN_OBJECT };

ap_status ap_json_check(const char *buf, size_t len, const char *name, size_t **key_at,
                        size_t *nkeys, ap_err *err)
{
    if (key_at) *key_at = NULL;
    if (nkeys) *nkeys = 0;
    scan sc = {(const unsigned char *)buf, len, name, err};
    struct {
        unsigned char kind;
        size_t at;   /* the opening bracket */
        size_t keys; /* keys so far (objects) */
    } stack[AP_JSON_MAX_DEPTH];
    size_t depth = 0, i = skip_ws(&sc, 0), nk = 0, kcap = 0;
    size_t *keys = NULL;
    ap_status st = AP_OK;
    enum { VALUE, KEY, AFTER } state = VALUE;
    while (!st) {
        if (state == KEY) {
            /* i is at the first byte of a member: a key, ':' and then a value. */
            if (i >= len || buf[i] != '"') {
                st = unexpected(&sc, i, "a string key");
                break;
            }
            if (++stack[depth - 1].keys > AP_JSON_MAX_KEYS) {
                st = ap_err_set(err, AP_ERR_LIMIT,
                                "%s: object at byte %zu has more than %u keys (the cap on "
                                "keys per object); key %u at byte %zu",
                                name, stack[depth - 1].at, AP_JSON_MAX_KEYS, AP_JSON_MAX_KEYS + 1,
                                i);
                break;
            }
            if (key_at) {
                if (nk == kcap) {
                    size_t ncap = kcap ? kcap * 2 : 64;
                    size_t *g = realloc(keys, ncap * sizeof *g);
                    if (!g) {
                        st = ap_err_set(err, AP_ERR_NOMEM, "%s: out of memory", name);
                        break;
                    }
                    keys = g;
                    kcap = ncap;
                }
                keys[nk] = i;
            }
            nk++;
            if ((st = scan_string(&sc, &i))) break;
            i = skip_ws(&sc, i);
            if (i >= len || buf[i] != ':') {
                st = unexpected(&sc, i, "':'");
                break;
            }
            i = skip_ws(&sc, i + 1);
            state = VALUE;
            continue;
        }
        if (state == VALUE) {
            if (i >= len) {
                st = unexpected(&sc, i, "a value");
                break;
            }
            unsigned char c = (unsigned char)buf[i];
            if (c == '{' || c == '[') {
                if (depth == AP_JSON_MAX_DEPTH) {
                    st = ap_err_set(err, AP_ERR_LIMIT,
                                    "%s: JSON nested deeper than %u levels at byte %zu", name,
                                    AP_JSON_MAX_DEPTH, i);
                    break;
                }
                stack[depth].kind = c == '{' ? IN_OBJECT : IN_ARRAY;
                stack[depth].at = i;
                stack[depth].keys = 0;
                depth++;
                i = skip_ws(&sc, i + 1);
                if (i < len && buf[i] == (c == '{' ? '}' : ']')) {
                    depth--;
                    i++;
                    state = AFTER;
                } else {
                    state = c == '{' ? KEY : VALUE;
                }
                continue;
            }
            if (c == '"') {
                st = scan_string(&sc, &i);
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                st = scan_number(&sc, &i);
            } else if (len - i >= 4 && !memcmp(buf + i, "true", 4)) {
                i += 4;
            } else if (len - i >= 5 && !memcmp(buf + i, "false", 5)) {
                i += 5;
            } else if (len - i >= 4 && !memcmp(buf + i, "null", 4)) {
                i += 4;
            } else {
                st = unexpected(&sc, i, "a value");
            }
            state = AFTER;
            continue;
        }
        /* AFTER a value: the end of the document, or ',' or the closing bracket. */
        i = skip_ws(&sc, i);
        if (depth == 0) {
            if (i < len) st = fail(&sc, AP_ERR_FORMAT, i, "trailing bytes after JSON");
            break;
        }
        int obj = stack[depth - 1].kind == IN_OBJECT;
        if (i < len && buf[i] == ',') {
            i = skip_ws(&sc, i + 1);
            state = obj ? KEY : VALUE;
        } else if (i < len && buf[i] == (obj ? '}' : ']')) {
            depth--;
            i++;
        } else {
            st = unexpected(&sc, i, obj ? "',' or '}'" : "',' or ']'");
        }
    }
    if (st) {
        free(keys);
        return st;
    }
    if (key_at) *key_at = keys;
    if (nkeys) *nkeys = nk;
    return AP_OK;
}

char *ap_json_excerpt(char *out, size_t cap, const char *s, size_t len, size_t max)
{
    if (!cap) return out;
    size_t o = 0, i = 0;
    int cut = 0;
    while (i < len) {
        if (i >= max) {
            cut = 1;
            break;
        }
        char unit[8];
        size_t un = 1, adv = 1;
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            unit[0] = '\\';
            unit[1] = (char)c;
            un = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            unit[0] = '\\';
            unit[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            un = 2;
        } else if (c < 0x20 || c == 0x7f) {
            un = (size_t)snprintf(unit, sizeof unit, "\\x%02x", c);
        } else if (c < 0x80) {
            unit[0] = (char)c;
        } else {
            size_t n = ap_utf8_char_len(s + i, len - i);
            if (n && i + n <= max) {
                memcpy(unit, s + i, n);
                un = adv = n;
            } else {
                un = (size_t)snprintf(unit, sizeof unit, "\\x%02x", c);
            }
        }
        /* Keep room for "..." and the NUL. */
        if (o + un + 4 > cap) {
            cut = 1;
            break;
        }
        memcpy(out + o, unit, un);
        o += un;
        i += adv;
    }
    if (cut && o + 4 <= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}
