/* Verify reports shared by pack and packset verification: see verify.h. */
#include <stdio.h>

#include "json.h"
#include "report.h"

ap_report ap_report_new(const char *dir, const char *kind, bool deep)
{
    ap_report r = {.root = cJSON_CreateObject()};
    if (!r.root) return r;
    cJSON_AddStringToObject(r.root, "path", dir);
    cJSON_AddStringToObject(r.root, "kind", kind);
    cJSON_AddBoolToObject(r.root, "deep", deep);
    r.checks = cJSON_AddArrayToObject(r.root, "checks");
    return r;
}

static cJSON *add_check(ap_report *r, const char *check, const char *file, int ok)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "check", check);
    if (file) cJSON_AddStringToObject(c, "file", file);
    cJSON_AddBoolToObject(c, "ok", ok);
    cJSON_AddItemToArray(r->checks, c);
    return c;
}

void ap_report_ok(ap_report *r, const char *check, const char *file)
{
    if (r && r->root) add_check(r, check, file, 1);
}

/* "prefix/file" in buf, or file itself without a prefix. */
static const char *prefixed(const char *prefix, const char *file, char *buf, size_t len)
{
    if (!prefix || !file) return file;
    snprintf(buf, len, "%s/%s", prefix, file);
    return buf;
}

void ap_report_okp(ap_report *r, const char *check, const char *prefix, const char *file)
{
    char buf[2200];
    ap_report_ok(r, check, prefixed(prefix, file, buf, sizeof buf));
}

ap_status ap_report_failp(ap_report *r, const char *check, const char *prefix, const char *file,
                          ap_status st, const ap_err *err)
{
    char buf[2200];
    return ap_report_fail(r, check, prefixed(prefix, file, buf, sizeof buf), st, err);
}

ap_status ap_report_fail(ap_report *r, const char *check, const char *file, ap_status st,
                         const ap_err *err)
{
    /* Only the first failure is the report's error. */
    if (!r || !r->root || cJSON_GetObjectItemCaseSensitive(r->root, "error")) return st;
    const char *msg = err ? err->msg : ap_status_name(st);
    cJSON_AddStringToObject(add_check(r, check, file, 0), "reason", msg);
    cJSON *e = cJSON_AddObjectToObject(r->root, "error");
    if (file)
        cJSON_AddStringToObject(e, "file", file);
    else
        cJSON_AddNullToObject(e, "file");
    cJSON_AddStringToObject(e, "kind", ap_status_name(st));
    cJSON_AddStringToObject(e, "reason", msg);
    return st;
}

void ap_report_finish(ap_report *r, ap_status st, char **out)
{
    cJSON_AddBoolToObject(r->root, "ok", st == AP_OK);
    if (out) *out = ap_json_render(r->root, NULL);
    cJSON_Delete(r->root);
    r->root = NULL;
}
