/* Security caps: see include/annpack/caps.h. */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/caps.h"

static ap_caps g_caps;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Parses a positive decimal integer no larger than max; 0 on anything else. */
static uint64_t parse_pos(const char *s, uint64_t max)
{
    if (!s || !*s) return 0;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v == 0 || v > max) return 0;
    return v;
}

static ap_status load(ap_caps *c, ap_err *err)
{
    static const struct {
        const char *name;
        size_t off;
        int is32;
        uint64_t def;
    } vars[] = {
        {"ANNPACK_MAX_DIM", offsetof(ap_caps, max_dim), 1, AP_DEFAULT_MAX_DIM},
        {"ANNPACK_MAX_LISTS", offsetof(ap_caps, max_lists), 1, AP_DEFAULT_MAX_LISTS},
        {"ANNPACK_MAX_LIST_BYTES", offsetof(ap_caps, max_list_bytes), 0, AP_DEFAULT_MAX_LIST_BYTES},
        {"ANNPACK_MAX_META_BYTES", offsetof(ap_caps, max_meta_bytes), 0, AP_DEFAULT_MAX_META_BYTES},
        {"ANNPACK_META_MAX_LINE", offsetof(ap_caps, meta_max_line), 0, AP_DEFAULT_META_MAX_LINE},
    };
    ap_status st = AP_OK;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *s = getenv(vars[i].name);
        uint64_t v = vars[i].def;
        if (s) {
            uint64_t p = parse_pos(s, vars[i].is32 ? UINT32_MAX : UINT64_MAX);
            if (p)
                v = p;
            else if (st == AP_OK)
                st = ap_err_set(err, AP_ERR_ARG, "%s=%s is not a positive integer", vars[i].name,
                                s);
        }
        char *field = (char *)c + vars[i].off;
        if (vars[i].is32) {
            uint32_t v32 = (uint32_t)v;
            memcpy(field, &v32, sizeof v32);
        } else {
            memcpy(field, &v, sizeof v);
        }
    }
    const char *large = getenv("ANNPACK_ALLOW_LARGE_META");
    c->allow_large_meta = large && strcmp(large, "1") == 0;
    if (c->allow_large_meta) {
        c->max_meta_bytes = UINT64_MAX;
        c->meta_max_line = UINT64_MAX;
    }
    return st;
}

static void once(void)
{
    load(&g_caps, NULL);
}

const ap_caps *ap_caps_get(void)
{
    pthread_once(&g_once, once);
    return &g_caps;
}

ap_status ap_caps_reload(ap_err *err)
{
    pthread_once(&g_once, once);
    return load(&g_caps, err);
}
