/* The server of annpack serve and smoke: see server.h. */
#include <errno.h>
#include <ftw.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "mounts.h"
#include "nginx.h"
#include "server.h"

#ifndef ANNPACK_SOURCE_WEB_DIR
#define ANNPACK_SOURCE_WEB_DIR ""
#endif
#ifndef ANNPACK_DATA_WEB_DIR
#define ANNPACK_DATA_WEB_DIR ""
#endif

#define MOUNT_TIMEOUT_S 300 /* verify=full hashes every byte first: allow big packs */

/* ---- the parts ---- */

static int has_index(const char *dir)
{
    char p[PATH_MAX + 48];
    snprintf(p, sizeof p, "%s/index.html", dir);
    return access(p, R_OK) == 0;
}

/* A page directory: its built form dir/dist (`npm run build` in web/: minified, hashed
 * names, SRI) when there is one, else dir itself. out holds PATH_MAX bytes. */
static int page_in(const char *dir, char *out)
{
    char dist[PATH_MAX + 8];
    snprintf(dist, sizeof dist, "%s/dist", dir);
    if (has_index(dist) && realpath(dist, out)) return 0;
    return has_index(dir) && realpath(dir, out) ? 0 : -1;
}

/* The page: $ANNPACK_WEB_DIR, the installed datadir beside the binary (bin/../share), the
 * configured datadir, then the source tree this binary was built from; each one's dist/
 * first (page_in). out holds PATH_MAX bytes. */
static int find_web(char *out)
{
    const char *env = getenv("ANNPACK_WEB_DIR");
    if (env && *env) return page_in(env, out);
    char self[PATH_MAX], cand[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) *slash = '\0';
        snprintf(cand, sizeof cand, "%s/../share/annpack/web", self);
        if (page_in(cand, out) == 0) return 0;
    }
    const char *fixed[] = {ANNPACK_DATA_WEB_DIR, ANNPACK_SOURCE_WEB_DIR};
    for (size_t i = 0; i < 2; i++)
        if (fixed[i][0] && page_in(fixed[i], out) == 0) return 0;
    return -1;
}

/* DIR, annpackfs, nginx and the page; fsexe and nginx receive the programs' paths. */
static int find_parts(server *s, const serve_opts *o, char *fsexe, size_t fslen, char *nginx,
                      size_t nglen, char *err, size_t errlen)
{
    struct stat st;
    if (!realpath(o->dir, s->dir) || stat(s->dir, &st) != 0) {
        cli_errf(err, errlen, "%s: %s", o->dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_errf(err, errlen, "%s: not a directory (expected a pack or a packset)", o->dir);
        return -1;
    }
    if (!sv_is_exe(cli_find_annpackfs(fsexe, fslen))) {
        cli_errf(err, errlen, "annpackfs not found (looked next to annpack and for $ANNPACKFS)");
        return -1;
    }
    if (nginx_find(nginx, nglen) != 0) {
        cli_errf(err, errlen,
                 "nginx not found on PATH or in /usr/sbin: install Debian's nginx-light "
                 "(apt-get install nginx-light), or set ANNPACK_NGINX");
        return -1;
    }
    if (find_web(s->web) != 0) {
        cli_errf(err, errlen,
                 "the search page (web/index.html) was not found: set ANNPACK_WEB_DIR");
        return -1;
    }
    return 0;
}

/* ---- the address ---- */

static int resolve_host(server *s, const char *host, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG}, *ai = NULL;
    int r = getaddrinfo(host, NULL, &hints, &ai);
    if (r != 0 || !ai) {
        cli_errf(err, errlen, "--host %s: %s", host, gai_strerror(r));
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

/* The port the kernel chose for fd (bound to port 0). */
static int chosen_port(server *s, int fd, char *err, size_t errlen)
{
    struct sockaddr_storage got;
    memset(&got, 0, sizeof got);
    socklen_t gl = sizeof got;
    if (getsockname(fd, (struct sockaddr *)&got, &gl) != 0) {
        cli_errf(err, errlen, "cannot read the port chosen on %s: %s", s->ip, strerror(errno));
        return -1;
    }
    set_port(s, ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                : ((struct sockaddr_in *)&got)->sin_port));
    return 0;
}

/* Binds the address the way nginx will (SO_REUSEADDR) to tell "port in use" apart from
 * every other failure before nginx starts, or, for port 0, to choose a free port. */
static int probe_port(server *s, unsigned port, char *err, size_t errlen)
{
    set_port(s, port);
    int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        cli_errf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&s->addr, s->addrlen) != 0) {
        if (errno == EADDRINUSE)
            cli_errf(err, errlen,
                     "port %u on %s is in use (choose another --port, or 0 for a free one)", port,
                     s->ip);
        else
            cli_errf(err, errlen, "cannot listen on %s port %u: %s", s->ip, port, strerror(errno));
        rc = -1;
    } else if (port == 0) {
        rc = chosen_port(s, fd, err, errlen);
    }
    close(fd);
    return rc;
}

/* ---- the private directory and the two programs ---- */

static int make_private_dir(server *s, char *err, size_t errlen)
{
    const char *tmpdir = getenv("TMPDIR");
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/annpack-serve-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(tmpl) || !realpath(tmpl, s->tmp)) {
        cli_errf(err, errlen, "cannot create a temporary directory %s: %s", tmpl, strerror(errno));
        return -1;
    }
    snprintf(s->mnt, sizeof s->mnt, "%s/mnt", s->tmp);
    snprintf(s->fs.log, sizeof s->fs.log, "%s/annpackfs.log", s->tmp);
    snprintf(s->nginx.log, sizeof s->nginx.log, "%s/nginx.log", s->tmp);
    char ndir[PATH_MAX + 8];
    snprintf(ndir, sizeof ndir, "%s/nginx", s->tmp);
    if (mkdir(s->mnt, 0700) != 0 || mkdir(ndir, 0700) != 0) {
        cli_errf(err, errlen, "%s: %s", s->tmp, strerror(errno));
        return -1;
    }
    if (!nginx_safe(s->tmp) || !nginx_safe(s->web)) {
        cli_errf(err, errlen,
                 "%s or %s has a character nginx cannot take in a path (\" \\ $ ; { } ')", s->tmp,
                 s->web);
        return -1;
    }
    return 0;
}

/* annpackfs DIR MNT -f [-o pubkey=FILE,embed_key_file=F,embed_url=U,verify=V], waiting until
 * the mount is live. */
static int start_mount(server *s, char *fsexe, const serve_opts *o, char *err, size_t errlen)
{
    char opt[3 * PATH_MAX + 64] = "", fg[] = "-f", oflag[] = "-o";
    char *argv[8] = {fsexe, s->dir, s->mnt, fg, NULL, NULL, NULL, NULL};
    const char *names[3] = {"pubkey", "embed_key_file", "embed_url"};
    const char *vals[3] = {o->pubkey, o->embed_key_file, o->embed_url};
    for (int i = 0; i < 3; i++) {
        if (!vals[i]) continue;
        char real[PATH_MAX];
        if (i < 2 && !realpath(vals[i], real)) {
            cli_errf(err, errlen, "--%s %s: %s", i ? "embed-key-file" : "pubkey", vals[i],
                     strerror(errno));
            return -1;
        }
        const char *v = i < 2 ? real : vals[i];
        if (strchr(v, ',')) {
            cli_errf(err, errlen, "%s %s: must not contain ','", names[i], v);
            return -1;
        }
        size_t at = strlen(opt);
        snprintf(opt + at, sizeof opt - at, "%s%s=%.*s", at ? "," : "", names[i], PATH_MAX, v);
        argv[4] = oflag;
        argv[5] = opt;
    }
    if (o->verify) {
        size_t n = strlen(opt);
        snprintf(opt + n, sizeof opt - n, "%sverify=%s", n ? "," : "", o->verify);
        argv[4] = oflag;
        argv[5] = opt;
    }
    if (child_start(&s->fs, argv, err, errlen) != 0) return -1;
    double end = sv_now() + MOUNT_TIMEOUT_S;
    while (!mounts_has(s->mnt)) {
        if (child_gone(&s->fs)) {
            char tail[SV_LOG_KEEP], line[1024];
            child_log_tail(&s->fs, tail, sizeof tail);
            sv_pick_line(tail, "refusing", line, sizeof line);
            cli_errf(err, errlen, "%s", line);
            return -1;
        }
        if (sv_interrupted(err, errlen)) return -1;
        if (sv_now() > end) {
            cli_errf(err, errlen, "annpackfs did not mount %s within %d s", s->dir,
                     MOUNT_TIMEOUT_S);
            return -1;
        }
        sv_wait_tick(20);
    }
    return 0;
}

/* nginx in front of the mount; for --port 0, another free port when the one chosen was
 * taken before nginx bound it (up to three times). */
static int start_nginx(server *s, const char *exe, const serve_opts *o, char *err, size_t errlen)
{
    for (int tries = 0;; tries++) {
        nginx_site site = {.dir = s->tmp,
                           .listen = s->authority,
                           .mount = s->mnt,
                           .web = s->web,
                           .addr = (const struct sockaddr *)&s->addr,
                           .addrlen = s->addrlen,
                           .ip = s->ip,
                           .url = s->url,
                           .port = s->port};
        int r = nginx_start(&s->nginx, exe, &site, err, errlen);
        if (r == 0) return 0;
        if (r != 1 || o->port != 0 || tries >= 3 || probe_port(s, 0, err, errlen) != 0) return -1;
        s->nginx.pid = 0;
    }
}

int server_start(server *s, const serve_opts *o, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->fs.name = "annpackfs";
    s->nginx.name = "nginx";
    char fsexe[PATH_MAX + 32], nginx[PATH_MAX + 16], serr[512];
    if (find_parts(s, o, fsexe, sizeof fsexe, nginx, sizeof nginx, err, errlen) != 0 ||
        resolve_host(s, o->host, err, errlen) != 0 || probe_port(s, o->port, err, errlen) != 0)
        return -1;
    if (make_private_dir(s, err, errlen) == 0 && start_mount(s, fsexe, o, err, errlen) == 0 &&
        start_nginx(s, nginx, o, err, errlen) == 0)
        return 0;
    if (server_stop(s, serr, sizeof serr) != 0) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, "; and cleaning up failed: %s", serr);
    }
    return -1;
}

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p) != 0 && errno != ENOENT ? -1 : 0;
}

int server_stop(server *s, char *err, size_t errlen)
{
    int rc = 0;
    child_stop(&s->nginx, 10, 1);
    /* annpackfs unmounts on SIGTERM and exits 0. */
    child_stop(&s->fs, 20, 0);
    int left = s->mnt[0] && mounts_detach(s->mnt);
    sv_reap_orphans(5);
    if (left || (s->mnt[0] && mounts_has(s->mnt))) {
        cli_errf(err, errlen, "%s is still mounted; left it and %s in place", s->mnt, s->tmp);
        return -1;
    }
    /* FTW_MOUNT: never walk into another filesystem, whatever happened above. */
    if (s->tmp[0] && nftw(s->tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 &&
        errno != ENOENT) {
        cli_errf(err, errlen, "cannot remove %s: %s", s->tmp, strerror(errno));
        rc = -1;
    }
    s->tmp[0] = '\0';
    s->mnt[0] = '\0';
    return rc;
}

void server_relay(server *s, int all)
{
    child_relay(&s->fs, all);
    child_relay(&s->nginx, all);
}

int server_mounted(const server *s)
{
    return mounts_has(s->mnt);
}
