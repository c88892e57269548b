/* Signals and child processes for annpack serve and smoke: see supervise.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "relay.h"
#include "supervise.h"

/* ---- signals: a self-pipe wakes the wait loops ---- */

static volatile sig_atomic_t g_stop; /* the signal that asks us to stop, or 0 */
static volatile sig_atomic_t g_hup;
static int g_wake[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGHUP)
        g_hup = 1;
    else if (sig != SIGCHLD)
        g_stop = sig;
    if (g_wake[1] >= 0) {
        ssize_t w = write(g_wake[1], "x", 1);
        (void)w; /* a full pipe already holds a wake-up */
    }
    errno = saved;
}

int sv_signals_install(void)
{
    if (g_wake[0] < 0 && pipe2(g_wake, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0) return -1;
    signal(SIGPIPE, SIG_IGN);
    /* Orphans of our children (nginx workers of a killed master, annpackfs's unmount
     * helper) become ours to stop and reap instead of init's. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    return 0;
}

int sv_stop_signal(void)
{
    return (int)g_stop;
}

int sv_take_hup(void)
{
    if (!g_hup) return 0;
    g_hup = 0;
    return 1;
}

int sv_interrupted(char *err, size_t errlen)
{
    if (!g_stop) return 0;
    cli_errf(err, errlen, "interrupted by signal %d", (int)g_stop);
    return 1;
}

void sv_wait_tick(int ms)
{
    struct pollfd p = {.fd = g_wake[0], .events = POLLIN};
    poll(&p, 1, ms);
    char b[64];
    while (read(g_wake[0], b, sizeof b) > 0) {
    }
}

void sv_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

double sv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int sv_is_exe(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

void sv_reap_orphans(int grace_s)
{
    double end = sv_now() + grace_s;
    for (;;) {
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (r > 0 || (r < 0 && errno == EINTR)) continue;
        if (r < 0 || sv_now() > end) break; /* ECHILD: no child left */
        sv_sleep_ms(20);
    }
}

void sv_pick_line(const char *text, const char *needle, char *out, size_t len)
{
    const char *best = NULL, *last = NULL;
    for (const char *l = text; *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        if (n) {
            last = l;
            if (needle && memmem(l, n, needle, strlen(needle))) best = l;
        }
        l += n + (e ? 1 : 0);
    }
    const char *l = best ? best : last;
    if (!l) {
        snprintf(out, len, "(no output)");
        return;
    }
    size_t n = strcspn(l, "\n");
    snprintf(out, len, "%.*s", (int)n, l);
}

/* ---- children ---- */

/* In the child, before exec: only async-signal-safe calls (the parent may have threads). */
static void exec_child(char *const argv[], int log_fd, pid_t parent)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &dfl, NULL);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execv(argv[0], argv);
    static const char msg[] = "cannot execute the program\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

int child_start(child *c, char *const argv[], char *err, size_t errlen)
{
    int fd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    c->relayed = 0;
    if (fd < 0) {
        cli_errf(err, errlen, "%s: %s", c->log, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        cli_errf(err, errlen, "fork: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (pid == 0) exec_child(argv, fd, parent);
    close(fd);
    c->pid = pid;
    c->exited = 0;
    return 0;
}

int child_gone(child *c)
{
    if (c->pid <= 0 || c->exited) return 1;
    int st;
    pid_t r = waitpid(c->pid, &st, WNOHANG);
    if (r == c->pid || (r < 0 && errno == ECHILD)) {
        c->exited = 1;
        c->status = r == c->pid ? st : 0;
        return 1;
    }
    return 0;
}

void child_stop(child *c, int grace_s, int whole_group)
{
    if (c->pid <= 0) return;
    if (!child_gone(c)) {
        kill(c->pid, SIGTERM);
        double end = sv_now() + grace_s;
        while (!child_gone(c) && sv_now() < end)
            sv_sleep_ms(20);
    }
    if (!child_gone(c)) {
        kill(whole_group ? -c->pid : c->pid, SIGKILL);
        while (!child_gone(c)) {
            if (waitpid(c->pid, &c->status, 0) == c->pid) c->exited = 1;
        }
    }
    if (!whole_group) return;
    kill(-c->pid, SIGKILL); /* ESRCH when none is left */
    /* As subreaper we inherited what was orphaned in the group: reap it. */
    for (;;) {
        pid_t r = waitpid(-c->pid, NULL, 0);
        if (r < 0 && errno != EINTR) break;
    }
}

void child_log_tail(const child *c, char *out, size_t len)
{
    out[0] = '\0';
    FILE *f = fopen(c->log, "re");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)len - 1 ? size - (long)len + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
}

void child_relay(child *c, int all)
{
    if (!c->log[0]) return;
    FILE *f = fopen(c->log, "re");
    if (!f) return;
    char b[8192];
    size_t have = 0, n;
    while (fseek(f, c->relayed + (long)have, SEEK_SET) == 0 &&
           (n = fread(b + have, 1, sizeof b - have, f)) > 0) {
        have += n;
        /* A line longer than the buffer is passed on in pieces. */
        size_t used = relay_lines(c->name, b, have, all || have == sizeof b);
        memmove(b, b + used, have - used);
        have -= used;
        c->relayed += (long)used;
    }
    fclose(f);
}
