/* annpack — the one logging module.
 *
 * Core code reports progress and non-fatal conditions here and nowhere else. The default
 * sink writes one line per message to stderr: "annpack: LEVEL: component: message", or,
 * with ANNPACK_LOG_JSON=1, one JSON object per line {"ts","level","component","msg"}.
 * ANNPACK_LOG_LEVEL=ERROR|WARN|INFO|DEBUG selects the threshold (default WARN). Both are
 * read once (env.c); ap_env_check refuses other values. */
#ifndef ANNPACK_LOG_H
#define ANNPACK_LOG_H

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ap_log_level {
    AP_LOG_ERROR = 0,
    AP_LOG_WARN = 1,
    AP_LOG_INFO = 2,
    AP_LOG_DEBUG = 3
} ap_log_level;

/* A sink receives the level, the component and the formatted message (no newline); the
 * strings are borrowed for the call only. Calls are serialised (never two at once), from
 * whichever thread logs. */
typedef void (*ap_log_sink)(ap_log_level level, const char *component, const char *msg,
                            void *userdata);

/* Logs one message if level is at or below the threshold. Thread-safe. The message is
 * truncated to 2047 bytes. */
AP_API void ap_log(ap_log_level level, const char *component, const char *fmt, ...) AP_PRINTF(3, 4);

/* Replaces the sink (NULL restores the default stderr sink). userdata is passed to every
 * call and stays the caller's; it must outlive its use (until the next ap_log_set_sink). */
AP_API void ap_log_set_sink(ap_log_sink sink, void *userdata);

/* Tags every default-sink line with a program name (default "annpack"; copied, at most 63
 * bytes). */
AP_API void ap_log_set_program(const char *name);

/* True when ANNPACK_LOG_JSON=1: then every line a program writes to stderr should be a
 * JSON object, so programs print their own messages with ap_log_emit. */
AP_API int ap_log_json(void);

/* Writes one message through the sink whatever the threshold (a program's errors and
 * summaries, which are always shown), in the same shape as ap_log's lines. */
AP_API void ap_log_emit(ap_log_level level, const char *component, const char *msg);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_LOG_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
