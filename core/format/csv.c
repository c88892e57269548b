/* Streaming RFC 4180 CSV reader: see include/annpack/csv.h.
 *
 * A byte-at-a-time state machine over a fixed read buffer. Field bytes accumulate in one
 * growable record buffer (fields NUL-separated), so memory is bounded by the largest
 * record, which is capped by ANNPACK_META_MAX_LINE. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annpack/caps.h"
#include "annpack/csv.h"

#define READ_CHUNK (64u * 1024u)

struct ap_csv {
    char *name;
    int fd;          /* -1 for memory input */
    const char *mem; /* memory input */
    size_t mem_len, mem_pos;
    char *buf; /* file read buffer */
    size_t buf_len, buf_pos;
    int eof_in;
    uint64_t consumed;
    uint64_t line; /* current physical line (1-based) */
    int at_start;  /* BOM check pending */
    /* the record being assembled */
    char *rec;
    size_t rec_len, rec_cap;
    size_t *starts; /* field start offsets in rec */
    size_t nfields, fields_cap;
    const char **fptrs;
    size_t *flens;
};

static ap_status open_common(ap_csv *c, const char *name, ap_err *err)
{
    c->name = strdup(name);
    c->line = 1;
    c->at_start = 1;
    if (!c->name) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    return AP_OK;
}

ap_status ap_csv_open(const char *path, ap_csv **out, ap_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ap_err_errno(err, errno == ENOENT ? AP_ERR_NOTFOUND : AP_ERR_IO, errno, "%s", path);
    ap_csv *c = calloc(1, sizeof *c);
    if (!c || !(c->buf = malloc(READ_CHUNK))) {
        free(c);
        close(fd);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    c->fd = fd;
    ap_status st = open_common(c, path, err);
    if (st) {
        ap_csv_close(c);
        return st;
    }
    *out = c;
    return AP_OK;
}

ap_status ap_csv_open_mem(const void *data, size_t len, const char *name, ap_csv **out, ap_err *err)
{
    *out = NULL;
    ap_csv *c = calloc(1, sizeof *c);
    if (!c) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    c->fd = -1;
    c->mem = data;
    c->mem_len = len;
    ap_status st = open_common(c, name, err);
    if (st) {
        ap_csv_close(c);
        return st;
    }
    *out = c;
    return AP_OK;
}

void ap_csv_close(ap_csv *c)
{
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    free(c->name);
    free(c->buf);
    free(c->rec);
    free(c->starts);
    free(c->fptrs);
    free(c->flens);
    free(c);
}

uint64_t ap_csv_bytes_read(const ap_csv *c)
{
    return c->consumed;
}

/* Next input byte, or -1 at end of input; -2 on a read error (err set). */
static int next_byte(ap_csv *c, ap_err *err)
{
    if (c->fd < 0) {
        if (c->mem_pos >= c->mem_len) return -1;
        c->consumed++;
        return (unsigned char)c->mem[c->mem_pos++];
    }
    if (c->buf_pos == c->buf_len) {
        if (c->eof_in) return -1;
        ssize_t r;
        do
            r = read(c->fd, c->buf, READ_CHUNK);
        while (r < 0 && errno == EINTR);
        if (r < 0) {
            ap_err_errno(err, AP_ERR_IO, errno, "%s: read", c->name);
            return -2;
        }
        if (r == 0) {
            c->eof_in = 1;
            return -1;
        }
        c->buf_len = (size_t)r;
        c->buf_pos = 0;
    }
    c->consumed++;
    return (unsigned char)c->buf[c->buf_pos++];
}

/* Looks at the next byte without consuming it (only used after '\r' and '"'). */
static int peek_byte(ap_csv *c, ap_err *err)
{
    int b = next_byte(c, err);
    if (b >= 0) {
        c->consumed--;
        if (c->fd < 0)
            c->mem_pos--;
        else
            c->buf_pos--;
    }
    return b;
}

/* A UTF-8 byte-order mark (EF BB BF) is skipped, only at the very start of the input. */
static ap_status skip_bom(ap_csv *c, ap_err *err)
{
    c->at_start = 0;
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    for (int i = 0; i < 3; i++) {
        int b = peek_byte(c, err);
        if (b == -2) return err ? err->status : AP_ERR_IO;
        if (b != bom[i]) {
            /* Not a BOM: give back what was taken. */
            if (i > 0) {
                if (c->fd < 0)
                    c->mem_pos -= (size_t)i;
                else
                    c->buf_pos -= (size_t)i; /* the first chunk holds all three bytes */
                c->consumed -= (uint64_t)i;
            }
            return AP_OK;
        }
        next_byte(c, err);
    }
    return AP_OK;
}

static ap_status push(ap_csv *c, char ch, uint64_t rec_line, ap_err *err)
{
    /* rec holds the field bytes plus one NUL per finished field. */
    uint64_t cap_line = ap_caps_get()->meta_max_line;
    if (c->rec_len + 1 > cap_line + c->nfields)
        return ap_err_set(err, AP_ERR_LIMIT,
                          "%s:%llu: record longer than ANNPACK_META_MAX_LINE (%llu bytes)", c->name,
                          (unsigned long long)rec_line, (unsigned long long)cap_line);
    if (c->rec_len + 1 >= c->rec_cap) {
        size_t ncap = c->rec_cap ? c->rec_cap * 2 : 4096;
        char *n = realloc(c->rec, ncap);
        if (!n) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        c->rec = n;
        c->rec_cap = ncap;
    }
    c->rec[c->rec_len++] = ch;
    return AP_OK;
}

static ap_status start_field(ap_csv *c, ap_err *err)
{
    if (c->nfields == c->fields_cap) {
        size_t ncap = c->fields_cap ? c->fields_cap * 2 : 16;
        size_t *s = realloc(c->starts, ncap * sizeof *s);
        if (!s) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        c->starts = s;
        c->fields_cap = ncap;
    }
    c->starts[c->nfields++] = c->rec_len;
    return AP_OK;
}

ap_status ap_csv_next(ap_csv *c, ap_csv_record *rec, int *eof, ap_err *err)
{
    *eof = 0;
    uint64_t rec_line;
    for (;;) {
        c->rec_len = 0;
        c->nfields = 0;
        rec_line = c->line;
        uint64_t quote_line = 0;
        int quoted_any = 0;
        if (c->at_start) {
            ap_status bst = skip_bom(c, err);
            if (bst) return bst;
        }
        int b = next_byte(c, err);
        if (b == -2) return err ? err->status : AP_ERR_IO;
        if (b == -1) {
            *eof = 1;
            return AP_OK;
        }
        ap_status st = start_field(c, err);
        if (st) return st;
        /* Field start state with byte b in hand. */
    field_start:
        if (b == '"') {
            quoted_any = 1;
            quote_line = c->line;
            for (;;) {
                b = next_byte(c, err);
                if (b == -2) return err ? err->status : AP_ERR_IO;
                if (b == -1)
                    return ap_err_set(err, AP_ERR_FORMAT, "%s:%llu: unterminated quoted field",
                                      c->name, (unsigned long long)quote_line);
                if (b == '"') {
                    int n = peek_byte(c, err);
                    if (n == '"') {
                        next_byte(c, err);
                        if ((st = push(c, '"', rec_line, err))) return st;
                        continue;
                    }
                    /* Closing quote: next must end the field. */
                    b = next_byte(c, err);
                    if (b == -2) return err ? err->status : AP_ERR_IO;
                    if (b == ',' || b == '\n' || b == '\r' || b == -1) goto field_end;
                    return ap_err_set(err, AP_ERR_FORMAT,
                                      "%s:%llu: unexpected character '%c' after closing quote",
                                      c->name, (unsigned long long)c->line,
                                      b >= 0x20 && b < 0x7f ? b : '?');
                }
                if (b == '\n') c->line++;
                if ((st = push(c, (char)b, rec_line, err))) return st;
            }
        }
        /* Unquoted field: bytes up to ',', '\r', '\n' or end. A '"' here is literal. */
        while (b != ',' && b != '\n' && b != '\r' && b != -1) {
            if ((st = push(c, (char)b, rec_line, err))) return st;
            b = next_byte(c, err);
            if (b == -2) return err ? err->status : AP_ERR_IO;
        }
    field_end:
        if ((st = push(c, '\0', rec_line, err))) return st;
        if (b == ',') {
            if ((st = start_field(c, err))) return st;
            b = next_byte(c, err);
            if (b == -2) return err ? err->status : AP_ERR_IO;
            goto field_start;
        }
        if (b == '\r' && peek_byte(c, err) == '\n') next_byte(c, err);
        if (b == '\n' || b == '\r') c->line++;
        /* A blank line is a record of one empty, unquoted field: skip it. */
        if (c->nfields == 1 && c->rec_len == 1 && !quoted_any) {
            if (b == -1) {
                *eof = 1;
                return AP_OK;
            }
            continue;
        }
        break;
    }
    /* The exported arrays follow the field capacity. */
    const char **fp = realloc(c->fptrs, c->fields_cap * sizeof *fp);
    if (!fp) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    c->fptrs = fp;
    size_t *fl = realloc(c->flens, c->fields_cap * sizeof *fl);
    if (!fl) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    c->flens = fl;
    for (size_t i = 0; i < c->nfields; i++) {
        size_t end = i + 1 < c->nfields ? c->starts[i + 1] : c->rec_len;
        c->fptrs[i] = c->rec + c->starts[i];
        c->flens[i] = end - c->starts[i] - 1; /* minus the NUL */
    }
    rec->nfields = c->nfields;
    rec->fields = c->fptrs;
    rec->lens = c->flens;
    rec->line = rec_line;
    return AP_OK;
}
