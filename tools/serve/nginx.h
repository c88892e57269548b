/* nginx for `annpack serve`: finding it, its config (tools/serve/nginx.conf.in, built in,
 * with serve's values, inside the http{} block of a private nginx) and starting it. */
#ifndef ANNPACK_TOOLS_SERVE_NGINX_H
#define ANNPACK_TOOLS_SERVE_NGINX_H

#include <stddef.h>
#include <sys/socket.h>

#include "supervise.h"

/* What one private nginx serves, and where it keeps its files. */
typedef struct nginx_site {
    const char *dir;    /* private directory: DIR/nginx/ holds the config, pid file, temp paths */
    const char *listen; /* "ADDR:PORT" ("[ADDR]:PORT" for IPv6) */
    const char *mount;  /* the mountpoint: its pack files under /pack/, its answers */
    const char *web;    /* the search page at / */
    const struct sockaddr *addr; /* the address it must answer on */
    socklen_t addrlen;
    const char *ip, *url; /* for messages: the numeric address, the site's URL */
    unsigned port;
} nginx_site;

/* nginx: $ANNPACK_NGINX, PATH, then the sbin directories PATH often lacks for non-root.
 * Returns -1 when none is executable. */
int nginx_find(char *out, size_t len);

/* nginx reads the config's paths inside double quotes and expands '$': 0 for a path it
 * would misread (refuse it rather than write a config that means something else). */
int nginx_safe(const char *path);

/* Writes the config to path. */
int nginx_write_conf(const nginx_site *s, const char *path, char *err, size_t errlen);

/* Writes the config and runs `nginx -p DIR/nginx/ -c CONF -e stderr` as c, waiting until
 * it serves: its pid file exists (it writes it after binding) and the address answers.
 * Returns 0 when it serves, 1 when its port was taken (EADDRINUSE: worth retrying on
 * another port), -1 on any other failure. err says why. */
int nginx_start(child *c, const char *exe, const nginx_site *s, char *err, size_t errlen);

#endif
