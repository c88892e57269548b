/* annpack — streaming RFC 4180 CSV reader.
 *
 * Accepts quoted fields, doubled quotes inside quotes, newlines inside quoted fields,
 * LF or CRLF record ends, an optional UTF-8 byte-order mark, and a last record without a
 * line end. Reads the file through a fixed buffer: memory is bounded by the largest
 * record, which is capped by ANNPACK_META_MAX_LINE. Errors name the file and the line.
 * (These rules are also what ap_pack_build accepts as its input CSV.) */
#ifndef ANNPACK_CSV_H
#define ANNPACK_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* The reader is experimental (annpack/experimental.h, AP_EXPERIMENTAL): the library
 * reads CSV inside ap_pack_build and friends; no program outside the tests calls it. */

#ifdef AP_EXPERIMENTAL
#define ANNPACK_CSV_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
