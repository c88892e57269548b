/* Refused names (refusal.c): a name that query/ or vquery/ refuses does not exist; the
 * same name under refusal/ is a file saying why (docs/MOUNT.md, "Query files"). */
#ifndef ANNPACK_FS_REFUSAL_H
#define ANNPACK_FS_REFUSAL_H

#include <stddef.h>

#include "blob.h"

/* The refusal file: {"error":"<why>"} and a newline, why with bytes outside printable
 * ASCII as '?'. NULL when out of memory. */
fs_blob *fs_refusal_blob(const char *why);

/* Counts a refused name and logs it at WARN — at most one line a second, the next line
 * saying how many were not logged (anonymous clients must not be able to flood the log). */
void fs_note_refusal(const char *component, size_t name_len, const char *msg);

/* Replaces every byte outside printable ASCII with '?' (messages that echo a name). */
void fs_printable(char *s);

#endif
