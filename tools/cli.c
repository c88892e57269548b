/* Shared CLI helpers: see cli.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

__attribute__((format(printf, 3, 0))) static void vmsg(const char *cmd, ap_log_level level,
                                                       const char *fmt, va_list ap)
{
    char msg[AP_ERR_MSG_MAX + 256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (ap_log_json())
        ap_log_emit(level, cmd ? cmd : "cli", msg);
    else if (cmd)
        fprintf(stderr, "annpack %s: %s\n", cmd, msg);
    else
        fprintf(stderr, "annpack: %s\n", msg);
}

void cli_msg(const char *cmd, ap_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(cmd, level, fmt, ap);
    va_end(ap);
}

void cli_errf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

int cli_fail(const char *cmd, const ap_err *err)
{
    cli_progress_end();
    cli_msg(cmd, AP_LOG_ERROR, "%s", err->msg[0] ? err->msg : ap_status_name(err->status));
    return EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[AP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ap_log_json()) {
        cli_msg(cmd, AP_LOG_ERROR, "%s (try 'annpack %s --help')", msg, cmd);
    } else {
        fprintf(stderr, "annpack %s: %s\nTry 'annpack %s --help'.\n", cmd, msg, cmd);
    }
    return EXIT_USAGE;
}

int cli_check_env(void)
{
    ap_err err = {0};
    if (ap_env_check(&err) == AP_OK) return EXIT_OK;
    /* ANNPACK_LOG_JSON itself may be the bad one: then ap_log_json() is off (its default)
     * and the line is plain text. */
    cli_msg(NULL, AP_LOG_ERROR, "%s", err.msg);
    return EXIT_USAGE;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t min, uint64_t max,
                  uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-' || *s == '+') goto bad;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max) goto bad;
    *out = v;
    return 1;
bad:
    cli_usage_error(cmd, "%s expects an integer in [%llu, %llu], got '%s'", opt,
                    (unsigned long long)min, (unsigned long long)max, s ? s : "");
    return 0;
}

int cli_parse_recall(const char *cmd, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = s && *s && *s != '-' && *s != '+' ? strtod(s, &end) : -1;
    if (!end || errno || *end || !(v >= 0 && v <= 1))
        return cli_usage_error(cmd, "--target-recall expects a number in [0, 1], got '%s'",
                               s ? s : "");
    *out = v == 0 ? -1 : v;
    return EXIT_OK;
}

static int g_drawn;

void cli_progress(void *ud, const char *phase, uint64_t done, uint64_t total)
{
    (void)ud;
    /* A bar only on a terminal, and never with ANNPACK_LOG_JSON=1 (every line JSON). */
    if (!isatty(STDERR_FILENO) || ap_log_json()) return;
    if (total) {
        int pct = (int)(done * 100 / total);
        int w = pct * 30 / 100;
        fprintf(stderr, "\r%-12s [%.*s%*s] %3d%%", phase, w, "##############################",
                30 - w, "", pct);
    } else {
        fprintf(stderr, "\r%-12s %llu", phase, (unsigned long long)done);
    }
    fflush(stderr);
    g_drawn = 1;
}

void cli_progress_end(void)
{
    if (g_drawn) fprintf(stderr, "\r\033[K");
    g_drawn = 0;
}

int cli_emit(const char *s)
{
    if (fputs(s, stdout) == EOF || fflush(stdout) != 0) {
        cli_msg(NULL, AP_LOG_ERROR, "cannot write output: %s", strerror(errno));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
