/* annpack serve / annpack smoke: a pack or packset served over HTTP on real parts — annpackfs
 * mounts it on a private temporary mountpoint, nginx serves the mount and the search page —
 * and a check of that whole path.
 *
 * Both children run in their own process groups (a terminal's Ctrl-C reaches only us, so
 * we stop them in order: nginx first, then the mount) and with PR_SET_PDEATHSIG, so even a
 * SIGKILL of this process stops them (annpackfs's auto_unmount then removes the mount). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "cli.h"
#include "http.h"

#ifndef ANNPACK_SOURCE_WEB_DIR
#define ANNPACK_SOURCE_WEB_DIR ""
#endif
#ifndef ANNPACK_DATA_WEB_DIR
#define ANNPACK_DATA_WEB_DIR ""
#endif

#define MOUNT_TIMEOUT_S 300 /* verify=full hashes every byte first: allow big packs */
#define NGINX_TIMEOUT_S 20
#define HTTP_TIMEOUT_S 60
#define LOG_KEEP 8192 /* bytes of a child's startup output kept for error messages */

/* Formats an error message; truncation of a long path in a message is acceptable. */
static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

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

/* No SA_RESTART: a blocking call (connect, recv, waitpid) returns EINTR on Ctrl-C. */
static int signals_install(void)
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

static void wake_drain(void)
{
    char b[64];
    while (read(g_wake[0], b, sizeof b) > 0) {
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- finding the parts ---- */

static int is_exe(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/* nginx: $ANNPACK_NGINX, PATH, then the sbin directories PATH often lacks for non-root. */
static int find_nginx(char *out, size_t len)
{
    const char *env = getenv("ANNPACK_NGINX");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return is_exe(out) ? 0 : -1;
    }
    const char *path = getenv("PATH");
    char dirs[8192];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin:/usr/local/sbin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (snprintf(out, len, "%s/nginx", d) < (int)len && is_exe(out)) return 0;
    }
    return -1;
}

static int has_index(const char *dir)
{
    char p[PATH_MAX + 48];
    snprintf(p, sizeof p, "%s/index.html", dir);
    return access(p, R_OK) == 0;
}

/* The page: $ANNPACK_WEB_DIR, the installed datadir beside the binary (bin/../share), the
 * configured datadir, then the source tree this binary was built from. */
static int find_web(char *out, size_t len)
{
    const char *env = getenv("ANNPACK_WEB_DIR");
    if (env && *env) {
        if (!realpath(env, out) || !has_index(out)) return -1;
        return 0;
    }
    char self[PATH_MAX], cand[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    const char *fixed[] = {ANNPACK_DATA_WEB_DIR, ANNPACK_SOURCE_WEB_DIR};
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) *slash = '\0';
        snprintf(cand, sizeof cand, "%s/../share/annpack/web", self);
        if (has_index(cand) && realpath(cand, out)) return 0;
    }
    for (size_t i = 0; i < 2; i++)
        if (fixed[i][0] && has_index(fixed[i]) && realpath(fixed[i], out)) return 0;
    (void)len;
    return -1;
}

/* nginx reads these paths inside double quotes and expands '$': refuse what it would
 * misread rather than write a config that means something else. */
static int nginx_safe(const char *p)
{
    return !strpbrk(p, "\"\\$;{}\n\r'");
}

/* ---- the mount table ---- */

/* /proc/self/mounts escapes space, tab, newline and backslash as \ooo. */
static void unescape_mount(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

static int is_mounted(const char *mnt)
{
    FILE *f = fopen("/proc/self/mounts", "re");
    if (!f) return 0;
    char line[PATH_MAX * 2 + 256];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *save = NULL;
        char *dev = strtok_r(line, " ", &save);
        char *at = dev ? strtok_r(NULL, " ", &save) : NULL;
        if (!at) continue;
        unescape_mount(at);
        found = !strcmp(at, mnt);
    }
    fclose(f);
    return found;
}

/* ---- children ---- */

typedef struct child {
    const char *name;
    pid_t pid;
    int exited, status;
    char log[PATH_MAX + 32]; /* its stderr and stdout, a file in the private directory */
    long relayed;            /* bytes of log already copied to our stderr */
} child;

/* Starts argv[0] with stdout and stderr appended to c->log, in its own process group,
 * killed with SIGTERM if we die. */
static int child_start(child *c, char *const argv[], char *err, size_t errlen)
{
    int fd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    c->relayed = 0;
    if (fd < 0) {
        errf(err, errlen, "%s: %s", c->log, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        errf(err, errlen, "fork: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls until exec (the parent may have threads). */
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
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        static const char msg[] = "cannot execute the program\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    close(fd);
    c->pid = pid;
    c->exited = 0;
    return 0;
}

/* Reaps c if it has exited; returns 1 when it is gone. */
static int child_gone(child *c)
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

/* SIGTERM, wait up to grace_s, then SIGKILL. With whole_group, the rest of its process
 * group is killed afterwards even when it exited by itself: nginx's workers outlive a
 * master that was killed. (annpackfs's group holds the fusermount3 auto_unmount helper,
 * which must be left to finish its job.) */
static void child_stop(child *c, int grace_s, int whole_group)
{
    if (c->pid <= 0) return;
    if (!child_gone(c)) {
        kill(c->pid, SIGTERM);
        double end = now_s() + grace_s;
        while (!child_gone(c) && now_s() < end)
            sleep_ms(20);
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

/* Reaps what we inherited as subreaper (annpackfs's fusermount3 auto_unmount helper runs
 * in a session of its own and exits just after the daemon), waiting up to grace_s. Call
 * only once the tracked children are reaped. */
static void reap_orphans(int grace_s)
{
    double end = now_s() + grace_s;
    for (;;) {
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (r > 0 || (r < 0 && errno == EINTR)) continue;
        if (r < 0 || now_s() > end) break; /* ECHILD: no child left */
        sleep_ms(20);
    }
}

/* Reads the last LOG_KEEP bytes of a child's log. */
static void child_log_tail(const child *c, char *out, size_t len)
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

/* The line of text that best explains a failure: the last line containing needle, else
 * the last non-empty line. Copied without its newline. */
static void pick_line(const char *text, const char *needle, char *out, size_t len)
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

/* Copies what a child wrote since the last call to our stderr. */
static void child_relay(child *c)
{
    FILE *f = fopen(c->log, "re");
    if (!f) return;
    if (fseek(f, c->relayed, SEEK_SET) == 0) {
        char b[4096];
        size_t n;
        while ((n = fread(b, 1, sizeof b, f)) > 0) {
            fwrite(b, 1, n, stderr);
            c->relayed += (long)n;
        }
    }
    fclose(f);
}

/* ---- the server ---- */

typedef struct serve_opts {
    const char *dir, *host, *pubkey;
    unsigned port;
} serve_opts;

typedef struct server {
    char dir[PATH_MAX];
    char tmp[PATH_MAX]; /* private directory: mnt/, nginx/, logs */
    char mnt[PATH_MAX + 8];
    char web[PATH_MAX];
    char conf[PATH_MAX + 32];
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char ip[INET6_ADDRSTRLEN]; /* numeric host, for nginx's listen and our URL */
    unsigned port;
    char authority[INET6_ADDRSTRLEN + 16]; /* host:port as in the URL and Host header */
    char url[INET6_ADDRSTRLEN + 32];
    child fs, nginx;
} server;

static int resolve_host(server *s, const char *host, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG}, *ai = NULL;
    int r = getaddrinfo(host, NULL, &hints, &ai);
    if (r != 0 || !ai) {
        errf(err, errlen, "--host %s: %s", host, gai_strerror(r));
        return -1;
    }
    memcpy(&s->addr, ai->ai_addr, ai->ai_addrlen);
    s->addrlen = ai->ai_addrlen;
    const void *a = ai->ai_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    inet_ntop(ai->ai_family, a, s->ip, sizeof s->ip);
    freeaddrinfo(ai);
    return 0;
}

static void set_port(server *s, unsigned port)
{
    s->port = port;
    if (s->addr.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&s->addr)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&s->addr)->sin_port = htons((uint16_t)port);
    int v6 = s->addr.ss_family == AF_INET6;
    snprintf(s->authority, sizeof s->authority, "%s%s%s:%u", v6 ? "[" : "", s->ip, v6 ? "]" : "",
             port);
    snprintf(s->url, sizeof s->url, "http://%s/", s->authority);
}

/* Binds the address the way nginx will (SO_REUSEADDR) to tell "port in use" apart from
 * every other failure before nginx starts, or, for port 0, to choose a free port. */
static int probe_port(server *s, unsigned port, char *err, size_t errlen)
{
    set_port(s, port);
    int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        errf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&s->addr, s->addrlen) != 0) {
        if (errno == EADDRINUSE)
            errf(err, errlen,
                 "port %u on %s is in use (choose another --port, or 0 for a free one)", port,
                 s->ip);
        else
            errf(err, errlen, "cannot listen on %s port %u: %s", s->ip, port, strerror(errno));
        rc = -1;
    } else if (port == 0) {
        struct sockaddr_storage got;
        memset(&got, 0, sizeof got);
        socklen_t gl = sizeof got;
        if (getsockname(fd, (struct sockaddr *)&got, &gl) != 0) {
            errf(err, errlen, "cannot read the port chosen on %s: %s", s->ip, strerror(errno));
            rc = -1;
        } else {
            port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                   : ((struct sockaddr_in *)&got)->sin_port);
            set_port(s, port);
        }
    }
    close(fd);
    return rc;
}

static int write_nginx_conf(server *s, char *err, size_t errlen)
{
    const char *listen = s->authority;
    FILE *f = fopen(s->conf, "we");
    if (!f) {
        errf(err, errlen, "%s: %s", s->conf, strerror(errno));
        return -1;
    }
    const char *t = s->tmp, *m = s->mnt, *w = s->web;
    fprintf(
        f,
        "# Written by annpack serve; removed when it stops.\n"
        "daemon off;\n"
        "master_process on;\n"
        "worker_processes 1;\n"
        "%s"
        "pid \"%s/nginx/nginx.pid\";\n"
        "error_log stderr warn;\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        "  access_log off;\n"
        "  log_not_found off;\n"
        "  server_tokens off;\n"
        "  client_body_temp_path \"%s/nginx/body\";\n"
        "  proxy_temp_path \"%s/nginx/proxy\";\n"
        "  fastcgi_temp_path \"%s/nginx/fastcgi\";\n"
        "  uwsgi_temp_path \"%s/nginx/uwsgi\";\n"
        "  scgi_temp_path \"%s/nginx/scgi\";\n"
        "  types {\n"
        "    text/html html; text/css css; text/javascript js; image/svg+xml svg;\n"
        "    application/json json jsonl; application/octet-stream annpack;\n"
        "  }\n"
        "  default_type application/json;\n"
        "  # As examples/nginx.conf (tests/test_serve.py checks they agree): queries are\n"
        "  # recognised on the raw request line, so the mount does the only percent-decoding\n"
        "  # ('/', '?', '%%' in the text travel as %%2F, %%3F, %%25) and a decoded %%2F..%%2F\n"
        "  # cannot lead elsewhere; a refused name's reason comes from refusal/ with 400.\n"
        "  map $request_uri $annpack_query_file {\n"
        "    \"~^/v?query/[^?]{3073}\"  \"-long\";\n"
        "    \"~^/(?<d>v?query)/(?:[?](?<a>.*))?$\"  \"/$d/?$a\";\n"
        "    \"~^/v?query/(?:[^?/]*=[^?/]*/)?\\.\\.?(?:[?].*)?$\"  \"-\";\n"
        "    \"~^/query/(?<q>[^?/]+)(?<a>[?].*)?$\"  \"/query/$q$a\";\n"
        "    \"~^/vquery/(?<q>(?:[^?/]*=[^?/]*/)?[^?/]+)(?<a>[?].*)?$\"  \"/vquery/$q$a\";\n"
        "    \"~^/v?query/\"  \"-\";\n"
        "    default  \"\";\n"
        "  }\n"
        "  server {\n"
        "    listen %s;\n"
        "    root \"%s\";\n"
        "    open_file_cache off;\n"
        "    sendfile on;\n"
        "    add_header Access-Control-Allow-Origin \"*\" always;\n"
        "    add_header Access-Control-Allow-Methods \"GET, HEAD, OPTIONS\" always;\n"
        "    add_header Access-Control-Allow-Headers \"Range\" always;\n"
        "    add_header Access-Control-Expose-Headers \"Content-Length, Content-Range, ETag\" "
        "always;\n"
        "    add_header X-Content-Type-Options nosniff always;\n"
        "    add_header Content-Security-Policy \"default-src 'none'; script-src 'self'; "
        "style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'\" always;\n"
        "    if ($request_method = OPTIONS) { return 204; }\n"
        "    if ($annpack_query_file = \"-\") { return 400 '{\"error\":\"malformed query path: a "
        "/ inside the text is sent as %%2F\"}\\n'; }\n"
        "    if ($annpack_query_file = \"-long\") { return 400 '{\"error\":\"query path of more "
        "than 3072 bytes: a query text is at most 1024 bytes once decoded\"}\\n'; }\n"
        "    if ($annpack_query_file) { rewrite ^ /annpack-query last; }\n"
        "    location = /annpack-query {\n"
        "      internal;\n"
        "      types { }\n"
        "      default_type application/json;\n"
        "      error_page 404 =400 @annpack_refused;\n"
        "      try_files $annpack_query_file =404;\n"
        "    }\n"
        "    location @annpack_refused {\n"
        "      types { }\n"
        "      default_type application/json;\n"
        "      try_files /refusal$annpack_query_file =404;\n"
        "    }\n"
        "    location /refusal/ { internal; }\n"
        "    location /query/ { return 400 '{\"error\":\"malformed query path\"}\\n'; }\n"
        "    location /vquery/ { return 400 '{\"error\":\"malformed query path\"}\\n'; }\n"
        "    location /doc/ { }\n"
        "    location = /health { }\n"
        "    location = /stats { }\n"
        "    # The virtual pack (Range requests work: nginx serves them as static files).\n"
        "    location ~ \"^/pack/(pack\\.manifest\\.json|pack\\.annpack|pack\\.meta\\.jsonl)$\" {\n"
        "      alias \"%s/$1\";\n"
        "    }\n"
        "    location /pack/ { return 404; }\n"
        "    # The search page.\n"
        "    location / { root \"%s\"; index index.html; }\n"
        "  }\n"
        "}\n",
        geteuid() == 0 ? "user root;\n" : "", t, t, t, t, t, t, listen, m, m, w);
    if (fclose(f) != 0) {
        errf(err, errlen, "%s: %s", s->conf, strerror(errno));
        return -1;
    }
    return 0;
}

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p) != 0 && errno != ENOENT ? -1 : 0;
}

/* Stops nginx, unmounts, removes the private directory. Safe to call on a half-started
 * server and more than once. Returns 0 when nothing is left behind. */
static int server_stop(server *s, char *err, size_t errlen)
{
    int rc = 0;
    child_stop(&s->nginx, 10, 1);
    /* annpackfs unmounts on SIGTERM and exits 0. */
    child_stop(&s->fs, 20, 0);
    if (s->mnt[0] && is_mounted(s->mnt)) {
        pid_t pid = fork();
        if (pid == 0) {
            execlp("fusermount3", "fusermount3", "-u", "-z", s->mnt, (char *)NULL);
            _exit(127);
        }
        int st;
        while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
    }
    reap_orphans(5);
    if (s->mnt[0] && is_mounted(s->mnt)) {
        errf(err, errlen, "%s is still mounted; left it and %s in place", s->mnt, s->tmp);
        return -1;
    }
    /* FTW_MOUNT: never walk into another filesystem, whatever happened above. */
    if (s->tmp[0] && nftw(s->tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 &&
        errno != ENOENT) {
        errf(err, errlen, "cannot remove %s: %s", s->tmp, strerror(errno));
        rc = -1;
    }
    s->tmp[0] = '\0';
    s->mnt[0] = '\0';
    return rc;
}

static int interrupted(char *err, size_t errlen)
{
    if (!g_stop) return 0;
    errf(err, errlen, "interrupted by signal %d", (int)g_stop);
    return 1;
}

/* Waits on the wake pipe for up to ms (a signal or a child's exit wakes us early). */
static void wait_tick(int ms)
{
    struct pollfd p = {.fd = g_wake[0], .events = POLLIN};
    poll(&p, 1, ms);
    wake_drain();
}

static int start_mount(server *s, char *fsexe, const serve_opts *o, char *err, size_t errlen)
{
    char opt[PATH_MAX + 16], fg[] = "-f", oflag[] = "-o";
    char *argv[8] = {fsexe, s->dir, s->mnt, fg, NULL, NULL, NULL, NULL};
    if (o->pubkey) {
        char real[PATH_MAX];
        if (!realpath(o->pubkey, real)) {
            errf(err, errlen, "--pubkey %s: %s", o->pubkey, strerror(errno));
            return -1;
        }
        if (strchr(real, ',')) {
            errf(err, errlen, "--pubkey %s: the path must not contain ','", real);
            return -1;
        }
        snprintf(opt, sizeof opt, "pubkey=%s", real);
        argv[4] = oflag;
        argv[5] = opt;
    }
    if (child_start(&s->fs, argv, err, errlen) != 0) return -1;
    double end = now_s() + MOUNT_TIMEOUT_S;
    while (!is_mounted(s->mnt)) {
        if (child_gone(&s->fs)) {
            char tail[LOG_KEEP], line[1024];
            child_log_tail(&s->fs, tail, sizeof tail);
            pick_line(tail, "refusing", line, sizeof line);
            errf(err, errlen, "%s", line);
            return -1;
        }
        if (interrupted(err, errlen)) return -1;
        if (now_s() > end) {
            errf(err, errlen, "annpackfs did not mount %s within %d s", s->dir, MOUNT_TIMEOUT_S);
            return -1;
        }
        wait_tick(20);
    }
    return 0;
}

/* 1 when nginx answers a TCP connection on our address. */
static int port_answers(const server *s)
{
    int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int ok = connect(fd, (const struct sockaddr *)&s->addr, s->addrlen) == 0;
    close(fd);
    return ok;
}

/* Returns 0 when nginx serves, -1 on failure, 1 when the port was taken after we chose it
 * (only worth retrying for --port 0). */
static int start_nginx(server *s, const char *nginx, char *err, size_t errlen)
{
    char prefix[PATH_MAX + 16], pidfile[PATH_MAX + 32];
    snprintf(prefix, sizeof prefix, "%s/nginx/", s->tmp);
    snprintf(pidfile, sizeof pidfile, "%s/nginx/nginx.pid", s->tmp);
    unlink(pidfile);
    if (write_nginx_conf(s, err, errlen) != 0) return -1;
    /* -e stderr: never touch the system's /var/log/nginx (nginx opens it before the
     * config is read). */
    char p[] = "-p", c[] = "-c", e[] = "-e", to[] = "stderr", *exe = strdup(nginx);
    char *argv[] = {exe, p, prefix, c, s->conf, e, to, NULL};
    int started = exe ? child_start(&s->nginx, argv, err, errlen) : -1;
    free(exe);
    if (started != 0) return -1;
    double end = now_s() + NGINX_TIMEOUT_S;
    for (;;) {
        if (child_gone(&s->nginx)) {
            char tail[LOG_KEEP], line[1024];
            child_log_tail(&s->nginx, tail, sizeof tail);
            if (strstr(tail, "Address already in use")) {
                errf(err, errlen, "port %u on %s is in use (nginx could not bind it)", s->port,
                     s->ip);
                return 1;
            }
            pick_line(tail, "[emerg]", line, sizeof line);
            errf(err, errlen, "nginx failed to start: %s", line);
            return -1;
        }
        /* nginx writes its pid file after binding the listening sockets. */
        if (access(pidfile, F_OK) == 0 && port_answers(s)) return 0;
        if (interrupted(err, errlen)) return -1;
        if (now_s() > end) {
            errf(err, errlen, "nginx did not start serving on %s within %d s", s->url,
                 NGINX_TIMEOUT_S);
            return -1;
        }
        wait_tick(20);
    }
}

/* Mounts o->dir and starts nginx. On failure everything started is stopped again and err
 * says why. */
static int server_start(server *s, const serve_opts *o, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->fs.name = "annpackfs";
    s->nginx.name = "nginx";
    char fsbuf[PATH_MAX + 32], nginx[PATH_MAX + 16], serr[512];
    struct stat st;
    if (!realpath(o->dir, s->dir) || stat(s->dir, &st) != 0) {
        errf(err, errlen, "%s: %s", o->dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        errf(err, errlen, "%s: not a directory (expected a pack or a packset)", o->dir);
        return -1;
    }
    char *fsexe = cli_find_annpackfs(fsbuf, sizeof fsbuf);
    if (!is_exe(fsexe)) {
        errf(err, errlen, "annpackfs not found (looked next to annpack and for $ANNPACKFS)");
        return -1;
    }
    if (find_nginx(nginx, sizeof nginx) != 0) {
        errf(err, errlen,
             "nginx not found on PATH or in /usr/sbin: install Debian's nginx-light "
             "(apt-get install nginx-light), or set ANNPACK_NGINX");
        return -1;
    }
    if (find_web(s->web, sizeof s->web) != 0) {
        errf(err, errlen, "the search page (web/index.html) was not found: set ANNPACK_WEB_DIR");
        return -1;
    }
    if (resolve_host(s, o->host, err, errlen) != 0) return -1;
    if (probe_port(s, o->port, err, errlen) != 0) return -1;

    const char *tmpdir = getenv("TMPDIR");
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/annpack-serve-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(tmpl) || !realpath(tmpl, s->tmp)) {
        errf(err, errlen, "cannot create a temporary directory %s: %s", tmpl, strerror(errno));
        return -1;
    }
    snprintf(s->mnt, sizeof s->mnt, "%s/mnt", s->tmp);
    snprintf(s->conf, sizeof s->conf, "%s/nginx/nginx.conf", s->tmp);
    snprintf(s->fs.log, sizeof s->fs.log, "%s/annpackfs.log", s->tmp);
    snprintf(s->nginx.log, sizeof s->nginx.log, "%s/nginx.log", s->tmp);
    char ndir[PATH_MAX + 8];
    snprintf(ndir, sizeof ndir, "%s/nginx", s->tmp);
    if (mkdir(s->mnt, 0700) != 0 || mkdir(ndir, 0700) != 0) {
        errf(err, errlen, "%s: %s", s->tmp, strerror(errno));
        goto fail;
    }
    if (!nginx_safe(s->tmp) || !nginx_safe(s->web)) {
        errf(err, errlen, "%s or %s has a character nginx cannot take in a path (\" \\ $ ; { } ')",
             s->tmp, s->web);
        goto fail;
    }
    if (start_mount(s, fsexe, o, err, errlen) != 0) goto fail;
    for (int tries = 0;; tries++) {
        int r = start_nginx(s, nginx, err, errlen);
        if (r == 0) break;
        /* A free port we chose was taken before nginx bound it: choose again. */
        if (r == 1 && o->port == 0 && tries < 3 && probe_port(s, 0, err, errlen) == 0) {
            s->nginx.pid = 0;
            continue;
        }
        goto fail;
    }
    return 0;
fail:
    if (server_stop(s, serr, sizeof serr) != 0) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, "; and cleaning up failed: %s", serr);
    }
    return -1;
}

/* ---- annpack serve ---- */

static const char serve_usage[] =
    "usage: annpack serve DIR [--port N] [--host ADDR] [--pubkey FILE]\n"
    "\n"
    "Serves DIR (a pack or a packset) over HTTP: mounts it with annpackfs on a private\n"
    "temporary mountpoint and runs nginx in the foreground in front of it, with permissive\n"
    "CORS headers. URLs: / (the search page), /pack/pack.manifest.json, /pack/pack.annpack\n"
    "(Range requests), /pack/pack.meta.jsonl, /query/<url-encoded text>?k=N&probe=N,\n"
    "/doc/<id>, /health, /stats. Prints the URL on stdout once it serves. Ctrl-C or\n"
    "SIGTERM stops nginx, unmounts and removes the temporary directory; SIGHUP reloads the\n"
    "mount (a newer signed version of DIR).\n"
    "\n"
    "  --port N       TCP port (default 8000; 0 picks a free one)\n"
    "  --host ADDR    address to listen on (default 127.0.0.1)\n"
    "  --pubkey FILE  require a valid signature by a key in FILE (annpackfs -o pubkey=)\n"
    "  -h, --help     show this help\n"
    "\n"
    "Needs nginx (Debian: apt-get install nginx-light). Environment: ANNPACK_NGINX,\n"
    "ANNPACKFS, ANNPACK_WEB_DIR override where nginx, annpackfs and the page are found.\n";

static const char smoke_usage[] =
    "usage: annpack smoke DIR [--port N] [--host ADDR] [--pubkey FILE]\n"
    "\n"
    "Starts what `annpack serve` starts (on a free port by default) and checks it over\n"
    "HTTP: the page (/), /health, /pack/pack.manifest.json, Range reads of\n"
    "/pack/pack.annpack against the mounted file's bytes, /pack/pack.meta.jsonl against the\n"
    "manifest's size and SHA-256, /doc/<id> and a query for the first document's own text\n"
    "whose top hit must be that document. Prints one line per check and PASS smoke (exit\n"
    "0), or names the first failing check (exit 1). Always stops and cleans up.\n"
    "\n"
    "  --port N       TCP port (default 0: a free one)\n"
    "  --host ADDR    address to listen on (default 127.0.0.1)\n"
    "  --pubkey FILE  require a valid signature by a key in FILE\n"
    "  -h, --help     show this help\n";

/* Parses DIR and the options shared by serve and smoke; returns -1 for --help, else an
 * exit status (EXIT_OK to go on). */
static int parse_opts(const char *cmd, int argc, char **argv, serve_opts *o)
{
    static const struct option opts[] = {{"port", required_argument, 0, 'p'},
                                         {"host", required_argument, 0, 'H'},
                                         {"pubkey", required_argument, 0, 'k'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    uint64_t v;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
        switch (c) {
        case 'p':
            if (!cli_parse_u64(cmd, "--port", optarg, 0, 65535, &v)) return EXIT_USAGE;
            o->port = (unsigned)v;
            break;
        case 'H':
            if (!*optarg) return cli_usage_error(cmd, "--host must not be empty");
            o->host = optarg;
            break;
        case 'k':
            o->pubkey = optarg;
            break;
        case 'h':
            return -1;
        case ':':
            return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error(cmd, optind == argc ? "expected DIR" : "expected one DIR");
    o->dir = argv[optind];
    return EXIT_OK;
}

int cmd_serve(int argc, char **argv)
{
    serve_opts o = {.host = "127.0.0.1", .port = 8000};
    int rc = parse_opts("serve", argc, argv, &o);
    if (rc < 0) {
        fputs(serve_usage, stdout);
        return EXIT_OK;
    }
    if (rc) return rc;
    char err[2048], serr[1024];
    if (signals_install() != 0) {
        fprintf(stderr, "annpack serve: cannot install signal handlers: %s\n", strerror(errno));
        return EXIT_FAIL;
    }
    server s;
    if (server_start(&s, &o, err, sizeof err) != 0) {
        fprintf(stderr, "annpack serve: %s\n", err);
        return EXIT_FAIL;
    }
    child_relay(&s.fs);
    child_relay(&s.nginx);
    fprintf(stderr, "annpack serve: serving %s on %s (Ctrl-C stops)\n", s.dir, s.url);
    printf("%s\n", s.url);
    fflush(stdout);
    rc = EXIT_OK;
    err[0] = '\0';
    while (!g_stop) {
        wait_tick(200);
        child_relay(&s.fs);
        child_relay(&s.nginx);
        if (g_hup) {
            g_hup = 0;
            kill(s.fs.pid, SIGHUP); /* annpackfs verifies and reloads; nginx needs nothing */
        }
        if (child_gone(&s.nginx)) {
            errf(err, sizeof err, "nginx exited unexpectedly (status %d)", s.nginx.status);
        } else if (child_gone(&s.fs) || !is_mounted(s.mnt)) {
            errf(err, sizeof err, "the mount of %s went away (annpackfs stopped)", s.dir);
        }
        if (err[0]) {
            rc = EXIT_FAIL;
            break;
        }
    }
    child_relay(&s.fs);
    child_relay(&s.nginx);
    if (server_stop(&s, serr, sizeof serr) != 0) {
        fprintf(stderr, "annpack serve: %s\n", serr);
        return EXIT_FAIL;
    }
    if (rc) {
        fprintf(stderr, "annpack serve: %s; stopped and cleaned up\n", err);
        return rc;
    }
    fprintf(stderr, "annpack serve: stopped (signal %d), unmounted and cleaned up\n", (int)g_stop);
    return EXIT_OK;
}

/* ---- annpack smoke ---- */

typedef struct smoke {
    server *s;
    char err[2048];
    cJSON *manifest;
    uint64_t annp_size, meta_size, n_lists;
    char meta_sha[65];
    char *first_row; /* the first line of pack.meta.jsonl */
} smoke;

static int fail(smoke *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(smoke *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->err, sizeof k->err, fmt, ap);
    va_end(ap);
    return -1;
}

static int get(smoke *k, const char *path, const char *range, http_sink sink, void *ud,
               http_resp *r)
{
    char e[512];
    if (http_get((struct sockaddr *)&k->s->addr, k->s->addrlen, k->s->authority, path, range, sink,
                 ud, 64u << 20, HTTP_TIMEOUT_S, r, e, sizeof e) != 0)
        return fail(k, "GET %s: %s", path, e);
    return 0;
}

static int expect_status(smoke *k, const char *path, const http_resp *r, int want)
{
    if (r->status == want) return 0;
    return fail(k, "GET %s: HTTP %d, expected %d", path, r->status, want);
}

/* n bytes at off of the mounted file name. */
static int read_mounted(smoke *k, const char *name, uint64_t off, size_t n, char *out)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", k->s->mnt, name);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(k, "%s: %s", p, strerror(errno));
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, out + got, n - got, (off_t)(off + got));
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) return fail(k, "%s: short read at %llu", p, (unsigned long long)off);
    return 0;
}

static int check_page(smoke *k)
{
    const char *files[] = {"/", "/app.js", "/style.css"};
    char ct[128];
    for (size_t i = 0; i < 3; i++) {
        http_resp r;
        int rc = -1;
        if (get(k, files[i], NULL, NULL, NULL, &r)) return -1;
        if (expect_status(k, files[i], &r, 200)) goto out;
        if (i == 0 &&
            (!http_header(&r, "Content-Type", ct, sizeof ct) || strncmp(ct, "text/html", 9))) {
            fail(k, "GET /: Content-Type is not text/html");
            goto out;
        }
        if (i == 0 && !strstr(r.body, "app.js")) {
            fail(k, "GET /: not the search page (no app.js)");
            goto out;
        }
        rc = 0;
    out:
        http_resp_free(&r);
        if (rc) return rc;
    }
    printf("ok   page        /, /app.js, /style.css\n");
    return 0;
}

static int check_health(smoke *k)
{
    http_resp r;
    cJSON *j = NULL;
    char v[64];
    int rc = -1;
    if (get(k, "/health", NULL, NULL, NULL, &r)) return -1;
    if (expect_status(k, "/health", &r, 200)) goto out;
    j = cJSON_Parse(r.body);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    if (!cJSON_IsString(st) || strcmp(st->valuestring, "ok")) {
        fail(k, "GET /health: no \"status\":\"ok\" in %.200s", r.body);
        goto out;
    }
    if (!http_header(&r, "Access-Control-Allow-Origin", v, sizeof v) || strcmp(v, "*")) {
        fail(k, "GET /health: no Access-Control-Allow-Origin: * header");
        goto out;
    }
    printf("ok   health      %.*s\n", (int)strcspn(r.body, "\n"), r.body);
    rc = 0;
out:
    cJSON_Delete(j);
    http_resp_free(&r);
    return rc;
}

static const cJSON *json_at(const cJSON *o, const char *a, const char *b, const char *c)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    if (c) x = cJSON_GetObjectItemCaseSensitive(x, c);
    return x;
}

static uint64_t json_u64(const cJSON *o, const char *a, const char *b, const char *c)
{
    const cJSON *x = json_at(o, a, b, c);
    return cJSON_IsNumber(x) && x->valuedouble >= 0 ? (uint64_t)x->valuedouble : 0;
}

static int check_manifest(smoke *k)
{
    const char *path = "/pack/pack.manifest.json";
    http_resp r;
    char *disk = NULL;
    int rc = -1;
    if (get(k, path, NULL, NULL, NULL, &r)) return -1;
    if (expect_status(k, path, &r, 200)) goto out;
    if (!(disk = malloc(r.body_len + 1))) {
        fail(k, "out of memory");
        goto out;
    }
    if (read_mounted(k, "pack.manifest.json", 0, r.body_len, disk)) goto out;
    if (memcmp(disk, r.body, r.body_len)) {
        fail(k, "GET %s: the bytes differ from the mounted file", path);
        goto out;
    }
    if (!(k->manifest = cJSON_Parse(r.body))) {
        fail(k, "GET %s: not JSON", path);
        goto out;
    }
    k->annp_size = json_u64(k->manifest, "files", "pack.annpack", "size");
    k->meta_size = json_u64(k->manifest, "files", "pack.meta.jsonl", "size");
    k->n_lists = json_u64(k->manifest, "n_lists", NULL, NULL);
    const cJSON *sha = json_at(k->manifest, "files", "pack.meta.jsonl", "sha256");
    if (cJSON_IsString(sha)) snprintf(k->meta_sha, sizeof k->meta_sha, "%s", sha->valuestring);
    if (k->annp_size < 72 || !k->meta_sha[0] || !k->n_lists) {
        fail(k, "GET %s: no files.pack.annpack.size, files.pack.meta.jsonl.sha256 or n_lists",
             path);
        goto out;
    }
    const cJSON *sig = json_at(k->manifest, "packset", "signature", NULL);
    printf("ok   manifest    %llu vectors, %llu lists, signature %s\n",
           (unsigned long long)json_u64(k->manifest, "n_vectors", NULL, NULL),
           (unsigned long long)k->n_lists, cJSON_IsString(sig) ? sig->valuestring : "?");
    rc = 0;
out:
    free(disk);
    http_resp_free(&r);
    return rc;
}

/* One Range read of /pack/pack.annpack compared with the mounted file. */
static int check_range_at(smoke *k, uint64_t off, size_t len)
{
    const char *path = "/pack/pack.annpack";
    char range[64], want_cr[96], cr[96];
    unsigned long long first = off, last = off + len - 1;
    snprintf(range, sizeof range, "bytes=%llu-%llu", first, last);
    snprintf(want_cr, sizeof want_cr, "bytes %llu-%llu/%llu", first, last,
             (unsigned long long)k->annp_size);
    http_resp r;
    char *disk = NULL;
    int rc = -1;
    if (get(k, path, range, NULL, NULL, &r)) return -1;
    if (expect_status(k, path, &r, 206)) goto out;
    if (!http_header(&r, "Content-Range", cr, sizeof cr) || strcmp(cr, want_cr)) {
        fail(k, "GET %s (Range %s): Content-Range is not '%s'", path, range, want_cr);
        goto out;
    }
    if (r.body_len != len) {
        fail(k, "GET %s (Range %s): %zu bytes, expected %zu", path, range, r.body_len, len);
        goto out;
    }
    if (!(disk = malloc(len))) {
        fail(k, "out of memory");
        goto out;
    }
    if (read_mounted(k, "pack.annpack", off, len, disk)) goto out;
    if (memcmp(disk, r.body, len)) {
        fail(k, "GET %s (Range %s): the bytes differ from the mounted file", path, range);
        goto out;
    }
    rc = 0;
out:
    free(disk);
    http_resp_free(&r);
    return rc;
}

static int check_range(smoke *k)
{
    uint64_t mid = k->annp_size / 2;
    size_t len = k->annp_size - mid < 4096 ? (size_t)(k->annp_size - mid) : 4096;
    if (check_range_at(k, 0, 72) || check_range_at(k, mid, len)) return -1;
    printf("ok   range       bytes 0-71 and %llu-%llu of %llu match the mounted file\n",
           (unsigned long long)mid, (unsigned long long)(mid + len - 1),
           (unsigned long long)k->annp_size);
    return 0;
}

typedef struct meta_sink {
    crypto_hash_sha256_state h;
    char *first;
    size_t first_len, first_cap;
    int first_done;
} meta_sink;

static int meta_chunk(void *ud, const char *data, size_t len)
{
    meta_sink *m = ud;
    crypto_hash_sha256_update(&m->h, (const unsigned char *)data, len);
    if (!m->first_done) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (m->first_len + take > (1u << 20) + 1) return -1; /* ANNPACK_META_MAX_LINE */
        if (m->first_len + take + 1 > m->first_cap) {
            size_t cap = m->first_len + take + 1 + 4096;
            char *p = realloc(m->first, cap);
            if (!p) return -1;
            m->first = p;
            m->first_cap = cap;
        }
        memcpy(m->first + m->first_len, data, take);
        m->first_len += take;
        m->first[m->first_len] = '\0';
        m->first_done = nl != NULL;
    }
    return 0;
}

static int check_meta(smoke *k)
{
    const char *path = "/pack/pack.meta.jsonl";
    meta_sink m = {0};
    unsigned char dig[crypto_hash_sha256_BYTES];
    char hex[65];
    http_resp r;
    int rc = -1;
    crypto_hash_sha256_init(&m.h);
    if (get(k, path, NULL, meta_chunk, &m, &r)) goto out_first;
    if (expect_status(k, path, &r, 200)) goto out;
    crypto_hash_sha256_final(&m.h, dig);
    sodium_bin2hex(hex, sizeof hex, dig, sizeof dig);
    if (r.body_len != k->meta_size) {
        fail(k, "GET %s: %zu bytes, the manifest says %llu", path, r.body_len,
             (unsigned long long)k->meta_size);
        goto out;
    }
    if (strcmp(hex, k->meta_sha)) {
        fail(k, "GET %s: SHA-256 %s, the manifest says %s", path, hex, k->meta_sha);
        goto out;
    }
    if (!m.first_len) {
        fail(k, "GET %s: no rows", path);
        goto out;
    }
    k->first_row = m.first;
    m.first = NULL;
    printf("ok   meta        %zu bytes, SHA-256 matches the manifest\n", r.body_len);
    rc = 0;
out:
    http_resp_free(&r);
out_first:
    free(m.first);
    return rc;
}

/* The text column: the manifest's build.text_col (the mount's virtual manifest has no
 * build block, so also DIR's own manifest, or its base's), else "text". */
static void text_column(smoke *k, char *out, size_t len)
{
    snprintf(out, len, "text");
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(k->manifest, "build"), "text_col");
    if (cJSON_IsString(tc)) {
        snprintf(out, len, "%s", tc->valuestring);
        return;
    }
    const char *cands[] = {"pack.manifest.json", "base/pack.manifest.json"};
    for (size_t i = 0; i < 2; i++) {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/%s", k->s->dir, cands[i]);
        FILE *f = fopen(p, "re");
        if (!f) continue;
        char *buf = malloc(AP_MAX_MANIFEST_BYTES + 1);
        size_t n = buf ? fread(buf, 1, AP_MAX_MANIFEST_BYTES, f) : 0;
        fclose(f);
        if (!buf) return;
        buf[n] = '\0';
        cJSON *j = cJSON_Parse(buf);
        free(buf);
        tc = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "build"),
                                              "text_col");
        int found = cJSON_IsString(tc);
        if (found) snprintf(out, len, "%s", tc->valuestring);
        cJSON_Delete(j);
        if (found) return;
    }
}

/* Percent-encodes s (every byte but A-Z a-z 0-9 - . _ ~) into out, stopping before a
 * UTF-8 sequence that would not fit. */
static void url_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t seq = *p < 0x80 ? 1 : *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
        if (o + seq * 3 + 1 > cap) break;
        for (size_t i = 0; i < seq && *p; i++, p++) {
            if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '.' || *p == '_' || *p == '~') {
                out[o++] = (char)*p;
            } else {
                out[o++] = '%';
                out[o++] = hex[*p >> 4];
                out[o++] = hex[*p & 15];
            }
        }
    }
    out[o] = '\0';
}

/* GET path and parse its JSON body into *out (caller frees). */
static int get_json(smoke *k, const char *path, const char *what, cJSON **out)
{
    http_resp r;
    int rc = -1;
    *out = NULL;
    if (get(k, path, NULL, NULL, NULL, &r)) return -1;
    if (expect_status(k, what, &r, 200)) goto out;
    if (!(*out = cJSON_Parse(r.body))) {
        fail(k, "GET %s: not JSON: %.200s", what, r.body);
        goto out;
    }
    rc = 0;
out:
    http_resp_free(&r);
    return rc;
}

static int check_doc_and_query(smoke *k)
{
    char col[256], path[1200], enc[800];
    cJSON *doc = NULL, *res = NULL;
    int rc = -1;
    text_column(k, col, sizeof col);
    cJSON *row = cJSON_Parse(k->first_row);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(row, "id");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(row, col);
    if (!cJSON_IsNumber(id) || !cJSON_IsString(text) || !text->valuestring[0]) {
        fail(k,
             "the first row of pack.meta.jsonl has no integer \"id\" and non-empty string "
             "\"%s\": %.200s",
             col, k->first_row);
        goto out;
    }
    long long want = (long long)id->valuedouble;

    snprintf(path, sizeof path, "/doc/%lld", want);
    if (get_json(k, path, path, &doc)) goto out;
    const cJSON *did = cJSON_GetObjectItemCaseSensitive(doc, "id");
    if (!cJSON_IsNumber(did) || (long long)did->valuedouble != want) {
        fail(k, "GET %s: not the row with id %lld", path, want);
        goto out;
    }
    printf("ok   doc         %s\n", path);

    /* The mount caps a query file name at 1024 bytes, so a long text is cut. Probing every
     * list makes the search exact: the check does not depend on the IVF's recall. */
    url_encode(text->valuestring, enc, sizeof enc);
    uint64_t probe = k->n_lists < AP_MAX_PROBE ? k->n_lists : AP_MAX_PROBE;
    snprintf(path, sizeof path, "/query/%s?k=3&probe=%llu", enc, (unsigned long long)probe);
    if (get_json(k, path, "/query/<the first row's text>", &res)) goto out;
    const cJSON *hits = cJSON_GetObjectItemCaseSensitive(res, "results");
    const cJSON *tid = cJSON_GetObjectItemCaseSensitive(
        cJSON_IsArray(hits) ? cJSON_GetArrayItem(hits, 0) : NULL, "id");
    if (!cJSON_IsNumber(tid)) {
        fail(k, "the query for the text of document %lld found nothing", want);
        goto out;
    }
    if ((long long)tid->valuedouble != want) {
        fail(k, "the top hit for the text of document %lld is document %lld", want,
             (long long)tid->valuedouble);
        goto out;
    }
    printf("ok   query       the text of document %lld finds it first\n", want);
    rc = 0;
out:
    cJSON_Delete(res);
    cJSON_Delete(doc);
    cJSON_Delete(row);
    return rc;
}

int cmd_smoke(int argc, char **argv)
{
    serve_opts o = {.host = "127.0.0.1", .port = 0};
    int rc = parse_opts("smoke", argc, argv, &o);
    if (rc < 0) {
        fputs(smoke_usage, stdout);
        return EXIT_OK;
    }
    if (rc) return rc;
    if (signals_install() != 0 || sodium_init() < 0) {
        fprintf(stderr, "annpack smoke: cannot initialise: %s\n", strerror(errno));
        return EXIT_FAIL;
    }
    server s;
    smoke k = {.s = &s};
    char serr[1024];
    if (server_start(&s, &o, k.err, sizeof k.err) != 0) {
        fprintf(stderr, "annpack smoke: FAIL serve: %s\n", k.err);
        return EXIT_FAIL;
    }
    printf("ok   serve       %s on %s\n", s.dir, s.url);
    static const struct {
        const char *name;
        int (*fn)(smoke *);
    } checks[] = {{"page", check_page},   {"health", check_health}, {"manifest", check_manifest},
                  {"range", check_range}, {"meta", check_meta},     {"query", check_doc_and_query}};
    const char *failed = NULL;
    for (size_t i = 0; i < sizeof checks / sizeof checks[0] && !failed; i++) {
        if (g_stop) {
            snprintf(k.err, sizeof k.err, "interrupted by signal %d", (int)g_stop);
            failed = checks[i].name;
        } else if (checks[i].fn(&k) != 0) {
            failed = checks[i].name;
        }
        fflush(stdout);
    }
    cJSON_Delete(k.manifest);
    free(k.first_row);
    if (failed) {
        /* What the children said may explain it (an annpackfs error line, say). */
        child_relay(&s.fs);
        child_relay(&s.nginx);
    }
    int stopped = server_stop(&s, serr, sizeof serr);
    if (failed) {
        fprintf(stderr, "annpack smoke: FAIL %s: %s\n", failed, k.err);
        return EXIT_FAIL;
    }
    if (stopped != 0) {
        fprintf(stderr, "annpack smoke: FAIL cleanup: %s\n", serr);
        return EXIT_FAIL;
    }
    puts("PASS smoke");
    return EXIT_OK;
}
