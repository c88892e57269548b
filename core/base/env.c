/* The environment: see env.h and ap_env_check in include/annpack/caps.h. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "env.h"
#include "json.h"

static ap_env g_env;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

typedef enum { V_U32, V_U64, V_BOOL, V_LEVEL, V_THREADS, V_DEVICE } kind;

static const struct {
    const char *name;
    kind kind;
    uint64_t def;
    const char *accepted; /* for the message */
} VARS[] = {
    {"ANNPACK_MAX_DIM", V_U32, AP_DEFAULT_MAX_DIM, "a positive integer (default 4096)"},
    {"ANNPACK_MAX_LISTS", V_U32, AP_DEFAULT_MAX_LISTS, "a positive integer (default 1000000)"},
    {"ANNPACK_MAX_LIST_BYTES", V_U64, AP_DEFAULT_MAX_LIST_BYTES,
     "a positive integer (default 134217728)"},
    {"ANNPACK_MAX_META_BYTES", V_U64, AP_DEFAULT_MAX_META_BYTES,
     "a positive integer (default 1073741824)"},
    {"ANNPACK_META_MAX_LINE", V_U64, AP_DEFAULT_META_MAX_LINE,
     "a positive integer (default 1048576)"},
    {"ANNPACK_ALLOW_LARGE_META", V_BOOL, 0, "0 or 1 (default 0)"},
    {"ANNPACK_LOG_LEVEL", V_LEVEL, AP_LOG_WARN,
     "ERROR, WARN, INFO or DEBUG (any case; default WARN)"},
    {"ANNPACK_LOG_JSON", V_BOOL, 0, "0 or 1 (default 0)"},
    {"ANNPACK_THREADS", V_THREADS, 0, "a positive integer (values above 64 use 64; default 1)"},
    {"ANNPACK_FAISS_THREADS", V_THREADS, 0,
     "a positive integer (an alias of ANNPACK_THREADS; values above 64 use 64)"},
    {"ANNPACK_DEVICE", V_DEVICE, 0, "cpu (the only device this build has)"},
};
#define NVARS (sizeof VARS / sizeof VARS[0])

/* A positive decimal integer no larger than max: digits only, no sign or spaces. */
static int parse_pos(const char *s, uint64_t max, uint64_t *out)
{
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v == 0 || v > max) return -1;
    *out = v;
    return 0;
}

/* Parses one set, non-empty value into *v; -1 when it is not one the variable accepts. */
static int parse_value(kind k, const char *s, uint64_t *v)
{
    switch (k) {
    case V_U32:
        return parse_pos(s, UINT32_MAX, v);
    case V_U64:
        return parse_pos(s, UINT64_MAX, v);
    case V_THREADS:
        return parse_pos(s, UINT32_MAX, v);
    case V_BOOL:
        if (strcmp(s, "0") && strcmp(s, "1")) return -1;
        *v = s[0] == '1';
        return 0;
    case V_LEVEL: {
        static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
        for (uint64_t i = 0; i < 4; i++)
            if (strcasecmp(s, names[i]) == 0) {
                *v = i;
                return 0;
            }
        if (strcasecmp(s, "WARNING") == 0) {
            *v = AP_LOG_WARN;
            return 0;
        }
        return -1;
    }
    case V_DEVICE:
        *v = 0;
        return strcmp(s, "cpu") ? -1 : 0;
    }
    return -1;
}

/* Copies the value of name ("" when unset) into out (cap bytes); a value that does not
 * fit is cut (cut_to_empty: left empty) and false returned. */
static bool keep(const char *name, char *out, size_t cap, bool cut_to_empty)
{
    const char *s = getenv(name);
    size_t n = s ? strlen(s) : 0;
    bool fits = n < cap;
    if (!fits) n = cut_to_empty ? 0 : cap - 1;
    if (n) memcpy(out, s, n);
    out[n] = '\0';
    return fits;
}

/* SOURCE_DATE_EPOCH: set when not empty; a Unix time when strtoll takes all of it and it
 * is not negative (the build refuses anything else, naming the value). */
static void load_source_date_epoch(ap_env *e)
{
    bool fits = keep("SOURCE_DATE_EPOCH", e->source_date_epoch_text,
                     sizeof e->source_date_epoch_text, false);
    e->source_date_epoch_set = e->source_date_epoch_text[0] != '\0';
    e->source_date_epoch_ok = false;
    e->source_date_epoch = 0;
    if (!e->source_date_epoch_set || !fits) return; /* too long for any Unix time */
    char *end;
    errno = 0;
    long long t = strtoll(e->source_date_epoch_text, &end, 10);
    if (errno || *end || t < 0) return;
    e->source_date_epoch_ok = true;
    e->source_date_epoch = (int64_t)t;
}

static ap_status load(ap_env *e, ap_err *err)
{
    uint64_t v[NVARS];
    ap_status st = AP_OK;
    for (size_t i = 0; i < NVARS; i++) {
        v[i] = VARS[i].def;
        const char *s = getenv(VARS[i].name);
        if (!s || !*s) continue; /* unset or empty: the default */
        uint64_t p;
        if (parse_value(VARS[i].kind, s, &p) == 0) {
            v[i] = p;
        } else if (st == AP_OK) {
            char ex[160];
            ap_json_excerpt(ex, sizeof ex, s, strlen(s), 64);
            st = ap_err_set(err, AP_ERR_ARG, "%s=%s is not valid: expected %s", VARS[i].name, ex,
                            VARS[i].accepted);
        }
    }
    e->caps.max_dim = (uint32_t)v[0];
    e->caps.max_lists = (uint32_t)v[1];
    e->caps.max_list_bytes = v[2];
    e->caps.max_meta_bytes = v[3];
    e->caps.meta_max_line = v[4];
    e->caps.allow_large_meta = v[5] != 0;
    if (e->caps.allow_large_meta) {
        e->caps.max_meta_bytes = UINT64_MAX;
        e->caps.meta_max_line = UINT64_MAX;
    }
    e->log_level = (ap_log_level)v[6];
    e->log_json = v[7] != 0;
    /* ANNPACK_THREADS, else its alias; 0 means neither was set. */
    uint64_t t = v[8] ? v[8] : v[9];
    e->threads = t ? (t > AP_ENV_MAX_THREADS ? AP_ENV_MAX_THREADS : (uint32_t)t) : 1;
    assert(e->threads >= 1 && e->threads <= AP_ENV_MAX_THREADS);
    keep("ANNPACK_DEVICE", e->device, sizeof e->device, false);
    load_source_date_epoch(e);
    keep("ANNPACK_EMBED_URL", e->embed_url, sizeof e->embed_url, true);
    keep("ANNPACK_EMBED_API_KEY", e->embed_api_key, sizeof e->embed_api_key, true);
    const char *off = getenv("ANNPACK_OFFLINE");
    e->offline = off && strcmp(off, "1") == 0;
#if AP_TEST_HOOKS
    keep("ANNPACK_TEST_CRASH_AT", e->crash_at, sizeof e->crash_at, true);
#else
    e->crash_at[0] = '\0'; /* production builds do not look at it */
#endif
    return st;
}

static void once(void)
{
    load(&g_env, NULL);
}

const ap_env *ap_env_get(void)
{
    pthread_once(&g_once, once);
    return &g_env;
}

ap_status ap_env_reload(ap_err *err)
{
    pthread_once(&g_once, once);
    return load(&g_env, err);
}

ap_status ap_env_check(ap_err *err)
{
    ap_env scratch;
    return load(&scratch, err);
}

int ap_test_hooks(void)
{
    return AP_TEST_HOOKS;
}
