/* annpack — status codes and error values.
 *
 * Every core function that can fail returns an ap_status and, when given a non-NULL
 * ap_err, fills it with the same status plus one human-readable line that names the
 * file, the field or the limit involved. Core never prints and never exits: the caller
 * decides what to do with the message. */
#ifndef ANNPACK_STATUS_H
#define ANNPACK_STATUS_H

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define AP_API __attribute__((visibility("default")))
#define AP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AP_API
#define AP_PRINTF(a, b)
#endif

typedef enum ap_status {
    /* The values are part of the ABI (Python and other bindings mirror them; tests/test_abi.py
     * checks that they agree): never renumber one, only append. */
    AP_OK = 0,
    AP_ERR_ARG = 1,         /* a caller-supplied argument or option is invalid */
    AP_ERR_IO = 2,          /* the operating system refused a read/write/open */
    AP_ERR_NOMEM = 3,       /* an allocation failed */
    AP_ERR_FORMAT = 4,      /* input bytes are malformed (CSV, JSON, ANNP, meta, PEM, ...) */
    AP_ERR_LIMIT = 5,       /* an ANNPACK_MAX_* cap was exceeded */
    AP_ERR_NOTFOUND = 6,    /* a file, column or id does not exist */
    AP_ERR_EXISTS = 7,      /* the target exists and may not be replaced */
    AP_ERR_VERIFY = 8,      /* a hash, signature or structural check failed */
    AP_ERR_UNSUPPORTED = 9, /* a valid but unsupported feature (version, device, embedder) */
    AP_ERR_INTERNAL = 10    /* a bug: an invariant did not hold */
} ap_status;

#define AP_ERR_MSG_MAX 1024

typedef struct ap_err {
    ap_status status;
    char msg[AP_ERR_MSG_MAX];
} ap_err;

/* Sets *err (if non-NULL) to status + formatted message (truncated to AP_ERR_MSG_MAX - 1
 * bytes). Returns status, so that `return ap_err_set(err, AP_ERR_FORMAT, "...")` reads
 * naturally. */
AP_API ap_status ap_err_set(ap_err *err, ap_status status, const char *fmt, ...) AP_PRINTF(3, 4);

/* Like ap_err_set, appending ": <strerror(errnum)>" to the message. Returns status. */
AP_API ap_status ap_err_errno(ap_err *err, ap_status status, int errnum, const char *fmt, ...)
    AP_PRINTF(4, 5);

/* A stable short name for a status ("format", "limit", ...), for logs and JSON reports:
 * static storage, never NULL ("unknown" for a value not listed above). */
AP_API const char *ap_status_name(ap_status status);

/* Progress callback for long operations: phase name, units done, units total (0 when
 * unknown). Called from the calling thread only. */
typedef void (*ap_progress_fn)(void *ud, const char *phase, uint64_t done, uint64_t total);

/* Library version string ("0.1.0"): static storage. */
AP_API const char *ap_version(void);

/* Frees memory the library handed to the caller: every result documented as "malloc'd"
 * or "the caller's" (JSON reports, rows, manifests, PEM text, ...). NULL is a no-op.
 * Bindings and programs that may not share the library's C allocator (Python's ctypes,
 * a program with its own malloc) must use it; plain C callers may equally call free(). */
AP_API void ap_free(void *p);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_STATUS_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
