/* UTF-8 validation (internal): JSON text must be valid UTF-8 for every reader to agree. */
#ifndef ANNPACK_CORE_UTF8_H
#define ANNPACK_CORE_UTF8_H

#include <stddef.h>

/* Returns the byte offset of the first invalid sequence, or len when s is valid UTF-8
 * (no overlongs, no surrogates, nothing above U+10FFFF). */
size_t ap_utf8_invalid_at(const char *s, size_t len);

/* The length (1 to 4) of the valid UTF-8 sequence at s, which has avail >= 1 bytes, or 0
 * when the bytes there are not one (same rules as ap_utf8_invalid_at). */
size_t ap_utf8_char_len(const char *s, size_t avail);

#endif
