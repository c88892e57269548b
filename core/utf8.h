/* UTF-8 validation (internal): JSON text must be valid UTF-8 for every reader to agree. */
#ifndef ANNPACK_CORE_UTF8_H
#define ANNPACK_CORE_UTF8_H

#include <stddef.h>

/* Returns the byte offset of the first invalid sequence, or len when s is valid UTF-8
 * (no overlongs, no surrogates, nothing above U+10FFFF). */
size_t ap_utf8_invalid_at(const char *s, size_t len);

#endif
