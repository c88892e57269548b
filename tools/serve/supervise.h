/* Supervising the programs `annpack serve` runs (annpackfs, nginx): signals that wake our
 * wait loops, starting a child in its own process group with PR_SET_PDEATHSIG, reaping
 * and stopping it, and passing its log on to our stderr.
 *
 * Each child runs in its own process group (a terminal's Ctrl-C reaches only us, so we
 * stop them in order) and gets SIGTERM if we die, even by SIGKILL. */
#ifndef ANNPACK_TOOLS_SERVE_SUPERVISE_H
#define ANNPACK_TOOLS_SERVE_SUPERVISE_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#define SV_LOG_KEEP 8192 /* bytes of a child's startup output kept for error messages */

/* Installs handlers for SIGINT, SIGTERM, SIGHUP (no SA_RESTART: a blocking call returns
 * EINTR) and SIGCHLD, which all wake sv_wait_tick; ignores SIGPIPE; makes us the
 * subreaper of our children's orphans. Returns -1 with errno set on failure. */
int sv_signals_install(void);

/* The signal that asked us to stop (SIGINT, SIGTERM), or 0. */
int sv_stop_signal(void);

/* 1 once after each SIGHUP, else 0. */
int sv_take_hup(void);

/* When a stop was asked for, writes "interrupted by signal N" into err and returns 1. */
int sv_interrupted(char *err, size_t errlen);

/* Waits up to ms milliseconds; a signal or a child's exit ends the wait early. */
void sv_wait_tick(int ms);

double sv_now(void); /* monotonic seconds */
void sv_sleep_ms(long ms);

/* 1 when p is an executable regular file. */
int sv_is_exe(const char *p);

/* Reaps what we inherited as subreaper (annpackfs's fusermount3 auto_unmount helper runs
 * in a session of its own and exits just after the daemon), waiting up to grace_s. Call
 * only once the tracked children are reaped. */
void sv_reap_orphans(int grace_s);

/* The line of text that best explains a failure: the last line containing needle, else
 * the last non-empty line, copied without its newline ("(no output)" when none). */
void sv_pick_line(const char *text, const char *needle, char *out, size_t len);

typedef struct child {
    const char *name; /* its program name: the component of its relayed lines */
    pid_t pid;
    int exited, status;
    char log[PATH_MAX + 32]; /* its stderr and stdout, a file in the private directory */
    long relayed;            /* bytes of log already passed on to our stderr */
} child;

/* Starts argv[0] (a path) with stdout and stderr appended to c->log. Returns -1 and writes
 * err on failure. */
int child_start(child *c, char *const argv[], char *err, size_t errlen);

/* Reaps c if it has exited; returns 1 when it is gone (or was never started). */
int child_gone(child *c);

/* SIGTERM, wait up to grace_s, then SIGKILL. With whole_group, the rest of its process
 * group is killed afterwards even when it exited by itself: nginx's workers outlive a
 * master that was killed. (annpackfs's group holds the fusermount3 auto_unmount helper,
 * which must be left to finish its job.) */
void child_stop(child *c, int grace_s, int whole_group);

/* The last len - 1 bytes of c's log, NUL-terminated. */
void child_log_tail(const child *c, char *out, size_t len);

/* Passes on to our stderr (relay.h) the lines c logged since the last call; with all,
 * also an unterminated last line. */
void child_relay(child *c, int all);

#endif
