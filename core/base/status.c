/* Error values and the library version: see include/annpack/status.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/status.h"

const char *ap_version(void)
{
    return ANNPACK_VERSION;
}

AP_PRINTF(3, 0) static void vset(ap_err *err, ap_status status, const char *fmt, va_list ap)
{
    err->status = status;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

ap_status ap_err_set(ap_err *err, ap_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vset(err, status, fmt, ap);
        va_end(ap);
    }
    return status;
}

ap_status ap_err_errno(ap_err *err, ap_status status, int errnum, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vset(err, status, fmt, ap);
        va_end(ap);
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(errnum));
    }
    return status;
}

void ap_err_clear(ap_err *err)
{
    if (err) {
        err->status = AP_OK;
        err->msg[0] = '\0';
    }
}

const char *ap_status_name(ap_status status)
{
    switch (status) {
    case AP_OK:
        return "ok";
    case AP_ERR_ARG:
        return "argument";
    case AP_ERR_IO:
        return "io";
    case AP_ERR_NOMEM:
        return "nomem";
    case AP_ERR_FORMAT:
        return "format";
    case AP_ERR_LIMIT:
        return "limit";
    case AP_ERR_NOTFOUND:
        return "notfound";
    case AP_ERR_EXISTS:
        return "exists";
    case AP_ERR_VERIFY:
        return "verify";
    case AP_ERR_UNSUPPORTED:
        return "unsupported";
    case AP_ERR_INTERNAL:
        return "internal";
    }
    return "unknown";
}

void ap_free(void *p)
{
    free(p);
}
