/* Verify reports shared by pack and packset verification: see verify.h. */
#include "json.h"
#include "verify.h"

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
    add_check(r, check, file, 1);
}

ap_status ap_report_fail(ap_report *r, const char *check, const char *file, ap_status st,
                         const ap_err *err)
{
    cJSON_AddStringToObject(add_check(r, check, file, 0), "reason", err->msg);
    cJSON *e = cJSON_AddObjectToObject(r->root, "error");
    if (file)
        cJSON_AddStringToObject(e, "file", file);
    else
        cJSON_AddNullToObject(e, "file");
    cJSON_AddStringToObject(e, "kind", ap_status_name(st));
    cJSON_AddStringToObject(e, "reason", err->msg);
    return st;
}

void ap_report_finish(ap_report *r, ap_status st, char **out)
{
    cJSON_AddBoolToObject(r->root, "ok", st == AP_OK);
    if (out) *out = ap_json_render(r->root, NULL);
    cJSON_Delete(r->root);
    r->root = NULL;
}
