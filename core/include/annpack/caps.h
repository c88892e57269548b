/* annpack — security caps on untrusted input.
 *
 * Every reader of untrusted bytes checks these. Defaults come from DESIGN.md; each can be
 * changed through the environment variable of the same name (read once, on first use, with
 * the other ANNPACK_* variables: see ap_env_check).
 * ANNPACK_ALLOW_LARGE_META=1 lifts the two metadata caps. Error messages that report a
 * cap name its variable, e.g. "dim 5000 exceeds ANNPACK_MAX_DIM (4096)". */
#ifndef ANNPACK_CAPS_H
#define ANNPACK_CAPS_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_DEFAULT_MAX_DIM 4096u
#define AP_DEFAULT_MAX_LISTS 1000000u
#define AP_DEFAULT_MAX_LIST_BYTES (128ull << 20)
#define AP_DEFAULT_MAX_META_BYTES (1ull << 30)
#define AP_DEFAULT_META_MAX_LINE (1ull << 20)
/* Manifests are small; anything bigger is hostile. Not environment-configurable. */
#define AP_MAX_MANIFEST_BYTES (16ull << 20)

typedef struct ap_caps {
    uint32_t max_dim;        /* ANNPACK_MAX_DIM */
    uint32_t max_lists;      /* ANNPACK_MAX_LISTS */
    uint64_t max_list_bytes; /* ANNPACK_MAX_LIST_BYTES */
    uint64_t max_meta_bytes; /* ANNPACK_MAX_META_BYTES (UINT64_MAX when large meta allowed) */
    uint64_t meta_max_line;  /* ANNPACK_META_MAX_LINE (UINT64_MAX when large meta allowed) */
    bool allow_large_meta;   /* ANNPACK_ALLOW_LARGE_META=1 */
} ap_caps;

/* The caps in force: static storage, never NULL. Thread-safe; reads the environment on
 * first call. An unparsable environment value leaves that cap at its default
 * (ap_env_check reports it). */
AP_API const ap_caps *ap_caps_get(void);

/* Checks every environment variable libannpack reads: the caps above,
 * ANNPACK_ALLOW_LARGE_META (0|1), ANNPACK_LOG_LEVEL (ERROR|WARN|INFO|DEBUG, any case),
 * ANNPACK_LOG_JSON (0|1), ANNPACK_THREADS and ANNPACK_FAISS_THREADS (positive integers),
 * ANNPACK_DEVICE (cpu). An empty value counts as unset. Returns AP_ERR_ARG with one line
 * naming the first bad variable, its value and the values it accepts, e.g.
 * "ANNPACK_THREADS=abc is not valid: expected a positive integer (...)". Programs call it
 * first and exit 2 (a usage error) when it fails; the library itself falls back to the
 * default for a bad value. */
AP_API ap_status ap_env_check(ap_err *err);

/* 1 when this library was built with its test hooks (meson -Dtest_hooks=true: the crash
 * points that ANNPACK_TEST_CRASH_AT triggers, docs/ROBUSTNESS.md), else 0 (the default;
 * ANNPACK_TEST_CRASH_AT is then ignored). */
AP_API int ap_test_hooks(void);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_CAPS_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
