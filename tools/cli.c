/* Shared CLI helpers: see cli.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The embedding phase of a build with a service (rows, an estimated total): rows/s and an
 * ETA, as a bar on a terminal, else a log event every 5 seconds and at the end (JSON with
 * ANNPACK_LOG_JSON=1). */
static void embed_progress(uint64_t done, uint64_t total)
{
    static double t0, last;
    double t = now_s();
    if (t0 == 0) t0 = t;
    double rate = t > t0 ? (double)done / (t - t0) : 0;
    double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
    if (isatty(STDERR_FILENO) && !ap_log_json()) {
        int pct = total ? (int)(done * 100 / total) : 0;
        int w = pct * 30 / 100;
        fprintf(stderr, "\r%-12s [%.*s%*s] %3d%% %llu rows %.0f rows/s ETA %.0f s\033[K", "embed",
                w, "##############################", 30 - w, "", pct, (unsigned long long)done,
                rate, eta);
        fflush(stderr);
        g_drawn = 1;
    } else if (t - last >= 5 || done == total) {
        last = t;
        cli_msg("build", AP_LOG_INFO, "embed: %llu of about %llu rows, %.1f rows/s, ETA %.0f s",
                (unsigned long long)done, (unsigned long long)total, rate, eta);
    }
}

void cli_progress(void *ud, const char *phase, uint64_t done, uint64_t total)
{
    (void)ud;
    if (strcmp(phase, "embed") == 0) {
        embed_progress(done, total);
        return;
    }
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
