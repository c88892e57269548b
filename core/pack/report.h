/* The verify report (internal to core; report.c): every check recorded as it is made. */
#ifndef ANNPACK_CORE_REPORT_H
#define ANNPACK_CORE_REPORT_H

#include <cjson/cJSON.h>

#include "annpack/pack.h"
#include "manifest.h"

/* A verify report under construction: {"path","kind","deep","checks":[...],"ok","error"}. */
typedef struct ap_report {
    cJSON *root, *checks;
} ap_report;

/* Starts a report (NULL root on allocation failure). The functions below accept a NULL
 * report (nothing recorded) and a file prefix (a packset layer's path, or NULL). */
ap_report ap_report_new(const char *dir, const char *kind, bool deep);
/* Records a passed check (file may be NULL). */
void ap_report_ok(ap_report *r, const char *check, const char *file);
void ap_report_okp(ap_report *r, const char *check, const char *prefix, const char *file);
/* Records the failure of a check and the report's "error"; returns st. */
ap_status ap_report_fail(ap_report *r, const char *check, const char *file, ap_status st,
                         const ap_err *err);
ap_status ap_report_failp(ap_report *r, const char *check, const char *prefix, const char *file,
                          ap_status st, const ap_err *err);
/* Adds "ok", renders into *out (when out is non-NULL) and frees the report. */
void ap_report_finish(ap_report *r, ap_status st, char **out);

#endif
