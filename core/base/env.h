/* The environment (internal): the one place libannpack reads its variables (env.c is the
 * only file of core/ that reads the process environment).
 *
 * Each variable is parsed once, on first use, into one snapshot, ap_env; the code that
 * needs a setting takes it from there (caps.c, log.c, the build's thread count, device and
 * timestamp, the test hooks of faults.c). A bad ANNPACK_* value leaves that setting at its
 * default here, and ap_env_check (annpack/caps.h) reports it, so programs refuse to start.
 * SOURCE_DATE_EPOCH and ANNPACK_DEVICE are also kept as given, for the build to refuse
 * with its own message (a library caller may not have run ap_env_check). */
#ifndef ANNPACK_CORE_ENV_H
#define ANNPACK_CORE_ENV_H

#include <stdbool.h>
#include <stdint.h>

#include "annpack/caps.h"
#include "annpack/log.h"

/* Worker threads: ANNPACK_THREADS values above this use this. */
#define AP_ENV_MAX_THREADS 64u

/* Room for a value kept as given (its text appears in an error message, which is at most
 * AP_ERR_MSG_MAX bytes anyway); longer values are cut. */
#define AP_ENV_VALUE_MAX AP_ERR_MSG_MAX

typedef struct ap_env {
    ap_caps caps;           /* ANNPACK_MAX_*, ANNPACK_ALLOW_LARGE_META */
    ap_log_level log_level; /* ANNPACK_LOG_LEVEL (default WARN) */
    int log_json;           /* ANNPACK_LOG_JSON=1 */
    /* ANNPACK_THREADS, else ANNPACK_FAISS_THREADS: 1 (default) to AP_ENV_MAX_THREADS. */
    uint32_t threads;
    /* ANNPACK_DEVICE as given; "" when unset or empty. */
    char device[AP_ENV_VALUE_MAX];
    /* SOURCE_DATE_EPOCH: source_date_epoch_set when set and not empty; then its text,
     * and whether it is a Unix time (decimal, not negative; source_date_epoch). */
    bool source_date_epoch_set, source_date_epoch_ok;
    int64_t source_date_epoch;
    char source_date_epoch_text[AP_ENV_VALUE_MAX];
    /* ANNPACK_TEST_CRASH_AT, read only by a build with -Dtest_hooks=true (faults.h);
     * "" when unset, too long, or in other builds. */
    char crash_at[64];
    /* ANNPACK_EMBED_URL and ANNPACK_EMBED_API_KEY (the HTTP embedders' endpoint and Bearer
     * token, docs/EMBEDDERS.md); "" when unset or too long. The key is never logged. */
    char embed_url[2048];
    char embed_api_key[1024];
    /* ANNPACK_OFFLINE=1: the HTTP embedders refuse to run. */
    bool offline;
} ap_env;

/* The parsed environment. Thread-safe; parses on first call. */
const ap_env *ap_env_get(void);

/* Parses the environment again (tests, and ap_caps_reload). Not thread-safe against
 * concurrent readers. Returns the error of the first bad variable, as ap_env_check. */
ap_status ap_env_reload(ap_err *err);

#endif
