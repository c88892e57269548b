/* The environment (internal): the one place libannpack reads its ANNPACK_* variables.
 *
 * Each variable is parsed once, on first use, into ap_env; caps.c, log.c and kmeans.c take
 * their settings from here. A bad value leaves that setting at its default here, and
 * ap_env_check (annpack/caps.h) reports it, so programs refuse to start. */
#ifndef ANNPACK_CORE_ENV_H
#define ANNPACK_CORE_ENV_H

#include <stdint.h>

#include "annpack/caps.h"
#include "annpack/log.h"

typedef struct ap_env {
    ap_caps caps;           /* ANNPACK_MAX_*, ANNPACK_ALLOW_LARGE_META */
    ap_log_level log_level; /* ANNPACK_LOG_LEVEL (default WARN) */
    int log_json;           /* ANNPACK_LOG_JSON=1 */
    uint32_t threads;       /* ANNPACK_THREADS, else ANNPACK_FAISS_THREADS (default 1) */
} ap_env;

/* The parsed environment. Thread-safe; parses on first call. */
const ap_env *ap_env_get(void);

/* Parses the environment again (tests, and ap_caps_reload). Not thread-safe against
 * concurrent readers. Returns the error of the first bad variable, as ap_env_check. */
ap_status ap_env_reload(ap_err *err);

#endif
