/* Query file names: percent-decoding, parameters, bounds, caps. */
#include <stdlib.h>

#include "annpack/query.h"
#include "annpack/search.h"
#include "check.h"

static ap_status parse(const char *s, ap_query *q, ap_err *err)
{
    return ap_query_parse(s, strlen(s), 10, 8, q, err);
}

int main(void)
{
    ap_err err;
    ap_query q;
    CHECK_OK(parse("hello world", &q, &err), &err);
    CHECK(!strcmp(q.text, "hello world") && q.k == 10 && q.probe == 8);
    ap_query_free(&q);
    CHECK_OK(parse("a%2Fb%3Fc%25d%C3%A9?k=3&probe=64", &q, &err), &err);
    CHECK(!strcmp(q.text, "a/b?c%d\xc3\xa9") && q.k == 3 && q.probe == 64);
    ap_query_free(&q);
    CHECK_OK(parse("x?", &q, &err), &err);
    ap_query_free(&q);
    CHECK_OK(parse("x?probe=2&&k=1000", &q, &err), &err);
    CHECK(q.k == 1000 && q.probe == 2);
    ap_query_free(&q);
    CHECK_OK(parse("plus+sign", &q, &err), &err);
    CHECK(!strcmp(q.text, "plus+sign"));
    ap_query_free(&q);
    const char *bad[] = {"x?k=0", "x?k=1001", "x?probe=0", "x?probe=65537", "x?k=1&k=2",
                         "x?kk=1", "x?k", "x?k=", "x?k=1x", "bad%zz", "trunc%4", "?k=3", "",
                         "nul%00", "inv%FF", "x?k=-1", "x?k=99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ap_status st = parse(bad[i], &q, &err);
        if (st != AP_ERR_ARG) fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK(st == AP_ERR_ARG);
    }
    char *longname = malloc(AP_QUERY_NAME_MAX + 2);
    memset(longname, 'a', AP_QUERY_NAME_MAX + 1);
    longname[AP_QUERY_NAME_MAX + 1] = 0;
    CHECK_ERR(parse(longname, &q, &err), AP_ERR_LIMIT, &err, "1025 bytes");
    longname[AP_QUERY_NAME_MAX] = 0;
    CHECK_OK(parse(longname, &q, &err), &err);
    ap_query_free(&q);
    free(longname);
    char dec[16];
    CHECK(ap_percent_decode("%41%62", 6, dec) == 2 && !strcmp(dec, "Ab"));
    CHECK(ap_percent_decode("%4", 2, dec) == (size_t)-1);
    return check_done();
}
