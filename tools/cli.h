/* Shared pieces of the annpack CLI: exit codes, error reporting, progress, parsing. */
#ifndef ANNPACK_TOOLS_CLI_H
#define ANNPACK_TOOLS_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "annpack/annpack.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* One line on stderr: "annpack CMD: MESSAGE" ("annpack: MESSAGE" when cmd is NULL), or
 * with ANNPACK_LOG_JSON=1 a JSON object like every log line, component CMD. */
void cli_msg(const char *cmd, ap_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats a message into buf (an error buffer handed down by the caller); a long path
 * in it may be truncated. */
void cli_errf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prints "annpack CMD: MESSAGE" to stderr (cli_msg) and returns EXIT_FAIL. */
int cli_fail(const char *cmd, const ap_err *err);

/* Checks the environment (ap_env_check); on a bad value prints it and returns EXIT_USAGE,
 * else EXIT_OK. */
int cli_check_env(void);

/* Prints a usage error (with a hint to --help) and returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses an unsigned decimal option value in [min, max]; on failure prints a usage error
 * naming the option and returns 0. */
/* --target-recall R: a number in [0, 1] into *out (0 becomes "do not calibrate", -1, as
 * ap_build_opts.target_recall says); prints a usage error and returns EXIT_USAGE if not. */
int cli_parse_recall(const char *cmd, const char *s, double *out);

int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t min, uint64_t max,
                  uint64_t *out);

/* A progress callback that draws a bar on stderr when it is a terminal, nothing else. */
void cli_progress(void *ud, const char *phase, uint64_t done, uint64_t total);
void cli_progress_end(void);

/* Writes s to stdout, failing (EXIT_FAIL) on a write error such as a closed pipe. */
int cli_emit(const char *s);

/* The annpackfs to run: $ANNPACKFS, next to this program (bin/, the build tree's fs/,
 * ../sbin), or on PATH; writes into buf and returns it ("annpackfs" when none is found). */
char *cli_find_annpackfs(char *buf, size_t len);

int cmd_build(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_canary(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_diagnose(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_packset(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_umount(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_smoke(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_templates(int argc, char **argv);
int cmd_registry(int argc, char **argv);
int cmd_pull(int argc, char **argv);

#endif
