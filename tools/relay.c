/* Relaying another program's stderr: see relay.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "relay.h"

static int is_json_object(const char *line, size_t len)
{
    if (!len || line[0] != '{') return 0;
    cJSON *j = cJSON_ParseWithLength(line, len);
    int ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    return ok;
}

/* nginx tags its lines "... [warn] ..."; anything else a program says on stderr is taken
 * for an error. */
static ap_log_level level_of(const char *line, size_t len)
{
    static const struct {
        const char *tag;
        ap_log_level level;
    } tags[] = {{"[emerg]", AP_LOG_ERROR}, {"[alert]", AP_LOG_ERROR}, {"[crit]", AP_LOG_ERROR},
                {"[error]", AP_LOG_ERROR}, {"[warn]", AP_LOG_WARN},   {"[notice]", AP_LOG_INFO},
                {"[info]", AP_LOG_INFO},   {"[debug]", AP_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
        if (memmem(line, len, tags[i].tag, strlen(tags[i].tag))) return tags[i].level;
    return AP_LOG_ERROR;
}

void relay_line(const char *program, const char *line, size_t len)
{
    if (!ap_log_json() || is_json_object(line, len)) {
        fprintf(stderr, "%.*s\n", (int)len, line);
        return;
    }
    cli_msg(program, level_of(line, len), "%.*s", (int)len, line);
}

size_t relay_lines(const char *program, const char *buf, size_t len, int all)
{
    size_t at = 0;
    while (at < len) {
        const char *nl = memchr(buf + at, '\n', len - at);
        if (!nl && !all) break;
        size_t n = nl ? (size_t)(nl - (buf + at)) : len - at;
        relay_line(program, buf + at, n);
        at += n + (nl ? 1 : 0);
    }
    fflush(stderr);
    return at;
}

static volatile sig_atomic_t g_child;

static void pass_on(int sig)
{
    if (g_child > 0) kill((pid_t)g_child, sig);
}

/* Reads what is in fd into buf (after *have bytes) and relays the complete lines. Returns
 * 1 when it read something, 0 at end of file or on an error, -1 when nothing is there
 * yet. */
static int pump(const char *program, int fd, char *buf, size_t cap, size_t *have)
{
    ssize_t r = read(fd, buf + *have, cap - *have);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) return -1;
    if (r <= 0) return 0;
    *have += (size_t)r;
    /* A line longer than the buffer is passed on in pieces. */
    size_t used = relay_lines(program, buf, *have, *have == cap);
    memmove(buf, buf + used, *have - used);
    *have -= used;
    return 1;
}

/* The child: stderr to the relay pipe (if any), then exec; on failure its errno goes
 * back through the close-on-exec pipe. */
static void child_exec(char *const argv[], int err_fd, int status_fd)
{
    if (err_fd >= 0) dup2(err_fd, STDERR_FILENO);
    execvp(argv[0], argv);
    int e = errno;
    ssize_t w = write(status_fd, &e, sizeof e);
    (void)w;
    _exit(127);
}

/* Closes both pipes (those open), keeping errno; returns -1. */
static pid_t close_pipes(int a[2], int b[2])
{
    int e = errno;
    for (int i = 0; i < 2; i++) {
        if (a[i] >= 0) close(a[i]);
        if (b[i] >= 0) close(b[i]);
    }
    errno = e;
    return -1;
}

/* Forks and execs argv, its stderr to a new pipe whose read end goes to *err_fd when
 * relay is set. Returns the child's pid, or -1 with errno set (also when exec failed). */
static pid_t start(char *const argv[], int relay, int *err_fd)
{
    int out[2] = {-1, -1}, st[2] = {-1, -1};
    *err_fd = -1;
    if ((relay && pipe2(out, O_CLOEXEC) != 0) || pipe2(st, O_CLOEXEC) != 0)
        return close_pipes(out, st);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return close_pipes(out, st);
    if (pid == 0) child_exec(argv, out[1], st[1]);
    close(st[1]);
    if (out[1] >= 0) close(out[1]);
    int exec_errno = 0;
    ssize_t r;
    while ((r = read(st[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
    }
    close(st[0]);
    if (r == (ssize_t)sizeof exec_errno) {
        waitpid(pid, NULL, 0);
        if (out[0] >= 0) close(out[0]);
        errno = exec_errno;
        return -1;
    }
    *err_fd = out[0];
    return pid;
}

/* Waits for pid, relaying what comes through fd (if >= 0) meanwhile. */
static int wait_relaying(const char *program, pid_t pid, int fd)
{
    char buf[8192];
    size_t have = 0;
    int status = 0, open_fd = fd >= 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, open_fd ? WNOHANG : 0);
        if (r == pid || (r < 0 && errno != EINTR)) break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (open_fd && poll(&p, 1, 100) > 0 && !pump(program, fd, buf, sizeof buf, &have))
            open_fd = 0;
    }
    if (fd < 0) return status;
    /* It has exited, so what it wrote is in the pipe: take that, not what a process it left
     * behind (still holding the pipe) may write later. */
    fcntl(fd, F_SETFL, O_NONBLOCK);
    while (open_fd && pump(program, fd, buf, sizeof buf, &have) == 1) {
    }
    relay_lines(program, buf, have, 1);
    close(fd);
    return status;
}

int relay_run(const char *program, char *const argv[])
{
    int fd;
    pid_t pid = start(argv, ap_log_json(), &fd);
    if (pid < 0) return -1;
    struct sigaction ign = {.sa_handler = SIG_IGN}, pass = {.sa_handler = pass_on}, old[4];
    sigemptyset(&ign.sa_mask);
    sigemptyset(&pass.sa_mask);
    g_child = pid;
    sigaction(SIGINT, &ign, &old[0]);
    sigaction(SIGQUIT, &ign, &old[1]);
    sigaction(SIGTERM, &pass, &old[2]);
    sigaction(SIGHUP, &pass, &old[3]);
    int status = wait_relaying(program, pid, fd);
    sigaction(SIGINT, &old[0], NULL);
    sigaction(SIGQUIT, &old[1], NULL);
    sigaction(SIGTERM, &old[2], NULL);
    sigaction(SIGHUP, &old[3], NULL);
    g_child = 0;
    return status;
}
