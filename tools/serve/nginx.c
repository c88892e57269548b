/* nginx for annpack serve: see nginx.h. The config is the one template,
 * tools/serve/nginx.conf.in (examples/nginx.conf is the same text with the example's
 * values), compiled in as nginx_conf_template by tools/serve/nginx_conf.py: the template
 * and the code that fills in its values are built together, so they always agree. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "nginx.h"
#include "nginx_conf.h"

#define NGINX_TIMEOUT_S 20

int nginx_find(char *out, size_t len)
{
    const char *env = getenv("ANNPACK_NGINX");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return sv_is_exe(out) ? 0 : -1;
    }
    const char *path = getenv("PATH");
    char dirs[8192];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin:/usr/local/sbin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (snprintf(out, len, "%s/nginx", d) < (int)len && sv_is_exe(out)) return 0;
    }
    return -1;
}

int nginx_safe(const char *path)
{
    return !strpbrk(path, "\"\\$;{}\n\r'");
}

typedef struct var {
    const char *name, *value;
} var;

/* Copies the template to f with each @NAME@ (capitals) replaced by its value. */
static int render(FILE *f, const char *tmpl, const var *vars, size_t nvars, char *err,
                  size_t errlen)
{
    for (const char *p = tmpl; *p;) {
        const char *at = strchr(p, '@');
        size_t n = at ? (size_t)(at - p) : strlen(p);
        fwrite(p, 1, n, f);
        if (!at) break;
        size_t name = strspn(at + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
        if (!name || at[1 + name] != '@') { /* nginx's own @name */
            fputc('@', f);
            p = at + 1;
            continue;
        }
        size_t i = 0;
        while (i < nvars && (strlen(vars[i].name) != name || strncmp(vars[i].name, at + 1, name)))
            i++;
        if (i == nvars) {
            cli_errf(err, errlen, "the nginx template has @%.*s@, which serve has no value for",
                     (int)name, at + 1);
            return -1;
        }
        fputs(vars[i].value, f);
        p = at + name + 2;
    }
    return 0;
}

int nginx_write_conf(const nginx_site *s, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "we");
    if (!f) {
        cli_errf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    const char *d = s->dir;
    /* The private instance around the template: in the foreground, its pid file and
     * temporary paths in DIR/nginx, its errors on stderr (our log of it), no access log. */
    fprintf(f,
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
            "\n",
            geteuid() == 0 ? "user root;\n" : "", d, d, d, d, d, d);
    char page[PATH_MAX + 64];
    snprintf(page, sizeof page, " root \"%s\"; index index.html;", s->web);
    const var vars[] = {
        {"LISTEN", s->listen}, {"MOUNT", s->mount}, {"PACK_URL", "/pack/"}, {"PAGE", page}};
    int rc = render(f, nginx_conf_template, vars, sizeof vars / sizeof vars[0], err, errlen);
    fputs("}\n", f);
    if (fclose(f) != 0 && rc == 0) {
        cli_errf(err, errlen, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* 1 when something accepts a TCP connection on the address. */
static int answers(const nginx_site *s)
{
    int fd = socket(s->addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int ok = connect(fd, s->addr, s->addrlen) == 0;
    close(fd);
    return ok;
}

/* Why nginx exited while starting: 1 for a taken port, else -1. */
static int start_failure(const child *c, const nginx_site *s, char *err, size_t errlen)
{
    char tail[SV_LOG_KEEP], line[1024];
    child_log_tail(c, tail, sizeof tail);
    if (strstr(tail, "Address already in use")) {
        cli_errf(err, errlen, "port %u on %s is in use (nginx could not bind it)", s->port, s->ip);
        return 1;
    }
    sv_pick_line(tail, "[emerg]", line, sizeof line);
    cli_errf(err, errlen, "nginx failed to start: %s", line);
    return -1;
}

int nginx_start(child *c, const char *exe, const nginx_site *s, char *err, size_t errlen)
{
    char prefix[PATH_MAX + 16], pidfile[PATH_MAX + 32], conf[PATH_MAX + 32];
    snprintf(prefix, sizeof prefix, "%s/nginx/", s->dir);
    snprintf(pidfile, sizeof pidfile, "%s/nginx/nginx.pid", s->dir);
    snprintf(conf, sizeof conf, "%s/nginx/nginx.conf", s->dir);
    unlink(pidfile);
    if (nginx_write_conf(s, conf, err, errlen) != 0) return -1;
    /* -e stderr: never touch the system's /var/log/nginx (nginx opens it before the
     * config is read). */
    char p[] = "-p", cf[] = "-c", e[] = "-e", to[] = "stderr", *prog = strdup(exe);
    char *argv[] = {prog, p, prefix, cf, conf, e, to, NULL};
    int started = prog ? child_start(c, argv, err, errlen) : -1;
    free(prog);
    if (started != 0) return -1;
    double end = sv_now() + NGINX_TIMEOUT_S;
    for (;;) {
        if (child_gone(c)) return start_failure(c, s, err, errlen);
        if (access(pidfile, F_OK) == 0 && answers(s)) return 0;
        if (sv_interrupted(err, errlen)) return -1;
        if (sv_now() > end) {
            cli_errf(err, errlen, "nginx did not start serving on %s within %d s", s->url,
                     NGINX_TIMEOUT_S);
            return -1;
        }
        sv_wait_tick(20);
    }
}
