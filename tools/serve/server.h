/* The server behind `annpack serve` and `annpack smoke`: annpackfs mounts DIR on a private
 * temporary mountpoint and nginx serves that mount and the search page. Starting it,
 * stopping it, and nothing left behind. */
#ifndef ANNPACK_TOOLS_SERVE_SERVER_H
#define ANNPACK_TOOLS_SERVE_SERVER_H

#include <arpa/inet.h>
#include <limits.h>
#include <sys/socket.h>

#include "supervise.h"

typedef struct serve_opts {
    const char *dir, *host, *pubkey;
    const char *verify;                     /* annpackfs -o verify= (NULL: its default) */
    const char *embed_url, *embed_key_file; /* annpackfs -o embed_url=, embed_key_file= */
    unsigned port;
} serve_opts;

typedef struct server {
    char dir[PATH_MAX];
    char tmp[PATH_MAX]; /* private directory: mnt/, nginx/, logs */
    char mnt[PATH_MAX + 8];
    char web[PATH_MAX];
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char ip[INET6_ADDRSTRLEN]; /* numeric host, for nginx's listen and our URL */
    unsigned port;
    char authority[INET6_ADDRSTRLEN + 16]; /* host:port as in the URL and Host header */
    char url[INET6_ADDRSTRLEN + 32];       /* http://AUTHORITY/ */
    child fs, nginx;
} server;

/* Finds annpackfs, nginx and the page, checks the port, creates the private directory,
 * mounts o->dir and starts nginx. On failure everything started is stopped again and err
 * says why. */
int server_start(server *s, const serve_opts *o, char *err, size_t errlen);

/* Stops nginx, unmounts, removes the private directory. Safe to call on a half-started
 * server and more than once. Returns 0 when nothing is left behind. */
int server_stop(server *s, char *err, size_t errlen);

/* Passes on what both programs logged since the last call (child_relay). */
void server_relay(server *s, int all);

/* 1 while the mount is up. */
int server_mounted(const server *s);

#endif
