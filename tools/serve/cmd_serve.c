/* annpack serve: a pack or packset served over HTTP on real parts — annpackfs mounts it on
 * a private temporary mountpoint, nginx serves the mount and the search page (server.h) —
 * in the foreground until a signal stops it. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_serve.h"

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
    "  --embed-url URL, --embed-key-file FILE   the embedding service of a pack built\n"
    "                 with one (annpackfs -o embed_url=, embed_key_file=; else\n"
    "                 ANNPACK_EMBED_URL, ANNPACK_EMBED_API_KEY; docs/EMBEDDERS.md)\n"
    "  -h, --help     show this help\n"
    "\n"
    "Needs nginx (Debian: apt-get install nginx-light). Environment: ANNPACK_NGINX,\n"
    "ANNPACKFS, ANNPACK_WEB_DIR override where nginx, annpackfs and the page are found.\n";

int serve_parse_opts(const char *cmd, int argc, char **argv, serve_opts *o)
{
    static const struct option opts[] = {{"port", required_argument, 0, 'p'},
                                         {"host", required_argument, 0, 'H'},
                                         {"pubkey", required_argument, 0, 'k'},
                                         {"embed-url", required_argument, 0, 'u'},
                                         {"embed-key-file", required_argument, 0, 'K'},
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
        case 'u':
            if (strchr(optarg, ','))
                return cli_usage_error(cmd, "--embed-url must not contain ','");
            o->embed_url = optarg;
            break;
        case 'K':
            o->embed_key_file = optarg;
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

/* Relays the programs' logs and passes SIGHUP on to annpackfs until a signal asks us to
 * stop (EXIT_OK) or one of the two goes away (EXIT_FAIL, err says which). */
static int serve_until_stopped(server *s, char *err, size_t errlen)
{
    while (!sv_stop_signal()) {
        sv_wait_tick(200);
        server_relay(s, 0);
        if (sv_take_hup())
            kill(s->fs.pid, SIGHUP); /* annpackfs verifies and reloads; nginx needs nothing */
        if (child_gone(&s->nginx)) {
            cli_errf(err, errlen, "nginx exited unexpectedly (status %d)", s->nginx.status);
            return EXIT_FAIL;
        }
        if (child_gone(&s->fs) || !server_mounted(s)) {
            cli_errf(err, errlen, "the mount of %s went away (annpackfs stopped)", s->dir);
            return EXIT_FAIL;
        }
    }
    return EXIT_OK;
}

int cmd_serve(int argc, char **argv)
{
    serve_opts o = {.host = "127.0.0.1", .port = 8000};
    int rc = serve_parse_opts("serve", argc, argv, &o);
    if (rc < 0) {
        fputs(serve_usage, stdout);
        return EXIT_OK;
    }
    if (rc) return rc;
    char err[2048] = "", serr[1024];
    if (sv_signals_install() != 0) {
        cli_msg("serve", AP_LOG_ERROR, "cannot install signal handlers: %s", strerror(errno));
        return EXIT_FAIL;
    }
    server s;
    if (server_start(&s, &o, err, sizeof err) != 0) {
        cli_msg("serve", AP_LOG_ERROR, "%s", err);
        return EXIT_FAIL;
    }
    server_relay(&s, 0);
    cli_msg("serve", AP_LOG_INFO, "serving %s on %s (Ctrl-C stops)", s.dir, s.url);
    printf("%s\n", s.url);
    fflush(stdout);
    rc = serve_until_stopped(&s, err, sizeof err);
    server_relay(&s, 1);
    if (server_stop(&s, serr, sizeof serr) != 0) {
        cli_msg("serve", AP_LOG_ERROR, "%s", serr);
        return EXIT_FAIL;
    }
    if (rc) {
        cli_msg("serve", AP_LOG_ERROR, "%s; stopped and cleaned up", err);
        return rc;
    }
    cli_msg("serve", AP_LOG_INFO, "stopped (signal %d), unmounted and cleaned up",
            sv_stop_signal());
    return EXIT_OK;
}
