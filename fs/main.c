/* annpackfs — mounts a signed packset (or a pack) as one verified virtual pack.
 *
 *   annpackfs SOURCE MOUNTPOINT [-o pubkey=FILE,probe=N,k=N,verify=full|none,cache_mb=N,
 *                                   watch,state=FILE,state_init,allow_expired,
 *                                   on_expiry=serve|refuse,log=FILE,<FUSE options>] [-f] [-d]
 *
 * The entry point: the command line, then the start-up steps in their order — check the
 * options and the mountpoint, verify before mounting (a refusal leaves nothing mounted),
 * then the session (session.h: mount, daemonise, serve). docs/MOUNT.md, "fs/ map", says
 * which file holds what. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "annpack/annpack.h"
#include "cache.h"
#include "config.h"
#include "embed_cache.h"
#include "generation.h"
#include "process.h"
#include "session.h"
#include "verifier.h"

static char *g_mountpoint; /* the second non-option argument, as given */

#define OPT(t, p)                                                                                  \
    {                                                                                              \
        t, offsetof(fs_opts, p), 1                                                                 \
    }
// clang-format off
static const struct fuse_opt OPTS[] = {
    OPT("pubkey=%s", pubkey),   OPT("state=%s", state),       OPT("log=%s", log),
    OPT("verify=%s", verify),   OPT("k=%u", k),               OPT("probe=%u", probe),
    OPT("cache_mb=%u", cache_mb), OPT("watch", watch),         OPT("-h", help),
    OPT("scan=%s", scan),       OPT("rerank=%u", rerank),     OPT("state_init", state_init),
    OPT("allow_expired", allow_expired), OPT("on_expiry=%s", on_expiry),
    OPT("embed_url=%s", embed_url), OPT("embed_key_file=%s", embed_key_file),
    OPT("embed_cache_mb=%u", embed_cache_mb),
    OPT("verify_rate=%u", verify_rate), OPT("single_thread", single_thread),
    OPT("--help", help),        OPT("-V", version),           OPT("--version", version),
    FUSE_OPT_END};
// clang-format on

static void usage(void)
{
    printf("usage: annpackfs SOURCE MOUNTPOINT [-o OPTIONS] [-f] [-d]\n"
           "\n"
           "Mounts SOURCE (a packset or a pack) read-only as one verified virtual pack:\n"
           "pack.manifest.json, pack.annpack, pack.meta.jsonl (and pack.sq8),\n"
           "query/<text>[?k=N&probe=N], vquery/[k=N&probe=N/]<base64url vector>, doc/<id>,\n"
           "health, stats. See docs/MOUNT.md.\n"
           "\n"
           "options:\n"
           "  -o pubkey=FILE     require a valid Ed25519 signature by a key in FILE\n"
           "  -o verify=lazy|full|none  check the files against the signed manifests:\n"
           "                     lazy (default): the digest table, heads and small files at\n"
           "                     mount, each list and frame on first use (a corrupt one fails\n"
           "                     the queries that need it with EIO); full: every byte before\n"
           "                     serving; none: only the manifests\n"
           "  -o verify_rate=N   with verify=lazy, check every remaining list in the\n"
           "                     background at N MB/s (default 0: off)\n"
           "  -o single_thread   answer FUSE requests on one thread (libfuse's single-\n"
           "                     threaded loop) instead of a pool of up to 16\n"
           "  -o k=N             default results per query (default 10, 1..1000)\n"
           "  -o probe=N         default lists probed (default 0: the pack's calibrated\n"
           "                     default probe, 8 for packs built without one; 1..65536)\n"
           "  -o scan=auto|f16|sq8|bits  how lists are scanned (default auto: the int8\n"
           "                     sidecar when the base has one, then exact re-ranking; bits:\n"
           "                     the base's 1-bit codes)\n"
           "  -o rerank=N        sq8 candidates re-scored exactly (default max(64, 8k))\n"
           "  -o cache_mb=N      query result cache size (default 64)\n"
           "  -o embed_url=URL   the embedding service of a pack built with one (else\n"
           "                     ANNPACK_EMBED_URL; docs/EMBEDDERS.md)\n"
           "  -o embed_key_file=FILE  its Bearer token (mode 600; else ANNPACK_EMBED_API_KEY)\n"
           "  -o embed_cache_mb=N  query embedding cache size (default 16)\n"

           "  -o watch           reload when the root manifest or signature is replaced\n"
           "  -o state=FILE      persist the highest accepted version (replay protection);\n"
           "                     a missing or unreadable FILE refuses the mount\n"
           "  -o state_init      the first mount: create a missing state= FILE\n"
           "  -o allow_expired   accept a manifest whose \"expires\" has passed\n"
           "  -o on_expiry=serve|refuse  once \"expires\" passes while mounted: keep answering\n"
           "                     (default) or refuse answers with EKEYEXPIRED\n"
           "  -o log=FILE        append log lines to FILE (default stderr)\n"
           "  -f                 stay in the foreground;  -d  debug (implies -f)\n"
           "  other -o options go to FUSE (allow_other, ...). SIGHUP reloads.\n");
}

/* The first non-option argument is SOURCE; the second, MOUNTPOINT, goes to FUSE. */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    (void)data;
    (void)outargs;
    if (key == FUSE_OPT_KEY_NONOPT && !g_cfg.source) {
        char real[PATH_MAX];
        if (!realpath(arg, real)) {
            fprintf(stderr, "annpackfs: %s: %s\n", arg, strerror(errno));
            exit(1);
        }
        g_cfg.source = strdup(real);
        return 0;
    }
    if (key == FUSE_OPT_KEY_NONOPT && !g_mountpoint) g_mountpoint = strdup(arg);
    return 1; /* FUSE takes the mountpoint */
}

/* A refusal to mount: one line on stderr (and in the log= file). Returns 1. */
static int refuse(const char *why)
{
    fprintf(stderr, "annpackfs: refusing to mount %s: %s\n", g_cfg.source, why);
    if (fs_log_to_file())
        ap_log(AP_LOG_ERROR, "mount", "refusing to mount %s: %s", g_cfg.source, why);
    return 1;
}

/* Everything before the session: the options, the mountpoint, the log, the keys and the
 * first generation (verified, installed). Returns 0 or the exit status. */
static int prepare(const fs_opts *o)
{
    if (!g_cfg.source) {
        fprintf(stderr, "annpackfs: missing SOURCE and MOUNTPOINT (see --help)\n");
        return 2;
    }
    int rc = fs_config_set(o);
    if (!rc) rc = fs_session_check_mountpoint(g_mountpoint, g_cfg.source);
    if (!rc && o->log) rc = fs_log_open(o->log);
    if (rc) return rc;
    ap_err err = {0};
    fs_embed_init((uint64_t)o->embed_cache_mb << 20);
    if (fs_embed_endpoint(o->embed_url, o->embed_key_file, &err)) {
        fprintf(stderr, "annpackfs: %s\n", err.msg);
        return 2;
    }
    if (fs_config_load_keys(&err)) {
        fprintf(stderr, "annpackfs: refusing to mount %s: %s\n", g_cfg.source, err.msg);
        return 1;
    }
    fs_gen *g = NULL;
    if (fs_gen_load_first(&g_cfg, &g, &err)) return refuse(err.msg);
    fs_gen_install(g);
    fs_cache_init((uint64_t)g_cfg.cache_mb << 20);
    return 0;
}

/* Verifies, mounts and serves; returns the exit status. */
static int run(const fs_opts *o, struct fuse_args *args)
{
    if (o->help) {
        usage();
        return 0;
    }
    if (o->version) {
        printf("annpackfs %s (libfuse %s)\n", ap_version(), fuse_pkgversion());
        return 0;
    }
    int rc = prepare(o);
    if (rc) return rc;
    fs_gen *g = fs_gen_current();
    uint64_t version = g->version;
    fs_gen_unref(g);
    fs_verifier_start();
    rc = fs_session_run(args, g_cfg.source, version);
    fs_verifier_stop();
    fs_gen_install(NULL);
    fs_cache_drop_others(UINT64_MAX);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = fs_process_init(argv);
    if (rc) return rc;
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    fs_opts o = {.k = AP_DEFAULT_K, .probe = 0, .cache_mb = 64, .embed_cache_mb = 16};
    rc = fuse_opt_parse(&args, &o, OPTS, opt_proc) != 0 ? 2 : run(&o, &args);
    fs_opts_free(&o);
    fuse_opt_free_args(&args);
    free(g_mountpoint);
    free(g_cfg.source);
    fs_log_close();
    return rc;
}
