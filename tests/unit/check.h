/* A minimal test harness: CHECK records a failure and keeps going; CHECK_OK checks an
 * ap_status and prints the ap_err message; check_done() prints "N passed, N failed" and
 * returns the process exit status. */
#ifndef ANNPACK_TEST_CHECK_H
#define ANNPACK_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/status.h"

static int check_pass_, check_fail_;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_pass_++;                                                                         \
        } else {                                                                                   \
            check_fail_++;                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_OK(expr, errp)                                                                       \
    do {                                                                                           \
        ap_status st_ = (expr);                                                                    \
        if (st_ == AP_OK) {                                                                        \
            check_pass_++;                                                                         \
        } else {                                                                                   \
            check_fail_++;                                                                         \
            fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr,                    \
                    ap_status_name(st_), (errp)->msg);                                             \
        }                                                                                          \
    } while (0)

/* Checks that expr fails with status want and that the message contains needle. */
#define CHECK_ERR(expr, want, errp, needle)                                                        \
    do {                                                                                           \
        ap_status st_ = (expr);                                                                    \
        if (st_ == (want) && strstr((errp)->msg, (needle))) {                                      \
            check_pass_++;                                                                         \
        } else {                                                                                   \
            check_fail_++;                                                                         \
            fprintf(stderr, "%s:%d: %s -> %s \"%s\", wanted %s containing \"%s\"\n", __FILE__,     \
                    __LINE__, #expr, ap_status_name(st_), (errp)->msg, ap_status_name(want),       \
                    (needle));                                                                     \
        }                                                                                          \
    } while (0)

static inline int check_done(void)
{
    printf("%d passed, %d failed\n", check_pass_, check_fail_);
    return check_fail_ ? 1 : 0;
}

#endif
