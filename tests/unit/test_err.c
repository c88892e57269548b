/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "annpack/caps.h"
#include "annpack/log.h"
#include "check.h"

static int sink_calls;
static void sink(ap_log_level l, const char *c, const char *m, void *ud)
{
    (void)l;
    (void)ud;
    if (strcmp(c, "test") == 0 && strcmp(m, "hello 42") == 0) sink_calls++;
}

int main(void)
{
    ap_err err;
    CHECK(ap_err_set(&err, AP_ERR_FORMAT, "file %s: bad", "x.csv") == AP_ERR_FORMAT);
    CHECK(err.status == AP_ERR_FORMAT && strcmp(err.msg, "file x.csv: bad") == 0);
    CHECK(ap_err_set(NULL, AP_ERR_IO, "ignored") == AP_ERR_IO);
    ap_err_errno(&err, AP_ERR_IO, ENOENT, "open %s", "y");
    CHECK(strcmp(err.msg, "open y: No such file or directory") == 0);
    ap_err_clear(&err);
    CHECK(err.status == AP_OK && err.msg[0] == 0);
    CHECK(strcmp(ap_status_name(AP_ERR_LIMIT), "limit") == 0);

    /* Caps: defaults, environment override, rejection of garbage naming the variable. */
    unsetenv("ANNPACK_MAX_DIM");
    CHECK_OK(ap_caps_reload(&err), &err);
    CHECK(ap_caps_get()->max_dim == 4096);
    setenv("ANNPACK_MAX_DIM", "128", 1);
    CHECK_OK(ap_caps_reload(&err), &err);
    CHECK(ap_caps_get()->max_dim == 128);
    setenv("ANNPACK_MAX_DIM", "12x", 1);
    CHECK_ERR(ap_caps_reload(&err), AP_ERR_ARG, &err, "ANNPACK_MAX_DIM");
    CHECK(ap_caps_get()->max_dim == 4096);
    unsetenv("ANNPACK_MAX_DIM");
    setenv("ANNPACK_ALLOW_LARGE_META", "1", 1);
    CHECK_OK(ap_caps_reload(&err), &err);
    CHECK(ap_caps_get()->max_meta_bytes == UINT64_MAX);
    unsetenv("ANNPACK_ALLOW_LARGE_META");
    CHECK_OK(ap_caps_reload(&err), &err);
    CHECK(ap_caps_get()->meta_max_line == (1u << 20));

    /* The environment check: every variable core reads, one line naming it, its value and
     * what it accepts; empty counts as unset; valid values pass. */
    static const struct {
        const char *var, *bad, *good, *needle;
    } env[] = {
        {"ANNPACK_LOG_LEVEL", "bogus", "debug", "expected ERROR, WARN, INFO or DEBUG"},
        {"ANNPACK_LOG_JSON", "true", "1", "expected 0 or 1"},
        {"ANNPACK_THREADS", "abc", "8", "expected a positive integer"},
        {"ANNPACK_THREADS", "0", "1000", "expected a positive integer"},
        {"ANNPACK_FAISS_THREADS", "-1", "2", "expected a positive integer"},
        {"ANNPACK_MAX_DIM", "99999999999", "16", "expected a positive integer"},
        {"ANNPACK_MAX_META_BYTES", " 5", "5", "expected a positive integer"},
        {"ANNPACK_ALLOW_LARGE_META", "yes", "0", "expected 0 or 1"},
        {"ANNPACK_DEVICE", "gpu", "cpu", "expected cpu"},
    };
    CHECK_OK(ap_env_check(&err), &err);
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "%s=%s is not valid: %s", env[i].var, env[i].bad,
                 env[i].needle);
        setenv(env[i].var, env[i].bad, 1);
        CHECK_ERR(ap_env_check(&err), AP_ERR_ARG, &err, want);
        setenv(env[i].var, env[i].good, 1);
        CHECK_OK(ap_env_check(&err), &err);
        setenv(env[i].var, "", 1);
        CHECK_OK(ap_env_check(&err), &err);
        unsetenv(env[i].var);
    }
    /* A value with a newline is escaped: the message stays one line. */
    setenv("ANNPACK_LOG_LEVEL", "INFO\nx", 1);
    CHECK_ERR(ap_env_check(&err), AP_ERR_ARG, &err, "ANNPACK_LOG_LEVEL=INFO\\nx is not valid");
    unsetenv("ANNPACK_LOG_LEVEL");

    /* Logging goes through the sink; below-threshold messages are dropped. */
    ap_log_set_sink(sink, NULL);
    ap_log_set_level(AP_LOG_INFO);
    ap_log(AP_LOG_INFO, "test", "hello %d", 42);
    ap_log(AP_LOG_DEBUG, "test", "hello %d", 42);
    CHECK(sink_calls == 1);
    /* ap_log_emit ignores the threshold (programs' own errors and summaries). */
    ap_log_set_level(AP_LOG_ERROR);
    ap_log_emit(AP_LOG_INFO, "test", "hello 42");
    CHECK(sink_calls == 2);
    ap_log_set_sink(NULL, NULL);
    return check_done();
}
