/* Relative paths named by manifests (internal to core). */
#ifndef ANNPACK_CORE_PATH_H
#define ANNPACK_CORE_PATH_H

#include "annpack/status.h"

/* Checks that a manifest path is a safe relative path: not empty, not absolute, no "..",
 * "." or empty components, no backslash or control bytes. name/field go in messages. */
ap_status ap_path_check(const char *path, const char *name, const char *field, ap_err *err);

#endif
