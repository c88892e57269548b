/* Manifest signatures and expiry times: see include/annpack/sign.h and signature.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "annpack/sign.h"
#include "fsops.h"
#include "json.h"
#include "signature.h"

/* The value of n decimal digits at s, or -1 when one is not a digit (no sign, no space). */
static int fixed_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

ap_status ap_parse_rfc3339_utc(const char *s, long long *out, ap_err *err)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    /* Exactly YYYY-MM-DDTHH:MM:SS[.fraction]Z: every field its digits, nothing else. */
    if (strnlen(s, 20) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':')
        goto bad;
    int Y = fixed_digits(s, 4), M = fixed_digits(s + 5, 2), D = fixed_digits(s + 8, 2),
        h = fixed_digits(s + 11, 2), m = fixed_digits(s + 14, 2), sec = fixed_digits(s + 17, 2);
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') goto bad;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (strcmp(p, "Z") != 0) goto bad;
    if (Y < 1970 || M < 1 || M > 12 || D < 1 || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 ||
        sec > 60)
        goto bad;
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (D > mdays[M - 1] + (M == 2 && leap)) goto bad;
    /* A leap second (:60) is the instant after :59. */
    struct tm tm = {.tm_year = Y - 1900,
                    .tm_mon = M - 1,
                    .tm_mday = D,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec == 60 ? 59 : sec};
    *out = (long long)timegm(&tm) + (sec == 60);
    return AP_OK;
bad:
    return ap_err_set(err, AP_ERR_FORMAT,
                      "\"%.64s\" is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)", s);
}

static char *default_sig(const char *dir)
{
    return ap_path_join(dir, AP_SIGNATURE);
}

ap_status ap_manifest_check_signature(const char *dir, const char *manifest, size_t len,
                                      const ap_pubkey *keys, size_t nkeys, const char *sig_path,
                                      char keyid[AP_KEYID_HEX], ap_err *err)
{
    char *own = sig_path ? NULL : default_sig(dir);
    const char *path = sig_path ? sig_path : own;
    if (!path) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    char *sig = NULL;
    size_t slen = 0;
    ap_status st = ap_read_file(path, 4096, &sig, &slen, err);
    if (st == AP_ERR_NOTFOUND) {
        st = ap_err_set(err, AP_ERR_NOTFOUND, "%s: signature missing (the manifest is not signed)",
                        path);
    } else if (st == AP_ERR_LIMIT) {
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: a signature is %d raw bytes, this file is larger",
                        path, AP_SIG_BYTES);
    } else if (st == AP_OK) {
        st = ap_signature_check_bytes(sig, slen, path, manifest, len, keys, nkeys, keyid, err);
    }
    free(sig);
    free(own);
    return st;
}

#define AP_EXPIRES_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

ap_status ap_parse_expires(const char *s, long long now, long long *out, ap_err *err)
{
    size_t n = strlen(s);
    long long unit = 0;
    if (n >= 2 && n <= 13 && strspn(s, "0123456789") == n - 1) {
        switch (s[n - 1]) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        case 'w':
            unit = 7 * 86400;
            break;
        default:
            break;
        }
    }
    if (unit) {
        long long v = 0;
        for (size_t i = 0; i + 1 < n; i++)
            v = v * 10 + (s[i] - '0');
        if (v == 0) return ap_err_set(err, AP_ERR_ARG, "\"%s\": a duration must be positive", s);
        if (now < 0 || now >= AP_EXPIRES_MAX || v > (AP_EXPIRES_MAX - now) / unit)
            return ap_err_set(err, AP_ERR_ARG, "\"%s\" ends after the year 9999", s);
        *out = now + v * unit;
        return AP_OK;
    }
    long long t = 0;
    if (ap_parse_rfc3339_utc(s, &t, NULL) == AP_OK) {
        if (t <= now) return ap_err_set(err, AP_ERR_ARG, "\"%.64s\" is not in the future", s);
        if (t > AP_EXPIRES_MAX)
            return ap_err_set(err, AP_ERR_ARG, "\"%.64s\" is after the year 9999", s);
        *out = t;
        return AP_OK;
    }
    return ap_err_set(err, AP_ERR_ARG,
                      "\"%.64s\" is neither a duration (a positive integer and one of s, m, h, d, "
                      "w: 90s, 12h, 30d) nor an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)",
                      s);
}

void ap_format_rfc3339_utc(long long t, char out[AP_RFC3339_LEN])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, AP_RFC3339_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, AP_RFC3339_LEN, "1970-01-01T00:00:00Z");
}

ap_status ap_signature_check_bytes(const char *sig, size_t slen, const char *sig_name,
                                   const char *manifest, size_t len, const ap_pubkey *keys,
                                   size_t nkeys, char keyid[AP_KEYID_HEX], ap_err *err)
{
    if (slen != AP_SIG_BYTES)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: a signature is %d raw bytes, this file has %zu",
                          sig_name, AP_SIG_BYTES, slen);
    size_t which = 0;
    ap_status st = ap_verify_sig(keys, nkeys, manifest, len, (const uint8_t *)sig, &which, err);
    if (st == AP_OK) {
        if (keyid) memcpy(keyid, keys[which].keyid, AP_KEYID_HEX);
    } else if (st == AP_ERR_VERIFY) {
        char tmp[AP_ERR_MSG_MAX];
        snprintf(tmp, sizeof tmp, "%s", err ? err->msg : "");
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: %s", sig_name, tmp);
    }
    return st;
}

ap_status ap_expiry_check(const cJSON *root, const char *name, bool allow_expired, long long now,
                          long long *expires, ap_err *err)
{
    *expires = -1;
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(root, "expires");
    if (!exp) return AP_OK;
    if (!cJSON_IsString(exp))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: \"expires\" is not a string", name);
    ap_status st = ap_parse_rfc3339_utc(exp->valuestring, expires, err);
    if (st) {
        char tmp[AP_ERR_MSG_MAX];
        snprintf(tmp, sizeof tmp, "%s", err ? err->msg : "");
        return ap_err_set(err, st, "%s: \"expires\": %s", name, tmp);
    }
    if (now > *expires && !allow_expired)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s: expired at %s (pass --allow-expired to accept it)", name,
                          exp->valuestring);
    return AP_OK;
}
