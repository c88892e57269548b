/* annpack — streaming RFC 4180 CSV reader.
 *
 * Accepts quoted fields, doubled quotes inside quotes, newlines inside quoted fields,
 * LF or CRLF record ends, an optional UTF-8 byte-order mark, and a last record without a
 * line end. Reads the file through a fixed buffer: memory is bounded by the largest
 * record, which is capped by ANNPACK_META_MAX_LINE. Errors name the file and the line. */
#ifndef ANNPACK_CSV_H
#define ANNPACK_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ap_csv ap_csv;

/* One record. Field i is fields[i] with length lens[i]; each field is also
 * NUL-terminated (it may contain NUL bytes only if the input did). Valid until the next
 * call to ap_csv_next or ap_csv_close. */
typedef struct ap_csv_record {
    size_t nfields;
    const char *const *fields;
    const size_t *lens;
    uint64_t line; /* 1-based physical line on which the record starts */
} ap_csv_record;

/* Opens a file for reading. Errors: AP_ERR_NOTFOUND / AP_ERR_IO naming the path. */
AP_API ap_status ap_csv_open(const char *path, ap_csv **out, ap_err *err);

/* Reads from memory (the buffer must outlive the reader); name is used in messages. */
AP_API ap_status ap_csv_open_mem(const void *data, size_t len, const char *name, ap_csv **out,
                                 ap_err *err);

/* Reads the next record into *rec. Returns AP_OK and sets *eof = 1 (rec untouched) at
 * the end of input. Blank lines (a record with one empty field from an empty line) are
 * skipped. Errors: AP_ERR_FORMAT "FILE:LINE: unterminated quoted field" (LINE = where
 * the field started), "FILE:LINE: unexpected character after closing quote";
 * AP_ERR_LIMIT when a record exceeds ANNPACK_META_MAX_LINE bytes. */
AP_API ap_status ap_csv_next(ap_csv *csv, ap_csv_record *rec, int *eof, ap_err *err);

/* Bytes consumed so far (for progress reporting). */
AP_API uint64_t ap_csv_bytes_read(const ap_csv *csv);

/* Closes the reader; NULL is a no-op. */
AP_API void ap_csv_close(ap_csv *csv);

#ifdef __cplusplus
}
#endif
#endif
