/* What a build may replace (internal to core; output.c): the checks of an existing output
 * directory before a pack or a packset is written over it. */
#ifndef ANNPACK_CORE_OUTPUT_H
#define ANNPACK_CORE_OUTPUT_H

#include <stdbool.h>

#include "annpack/status.h"

/* The start every output check shares: a missing out is fine (*exists false); anything but
 * a directory is refused (AP_ERR_EXISTS); an existing directory sets *exists. *settled
 * says that nothing more needs checking: out is missing, empty, or force was given. */
ap_status ap_output_dir_check(const char *out, bool force, bool *exists, bool *settled,
                              ap_err *err);

/* Checks an existing output directory before a build replaces it. Replaceable (and
 * *replace set): an empty directory, an earlier unsigned pack build output holding only
 * the files a build writes, or anything when force. Refused (AP_ERR_EXISTS, naming it and
 * why): not a directory, a layer of a packset (its parent or grandparent is a packset), a
 * signed directory, a delta, a packset, anything else. A missing output is fine. */
ap_status ap_check_build_output(const char *out, bool force, bool *replace, ap_err *err);

/* AP_OK when dir holds only regular files named as a build names them (else AP_ERR_EXISTS
 * naming the first other entry). */
ap_status ap_only_build_files(const char *dir, ap_err *err);

/* Whether dir's parent or grandparent is a packset root (schema 3); *ps receives that
 * path (malloc'd). */
int ap_enclosing_packset(const char *dir, char **ps);

#endif
