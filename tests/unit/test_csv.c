/* CSV reader: RFC 4180 cases, line numbers, caps, buffer boundaries. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdlib.h>
#include <unistd.h>

#include "annpack/caps.h"
#include "annpack/csv.h"
#include "check.h"

/* Reads all records of s; returns "f1|f2;f1|f2;" style text in out. */
static ap_status all(const char *s, size_t len, char *out, size_t cap, ap_err *err)
{
    ap_csv *c;
    ap_status st = ap_csv_open_mem(s, len, "mem.csv", &c, err);
    if (st) return st;
    size_t at = 0;
    out[0] = 0;
    for (;;) {
        ap_csv_record r;
        int eof;
        if ((st = ap_csv_next(c, &r, &eof, err)) || eof) break;
        for (size_t i = 0; i < r.nfields; i++)
            at += (size_t)snprintf(out + at, cap - at, "%s%s", i ? "|" : "", r.fields[i]);
        at += (size_t)snprintf(out + at, cap - at, ";");
    }
    ap_csv_close(c);
    return st;
}

#define EXPECT(in, want)                                                                           \
    do {                                                                                           \
        char out_[4096];                                                                           \
        CHECK_OK(all(in, sizeof(in) - 1, out_, sizeof out_, &err), &err);                          \
        if (strcmp(out_, want)) fprintf(stderr, "got [%s] want [%s]\n", out_, want);               \
        CHECK(strcmp(out_, want) == 0);                                                            \
    } while (0)

int main(void)
{
    ap_err err;
    EXPECT("a,b\n1,2\n", "a|b;1|2;");
    EXPECT("a,b\r\n1,2\r\n", "a|b;1|2;");
    EXPECT("a,b\n1,2", "a|b;1|2;");
    EXPECT("\xEF\xBB\xBFid,t\n1,x\n", "id|t;1|x;");
    EXPECT("a,\"b,c\",d\n", "a|b,c|d;");
    EXPECT("\"he said \"\"hi\"\"\",x\n", "he said \"hi\"|x;");
    EXPECT("\"multi\nline\",x\n\"crlf\r\ninside\",y\n", "multi\nline|x;crlf\r\ninside|y;");
    EXPECT("a,,b,\n", "a||b|;");
    EXPECT("a\n\n\nb\n", "a;b;");
    EXPECT("x\"y,z\n", "x\"y|z;");
    EXPECT("", "");
    EXPECT("\xEF\xBB", "\xEF\xBB;");

    /* Line numbers: a record's first physical line. */
    const char *multi = "h1,h2\n\"a\nb\",c\nd,e\n";
    ap_csv *c;
    CHECK_OK(ap_csv_open_mem(multi, strlen(multi), "m", &c, &err), &err);
    ap_csv_record r;
    int eof;
    uint64_t lines[3];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(ap_csv_next(c, &r, &eof, &err), &err);
        lines[i] = r.line;
    }
    CHECK(lines[0] == 1 && lines[1] == 2 && lines[2] == 4);
    CHECK_OK(ap_csv_next(c, &r, &eof, &err), &err);
    CHECK(eof == 1);
    ap_csv_close(c);

    char out[256];
    const char unterminated[] = "a,b\n1,\"open\n2,3\n";
    CHECK_ERR(all(unterminated, sizeof unterminated - 1, out, sizeof out, &err), AP_ERR_FORMAT,
              &err, "mem.csv:2: unterminated quoted field");
    const char garbage[] = "a\n\"x\"y\n";
    CHECK_ERR(all(garbage, sizeof garbage - 1, out, sizeof out, &err), AP_ERR_FORMAT, &err,
              "mem.csv:2: unexpected character 'y' after closing quote");

    /* Record cap. */
    setenv("ANNPACK_META_MAX_LINE", "16", 1);
    CHECK_OK(ap_caps_reload(&err), &err);
    const char big[] = "0123456789,0123456789\n";
    CHECK_ERR(all(big, sizeof big - 1, out, sizeof out, &err), AP_ERR_LIMIT, &err,
              "ANNPACK_META_MAX_LINE");
    const char small[] = "0123456789\n";
    CHECK_OK(all(small, sizeof small - 1, out, sizeof out, &err), &err);
    unsetenv("ANNPACK_META_MAX_LINE");
    CHECK_OK(ap_caps_reload(&err), &err);

    /* A file with a 200 KiB quoted field crossing the 64 KiB read buffer. */
    char path[] = "/tmp/annpack-csv-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("id,text\n1,\"", f);
    for (int i = 0; i < 200 * 1024; i++)
        fputc(i % 1000 == 999 ? '\n' : 'a' + i % 26, f);
    fputs("\"\n2,\"x\"\"y\"\r\n", f);
    fclose(f);
    CHECK_OK(ap_csv_open(path, &c, &err), &err);
    CHECK_OK(ap_csv_next(c, &r, &eof, &err), &err);
    CHECK_OK(ap_csv_next(c, &r, &eof, &err), &err);
    CHECK(r.nfields == 2 && r.lens[1] == 200 * 1024 && r.fields[1][0] == 'a');
    CHECK_OK(ap_csv_next(c, &r, &eof, &err), &err);
    CHECK(r.line == 207); /* 204 newlines inside record 1, which starts on line 2 */
    CHECK(strcmp(r.fields[1], "x\"y") == 0);
    CHECK(ap_csv_bytes_read(c) > 200 * 1024);
    ap_csv_close(c);
    unlink(path);
    CHECK_ERR(ap_csv_open("/nonexistent/x.csv", &c, &err), AP_ERR_NOTFOUND, &err,
              "/nonexistent/x.csv");
    return check_done();
}
