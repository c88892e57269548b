/* Strict JSON helpers: see json.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsops.h"
#include "json.h"

static const char *type_name(int type)
{
    switch (type) {
    case cJSON_Object: return "an object";
    case cJSON_Array: return "an array";
    case cJSON_String: return "a string";
    case cJSON_Number: return "a number";
    case cJSON_True | cJSON_False: return "a boolean";
    default: return "a value";
    }
}

/* Refuses duplicate keys anywhere in the tree. Quadratic per object, which is fine: the
 * documents checked here have tens of keys per object. */
static ap_status check_tree(const cJSON *item, const char *name, int depth, ap_err *err)
{
    if (depth > 64) return ap_err_set(err, AP_ERR_FORMAT, "%s: JSON nested too deeply", name);
    for (const cJSON *c = item->child; c; c = c->next) {
        if (cJSON_IsObject(item)) {
            for (const cJSON *d = item->child; d != c; d = d->next)
                if (strcmp(d->string, c->string) == 0)
                    return ap_err_set(err, AP_ERR_FORMAT, "%s: duplicate key \"%s\"", name,
                                      c->string);
        }
        ap_status st = check_tree(c, name, depth + 1, err);
        if (st) return st;
    }
    return AP_OK;
}

ap_status ap_json_parse_strict(const char *buf, size_t len, const char *name, cJSON **out,
                               ap_err *err)
{
    *out = NULL;
    if (memchr(buf, '\0', len))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: NUL byte in JSON", name);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = (at && at >= buf && at <= buf + len) ? (long)(at - buf) : -1;
        return ap_err_set(err, AP_ERR_FORMAT, "%s: invalid JSON near byte %ld", name, off);
    }
    for (const char *p = end; p < buf + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(root);
            return ap_err_set(err, AP_ERR_FORMAT, "%s: trailing bytes after JSON at byte %ld",
                              name, (long)(p - buf));
        }
    }
    ap_status st = check_tree(root, name, 0, err);
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
        st = ap_err_set(err, AP_ERR_LIMIT, "%s: exceeds the manifest cap of %zu bytes",
                        path, max_bytes);
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
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s is not an exact integer in [0, 2^53): %.17g", what, d);
    if ((uint64_t)d > max)
        return ap_err_set(err, AP_ERR_FORMAT, "%s = %llu exceeds %llu", what,
                          (unsigned long long)d, (unsigned long long)max);
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
