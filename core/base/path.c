/* Relative paths from manifests: see path.h. */
#include <string.h>

#include "path.h"

ap_status ap_path_check(const char *path, const char *name, const char *field, ap_err *err)
{
    size_t n = strlen(path);
    if (n == 0) return ap_err_set(err, AP_ERR_FORMAT, "%s: %s is an empty path", name, field);
    if (n > 1024) return ap_err_set(err, AP_ERR_FORMAT, "%s: %s path too long", name, field);
    if (path[0] == '/')
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %s \"%s\" is an absolute path", name, field,
                          path);
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '\\' || *p == 0x7f)
            return ap_err_set(err, AP_ERR_FORMAT, "%s: %s \"%s\" contains a forbidden character",
                              name, field, path);
    const char *c = path;
    while (*c) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (len == 0 || (len == 1 && c[0] == '.'))
            return ap_err_set(err, AP_ERR_FORMAT, "%s: %s \"%s\" has an empty or '.' component",
                              name, field, path);
        if (len == 2 && c[0] == '.' && c[1] == '.')
            return ap_err_set(err, AP_ERR_FORMAT, "%s: %s \"%s\" contains '..' (path escape)", name,
                              field, path);
        if (!e) break;
        c = e + 1;
        if (!*c)
            return ap_err_set(err, AP_ERR_FORMAT, "%s: %s \"%s\" ends with '/'", name, field, path);
    }
    return AP_OK;
}
