/* Verification pieces shared by pack and packset verification (internal to core). */
#ifndef ANNPACK_CORE_VERIFY_H
#define ANNPACK_CORE_VERIFY_H

#include <cjson/cJSON.h>

#include "annpack/pack.h"
#include "manifest.h"

/* A verify report under construction: {"path","kind","deep","checks":[...],"ok","error"}. */
typedef struct ap_report {
    cJSON *root, *checks;
} ap_report;

/* Starts a report (NULL root on allocation failure). */
ap_report ap_report_new(const char *dir, const char *kind, bool deep);
/* Records a passed check (file may be NULL). */
void ap_report_ok(ap_report *r, const char *check, const char *file);
/* Records the failure of a check and the report's "error"; returns st. */
ap_status ap_report_fail(ap_report *r, const char *check, const char *file, ap_status st,
                         const ap_err *err);
/* Adds "ok", renders into *out (when out is non-NULL) and frees the report. */
void ap_report_finish(ap_report *r, ap_status st, char **out);

/* Checks the signature (when keys are given) and "expires" of a root manifest; records a
 * "signature" block (and "expires") in report. */
ap_status ap_verify_trust(const char *dir, const char *raw, size_t len, const cJSON *root,
                          const ap_verify_opts *o, cJSON *report, ap_err *err);

/* Finds a file in dir that could change a pack's meaning but is not listed in m. */
ap_status ap_pack_check_unlisted(const char *dir, const ap_pack_manifest *m, char *bad,
                                 size_t badlen);

/* Verifies a packset directory (ap_verify_dir dispatches here for schema 3). */
ap_status ap_packset_verify(const char *dir, const ap_verify_opts *o, char **report, ap_err *err);

#endif
