/* Strict JSON helpers: see json.h (the validator is json_check.c). */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fsops.h"
#include "json.h"

static const char *type_name(int type)
{
    switch (type) {
    case cJSON_Object:
        return "an object";
    case cJSON_Array:
        return "an array";
    case cJSON_String:
        return "a string";
    case cJSON_Number:
        return "a number";
    case cJSON_True | cJSON_False:
        return "a boolean";
    default:
        return "a value";
    }
}

/* ---- duplicate keys: linear, with a SipHash set per object --------------------------- */

/* Objects with at most this many keys are checked pairwise (cheaper than hashing). */
#define SMALL_OBJECT 16

typedef struct {
    uint64_t h;
    const char *key; /* NULL: empty slot */
} slot;

typedef struct {
    const char *name;
    const size_t *key_at; /* byte offset of every key, in document order */
    size_t nkeys, next;   /* next: index of the next key in document order */
    slot *tab;
    size_t tab_cap;
    ap_err *err;
} dups;

/* Keys of untrusted documents are hashed with a random key, so no one can choose keys
 * that all land in one bucket. */
static unsigned char g_hash_key[crypto_shorthash_KEYBYTES];
static pthread_once_t g_hash_once = PTHREAD_ONCE_INIT;

static void hash_key_init(void)
{
    /* sodium_init is idempotent and thread-safe; the base layer calls it directly. */
    if (sodium_init() < 0) abort(); /* no entropy source: nothing can be hashed safely */
    randombytes_buf(g_hash_key, sizeof g_hash_key);
}

static ap_status duplicate(dups *d, const char *key, size_t k)
{
    char ex[200];
    ap_json_excerpt(ex, sizeof ex, key, strlen(key), 80);
    return ap_err_set(d->err, AP_ERR_FORMAT, "%s: duplicate key \"%s\" at byte %zu", d->name, ex,
                      k < d->nkeys ? d->key_at[k] : 0);
}

/* Checks the n keys of obj, whose document-order indexes are idx[0..n). */
static ap_status object_keys(dups *d, const cJSON *obj, size_t n, const size_t *idx)
{
    if (n <= SMALL_OBJECT) {
        size_t j = 0;
        for (const cJSON *c = obj->child; c; c = c->next, j++)
            for (const cJSON *e = obj->child; e != c; e = e->next)
                if (strcmp(e->string, c->string) == 0) return duplicate(d, c->string, idx[j]);
        return AP_OK;
    }
    size_t cap = 64;
    while (cap < 2 * n)
        cap *= 2;
    if (cap > d->tab_cap) {
        free(d->tab);
        d->tab_cap = 0;
        if (!(d->tab = malloc(cap * sizeof *d->tab)))
            return ap_err_set(d->err, AP_ERR_NOMEM, "%s: out of memory", d->name);
        d->tab_cap = cap;
    }
    memset(d->tab, 0, cap * sizeof *d->tab);
    assert(n <= cap / 2); /* the table is never full: every probe ends at an empty slot */
    size_t j = 0;
    for (const cJSON *c = obj->child; c; c = c->next, j++) {
        assert(j < n); /* obj has the n keys counted */
        size_t klen = strlen(c->string);
        unsigned char hb[crypto_shorthash_BYTES];
        crypto_shorthash(hb, (const unsigned char *)c->string, klen, g_hash_key);
        uint64_t h;
        memcpy(&h, hb, sizeof h);
        size_t at = (size_t)h & (cap - 1);
        while (d->tab[at].key) {
            if (d->tab[at].h == h && strcmp(d->tab[at].key, c->string) == 0)
                return duplicate(d, c->string, idx[j]);
            at = (at + 1) & (cap - 1);
        }
        d->tab[at].h = h;
        d->tab[at].key = c->string;
    }
    return AP_OK;
}

/* Walks the tree in document order (a key, then its value), so the k-th key met is the
 * k-th key the validator recorded. Depth is at most AP_JSON_MAX_DEPTH. */
static ap_status walk(dups *d, const cJSON *it)
{
    if (!cJSON_IsObject(it) && !cJSON_IsArray(it)) return AP_OK;
    int obj = cJSON_IsObject(it);
    size_t n = 0, small[SMALL_OBJECT], *idx = small;
    if (obj) {
        for (const cJSON *c = it->child; c; c = c->next)
            n++;
        if (n > SMALL_OBJECT && !(idx = malloc(n * sizeof *idx)))
            return ap_err_set(d->err, AP_ERR_NOMEM, "%s: out of memory", d->name);
    }
    ap_status st = AP_OK;
    size_t j = 0;
    for (const cJSON *c = it->child; c && !st; c = c->next) {
        if (obj) idx[j++] = d->next++;
        st = walk(d, c);
    }
    if (!st && obj) st = object_keys(d, it, n, idx);
    if (idx != small) free(idx);
    return st;
}

ap_status ap_json_parse_strict(const char *buf, size_t len, const char *name, cJSON **out,
                               ap_err *err)
{
    *out = NULL;
    size_t *key_at = NULL, nkeys = 0;
    ap_status st = ap_json_check(buf, len, name, &key_at, &nkeys, err);
    if (st) return st;
    cJSON *root = cJSON_ParseWithLength(buf, len);
    if (!root) {
        free(key_at);
        const char *at = cJSON_GetErrorPtr();
        long off = (at && at >= buf && at <= buf + len) ? (long)(at - buf) : -1;
        return ap_err_set(err, AP_ERR_FORMAT, "%s: cJSON refused the JSON near byte %ld", name,
                          off);
    }
    pthread_once(&g_hash_once, hash_key_init);
    dups d = {.name = name, .key_at = key_at, .nkeys = nkeys, .err = err};
    st = walk(&d, root);
    if (!st && d.next != nkeys)
        st = ap_err_set(err, AP_ERR_INTERNAL, "%s: cJSON saw %zu keys, the validator %zu", name,
                        d.next, nkeys);
    free(d.tab);
    free(key_at);
    if (st) {
        cJSON_Delete(root);
        return st;
    }
    *out = root;
    return AP_OK;
}

ap_status ap_json_load_file(const char *path, size_t max_bytes, cJSON **out, char **raw,
                            size_t *raw_len, ap_err *err)
{
    *out = NULL;
    if (raw) *raw = NULL;
    char *buf = NULL;
    size_t n = 0;
    ap_status st = ap_read_file(path, max_bytes, &buf, &n, err);
    if (st == AP_ERR_LIMIT)
        st = ap_err_set(err, AP_ERR_LIMIT, "%s: exceeds the manifest cap of %zu bytes", path,
                        max_bytes);
    if (st) return st;
    st = ap_json_parse_strict(buf, n, path, out, err);
    if (st == AP_OK && raw) {
        *raw = buf;
        if (raw_len) *raw_len = n;
        buf = NULL;
    }
    free(buf);
    return st;
}

ap_status ap_json_member(const cJSON *obj, const char *key, int type, const char *name,
                         const cJSON **out, ap_err *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return ap_err_set(err, AP_ERR_FORMAT, "%s: field \"%s\" missing", name, key);
    if (!(it->type & type))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: field \"%s\" is not %s", name, key,
                          type_name(type));
    *out = it;
    return AP_OK;
}

ap_status ap_json_item_u64(const cJSON *item, uint64_t max, const char *what, uint64_t *out,
                           ap_err *err)
{
    if (!item || !cJSON_IsNumber(item))
        return ap_err_set(err, AP_ERR_FORMAT, "%s is not a number", what);
    double d = item->valuedouble;
    if (!isfinite(d) || d < 0 || d != floor(d) || d > (double)AP_JSON_MAX_SAFE_INT)
        return ap_err_set(err, AP_ERR_FORMAT, "%s is not an exact integer in [0, 2^53): %.17g",
                          what, d);
    if ((uint64_t)d > max)
        return ap_err_set(err, AP_ERR_FORMAT, "%s = %llu exceeds %llu", what, (unsigned long long)d,
                          (unsigned long long)max);
    *out = (uint64_t)d;
    return AP_OK;
}

ap_status ap_json_u64(const cJSON *obj, const char *key, uint64_t max, const char *name,
                      uint64_t *out, ap_err *err)
{
    const cJSON *it = NULL;
    ap_status st = ap_json_member(obj, key, cJSON_Number, name, &it, err);
    if (st) return st;
    char what[512];
    snprintf(what, sizeof what, "%s: field \"%s\"", name, key);
    return ap_json_item_u64(it, max, what, out, err);
}

ap_status ap_json_str(const cJSON *obj, const char *key, const char *name, const char **out,
                      ap_err *err)
{
    const cJSON *it = NULL;
    ap_status st = ap_json_member(obj, key, cJSON_String, name, &it, err);
    if (st || !it) return st ? st : AP_ERR_INTERNAL;
    *out = it->valuestring;
    return AP_OK;
}

cJSON *ap_json_add_u64(cJSON *obj, const char *key, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_AddRawToObject(obj, key, buf);
}

char *ap_json_render(const cJSON *obj, size_t *len)
{
    char *s = cJSON_Print(obj);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *r = realloc(s, n + 2);
    if (!r) {
        free(s);
        return NULL;
    }
    r[n] = '\n';
    r[n + 1] = '\0';
    if (len) *len = n + 1;
    return r;
}

bool ap_json_plain_id_row(const char *row, uint64_t len, uint64_t *id)
{
    static const char head[] = "{\"id\":";
    const size_t hl = sizeof head - 1;
    if (len < hl + 2 || len > hl + 17 || memcmp(row, head, hl) != 0 || row[len - 1] != '}')
        return false;
    const char *d = row + hl;
    size_t nd = len - hl - 1;
    if (d[0] == '0' && nd > 1) return false;
    uint64_t v = 0;
    for (size_t k = 0; k < nd; k++) {
        if (d[k] < '0' || d[k] > '9') return false;
        v = v * 10 + (uint64_t)(d[k] - '0');
    }
    if (v > AP_JSON_MAX_SAFE_INT) return false;
    *id = v;
    return true;
}
