/* Fuzz target: the "expires" time parser (ap_parse_rfc3339_utc, core/trust.c). What it
 * accepts must be exactly YYYY-MM-DDTHH:MM:SS[.fraction]Z with a real calendar date and
 * time, and the seconds it returns must be that instant (a leap second, :60, is the
 * following second). */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "annpack/trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The value of n decimal digits at s, or -1 if one is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int y, int m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    long long t = 0;
    if (ap_parse_rfc3339_utc(s, &t, NULL) == AP_OK) {
        size_t n = strlen(s);
        if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
            __builtin_trap();
        int Y = digits(s, 4), M = digits(s + 5, 2), D = digits(s + 8, 2), h = digits(s + 11, 2),
            mi = digits(s + 14, 2), sec = digits(s + 17, 2);
        if (Y < 1970 || M < 1 || M > 12 || D < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
            sec < 0 || sec > 60)
            __builtin_trap();
        if (D > days_in_month(Y, M)) __builtin_trap();
        const char *p = s + 19;
        if (*p == '.') {
            if (p[1] < '0' || p[1] > '9') __builtin_trap();
            for (p++; *p >= '0' && *p <= '9'; p++) {
            }
        }
        if (strcmp(p, "Z") != 0) __builtin_trap();
        /* The instant: the second before a leap second, plus one. */
        time_t at = (time_t)(t - (sec == 60));
        struct tm tm;
        if (!gmtime_r(&at, &tm)) __builtin_trap();
        if (tm.tm_year + 1900 != Y || tm.tm_mon + 1 != M || tm.tm_mday != D || tm.tm_hour != h ||
            tm.tm_min != mi || tm.tm_sec != (sec == 60 ? 59 : sec))
            __builtin_trap();
    }
    free(s);
    return 0;
}
