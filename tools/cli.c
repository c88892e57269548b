/* Shared CLI helpers: see cli.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_fail(const char *cmd, const ap_err *err)
{
    cli_progress_end();
    fprintf(stderr, "annpack %s: %s\n", cmd, err->msg[0] ? err->msg : ap_status_name(err->status));
    return EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "annpack %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'annpack %s --help'.\n", cmd);
    va_end(ap);
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

static int g_drawn;

void cli_progress(void *ud, const char *phase, uint64_t done, uint64_t total)
{
    (void)ud;
    if (!isatty(STDERR_FILENO)) return;
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
        fprintf(stderr, "annpack: cannot write output: %s\n", strerror(errno));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
