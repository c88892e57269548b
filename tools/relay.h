/* What another program writes on stderr, passed on to ours: as it is, or with
 * ANNPACK_LOG_JSON=1 one JSON object per line — a line that is one already (annpackfs's
 * log lines) unchanged, any other as a log line of that program (component = its name;
 * level from nginx's "[warn]"-style tag, else ERROR). */
#ifndef ANNPACK_TOOLS_RELAY_H
#define ANNPACK_TOOLS_RELAY_H

#include <stddef.h>

/* Writes one line (len bytes, without its newline) that program wrote. */
void relay_line(const char *program, const char *line, size_t len);

/* Writes every complete line of buf[0..len), and with all also an unterminated last one;
 * returns the number of bytes written. */
size_t relay_lines(const char *program, const char *buf, size_t len, int all);

/* Runs argv (argv[0] looked up on PATH, as execvp) and waits for it to exit. Without
 * ANNPACK_LOG_JSON it shares our stderr; with it, its stderr comes through relay_line
 * (until it exits: what a child it left behind writes later is dropped). While it runs,
 * SIGINT and SIGQUIT are ignored here (a terminal sends them to it as well) and SIGTERM
 * and SIGHUP are passed on to it. Returns its wait status, or -1 with errno set when it
 * could not be started. */
int relay_run(const char *program, char *const argv[]);

#endif
