/* Id lists: a delta's tombstones.jsonl and the --delete-ids files of the CLI share one
 * format (docs/PACKSET.md): one id per line, as an integer or as {"id": N}. The reader
 * (ap_parse_id_list, annpack/packset.h) and the one writer of tombstones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/packset.h"
#include "fsops.h"
#include "json.h"
#include "tombstones.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

ap_status ap_parse_id_list(const char *text, size_t len, const char *name, uint64_t **ids,
                           size_t *n, ap_err *err)
{
    *ids = NULL;
    *n = 0;
    size_t cap = 0, line = 0;
    const char *p = text, *end = text + len;
    ap_status st = AP_OK;
    while (p < end && !st) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        const char *a = p, *b = le;
        while (a < b && (*a == ' ' || *a == '\t' || *a == '\r'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
            b--;
        p = nl ? nl + 1 : end;
        if (a == b) continue;
        uint64_t id = 0;
        char what[300];
        snprintf(what, sizeof what, "%.250s:%zu", name, line);
        if (*a == '{') {
            cJSON *j = NULL;
            if ((st = ap_json_parse_strict(a, (size_t)(b - a), what, &j, err))) break;
            const cJSON *it = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
            char w2[320];
            snprintf(w2, sizeof w2, "%s: \"id\"", what);
            st = it ? ap_json_item_u64(it, AP_JSON_MAX_SAFE_INT, w2, &id, err)
                    : ap_err_set(err, AP_ERR_FORMAT, "%s: expected {\"id\": N}", what);
            cJSON_Delete(j);
            if (st) break;
        } else {
            int ok = b - a <= 16;
            for (const char *c = a; ok && c < b; c++) {
                ok = *c >= '0' && *c <= '9';
                id = id * 10 + (uint64_t)(*c - '0');
            }
            if (!ok || id > AP_JSON_MAX_SAFE_INT) {
                /* Only this line, escaped and cut: the message stays one line. */
                char ex[200];
                ap_json_excerpt(ex, sizeof ex, a, (size_t)(b - a), 40);
                st = ap_err_set(err, AP_ERR_FORMAT,
                                "%s: \"%s\" is not an id (an integer in [0, 2^53) or {\"id\": N})",
                                what, ex);
                break;
            }
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            uint64_t *g = realloc(*ids, cap * sizeof *g);
            if (!g) {
                st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
                break;
            }
            *ids = g;
        }
        (*ids)[(*n)++] = id;
    }
    if (st) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return st;
}

ap_status ap_delta_tombstones_parse(const char *text, size_t len, const char *name, uint64_t **ids,
                                    size_t *n, ap_err *err)
{
    ap_status st = ap_parse_id_list(text, len, name, ids, n, err);
    if (st) return st;
    if (*n) qsort(*ids, *n, sizeof **ids, cmp_u64);
    for (size_t i = 1; i < *n; i++)
        if ((*ids)[i] == (*ids)[i - 1])
            return ap_err_set(err, AP_ERR_FORMAT, "%s: id %llu listed twice", name,
                              (unsigned long long)(*ids)[i]);
    return AP_OK;
}

ap_status ap_tombstones_write(const char *dir, const uint64_t *ids, size_t n, ap_err *err)
{
    char *buf = malloc(n * 32 + 1), *path = ap_path_join(dir, AP_TOMBSTONES);
    ap_status st = (!buf || !path) ? ap_err_set(err, AP_ERR_NOMEM, "out of memory") : AP_OK;
    size_t at = 0;
    for (size_t i = 0; i < n && !st; i++)
        at += (size_t)snprintf(buf + at, 32, "{\"id\":%llu}\n", (unsigned long long)ids[i]);
    if (!st) st = ap_write_file(path, buf, at, err);
    free(buf);
    free(path);
    return st;
}
