/* annpack pull: a serving host's side of distribution (docs/DISTRIBUTION.md). Fetches a
 * version or alias from an OCI registry into a content-addressed store (resumable, every
 * blob checked), materialises it beside DIR, verifies it with the host's own key, refuses a
 * lower version, and switches DIR so that annpackfs -o watch reloads it with zero failed
 * reads; --follow repeats that whenever the reference moves. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "annpack/trust.h"
#include "cli.h"
#include "registry/layout.h"
#include "registry/oci.h"
#include "registry/store.h"

static const char pull_usage[] =
    "usage: annpack pull REF --into DIR --pubkey K.pub [--store S] [--allow-downgrade]\n"
    "                    [--state FILE]\n"
    "                    [--follow [--interval 30s] [--on-update CMD]] [connection options]\n"
    "\n"
    "REF is http(s)://HOST[:PORT]/ORG/PROJECT:TAG, or ORG/PROJECT:TAG with --registry URL\n"
    "(or $ANNPACK_REGISTRY_URL); TAG is a version or an alias (@sha256:... pins a digest).\n"
    "\n"
    "Streams the blobs DIR lacks into the store (a cut transfer resumes with a Range\n"
    "request; every blob's size and digest are checked), materialises the pack or packset\n"
    "beside DIR, verifies it completely with K (a key of this host, never one from the\n"
    "registry), refuses a version lower than the one DIR holds, and switches DIR: a new DIR\n"
    "appears in one rename; in an existing packset each changed layer directory is swapped\n"
    "in one rename, then the root manifest and its signature are replaced, so a mount of DIR\n"
    "with -o watch reloads once and never reads a mixed state. The layers it replaced are\n"
    "kept beside DIR (.DIR.pull-*) until the next switch. Prints one JSON line per pull.\n"
    "\n"
    "  --into DIR          the directory to serve from (annpackfs's source)\n"
    "  --pubkey K.pub      the public key(s) the pack must be signed with\n"
    "  --store S           blob store (default: .DIR.store beside DIR)\n"
    "  --allow-downgrade   accept a lower version (a mount still refuses it)\n"
    "  --state FILE        also refuse a version below the one in annpackfs's -o state=\n"
    "                      FILE ({\"version\":N}; a missing file counts as 0)\n"
    "  --follow            keep running: check REF every --interval and pull when it moved;\n"
    "                      a refused or failed pull is logged and DIR keeps serving\n"
    "  --interval D        with --follow: 30s (default), 500ms, 2m, ...\n"
    "  --on-update CMD     with --follow: run CMD (sh -c) after each switch, e.g. a SIGHUP\n"
    "                      for a mount without -o watch\n"
    "  --registry URL, --token-file F, --auth-file F, --cacert F, --insecure\n"
    "                      as for `annpack registry` (credentials need only pull access)\n";

enum {
    P_INTO = 256,
    P_PUBKEY,
    P_STORE,
    P_DOWNGRADE,
    P_FOLLOW,
    P_INTERVAL,
    P_ON_UPDATE,
    P_REGISTRY,
    P_TOKEN_FILE,
    P_AUTH_FILE,
    P_CACERT,
    P_INSECURE,
    P_STATE
};

static const struct option pull_opts[] = {
    {"into", required_argument, NULL, P_INTO},
    {"pubkey", required_argument, NULL, P_PUBKEY},
    {"store", required_argument, NULL, P_STORE},
    {"allow-downgrade", no_argument, NULL, P_DOWNGRADE},
    {"follow", no_argument, NULL, P_FOLLOW},
    {"interval", required_argument, NULL, P_INTERVAL},
    {"on-update", required_argument, NULL, P_ON_UPDATE},
    {"registry", required_argument, NULL, P_REGISTRY},
    {"token-file", required_argument, NULL, P_TOKEN_FILE},
    {"auth-file", required_argument, NULL, P_AUTH_FILE},
    {"cacert", required_argument, NULL, P_CACERT},
    {"insecure", no_argument, NULL, P_INSECURE},
    {"state", required_argument, NULL, P_STATE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct pull_args {
    char url[512], repo[300], ref[160];
    const char *into, *pubkey, *on_update, *state;
    char *store;
    bool downgrade, follow;
    long interval_ms;
    oci_opts conn;
    ap_pubkey keys[AP_MAX_PUBKEYS];
    size_t nkeys;
} pull_args;

static volatile sig_atomic_t g_stop;
static void on_stop(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* "30s", "500ms", "2m", "1h", or plain seconds. */
static long parse_interval(const char *s)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (!end || end == s || v <= 0) return -1;
    double ms = !strcmp(end, "ms")           ? v
                : !strcmp(end, "s") || !*end ? v * 1000
                : !strcmp(end, "m")          ? v * 60000
                : !strcmp(end, "h")          ? v * 3600000
                                             : -1;
    return ms < 10 || ms > 86400000.0 * 7 ? -1 : (long)ms;
}

/* REF into url, repo, ref (a tag or a digest). */
static int parse_ref(const char *cmd, const char *s, pull_args *a)
{
    const char *p = s;
    if (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8)) {
        const char *h = strstr(s, "://") + 3, *slash = strchr(h, '/');
        if (!slash) return cli_usage_error(cmd, "REF %s: no repository after the host", s);
        snprintf(a->url, sizeof a->url, "%.*s", (int)(slash - s), s);
        a->conn.url = a->url;
        p = slash + 1;
    }
    const char *at = strchr(p, '@'), *colon = at ? NULL : strrchr(p, ':');
    const char *sep = at ? at : colon;
    if (!sep || sep == p || strchr(sep + 1, '/'))
        return cli_usage_error(cmd, "REF %s: expected ORG/PROJECT:TAG or ORG/PROJECT@sha256:...",
                               s);
    snprintf(a->repo, sizeof a->repo, "%.*s", (int)(sep - p), p);
    snprintf(a->ref, sizeof a->ref, "%s", sep + 1);
    if (!strchr(a->repo, '/'))
        return cli_usage_error(cmd, "REF %s: the repository is ORG/PROJECT", s);
    if (at ? strncmp(a->ref, "sha256:", 7) || strlen(a->ref) != 71 : !oci_valid_tag(a->ref))
        return cli_usage_error(cmd, "REF %s: %s is not a tag nor a sha256 digest", s, a->ref);
    return 0;
}

static char *pathf(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* --- what DIR holds ---------------------------------------------------------------------- */

typedef struct current {
    bool exists, verified, packset;
    uint64_t version;
    char **members; /* layer paths of a packset */
    size_t nmembers;
} current;

static void current_free(current *c)
{
    oci_free_strv(c->members, c->nmembers);
    memset(c, 0, sizeof *c);
}

static void read_current(const pull_args *a, current *cur)
{
    memset(cur, 0, sizeof *cur);
    struct stat sb;
    if (lstat(a->into, &sb) != 0) return;
    cur->exists = true;
    ap_trust_policy pol = {.keys = a->keys, .nkeys = a->nkeys, .allow_expired = true};
    ap_view *v = NULL;
    ap_trust_result res;
    ap_err err = {0};
    if (ap_view_open_trusted(a->into, &pol, &v, &res, &err) == AP_OK) {
        cur->verified = true;
        cur->version = res.version;
        ap_view_close(v);
    } else {
        cli_msg("pull", AP_LOG_WARN,
                "%s does not verify (%s): replacing it without a version floor", a->into, err.msg);
    }
    tree t;
    /* The layer paths, from the root manifest (no hashing: only names are needed). */
    char *mp = pathf(a->into, "pack.manifest.json");
    FILE *f = mp ? fopen(mp, "rb") : NULL;
    free(mp);
    if (!f) return;
    char *buf = malloc(OCI_MAX_MANIFEST + 1);
    size_t n = buf ? fread(buf, 1, OCI_MAX_MANIFEST, f) : 0;
    fclose(f);
    if (!buf) return;
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    cur->packset = cJSON_IsString(fmt) && !strcmp(fmt->valuestring, "annpack-packset");
    const cJSON *layers[2] = {cJSON_GetObjectItemCaseSensitive(j, "base"), NULL};
    size_t nd = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "deltas"));
    cur->members = calloc(nd + 1, sizeof *cur->members);
    for (size_t i = 0; cur->packset && cur->members && i <= nd; i++) {
        const cJSON *l =
            i == 0 ? layers[0]
                   : cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "deltas"), (int)i - 1);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(l, "path");
        if (cJSON_IsString(p) && tree_safe_path(p->valuestring))
            cur->members[cur->nmembers++] = strdup(p->valuestring);
    }
    (void)t;
    cJSON_Delete(j);
}

/* Whether DIR's layer at m->path holds m's bytes: its manifest (which pins every other file
 * by hash), tombstones and delta manifest are the same. */
static bool member_same(const char *dir, const tree_member *m)
{
    bool same = false;
    for (size_t i = 0; i < m->nfiles; i++) {
        const char *b = m->files[i].name;
        if (strcmp(b, "pack.manifest.json") && strcmp(b, "tombstones.jsonl") &&
            strcmp(b, "delta.manifest.json"))
            continue;
        char *rel = tree_file_path(m, &m->files[i]), *p = rel ? pathf(dir, rel) : NULL;
        char hex[AP_SHA256_HEX];
        ap_err err = {0};
        same = p && ap_sha256_file(p, hex, NULL, &err) == AP_OK &&
               !strcmp(hex, m->files[i].digest + 7);
        free(rel);
        free(p);
        if (!same) return false;
    }
    return same;
}

/* --- the switch -------------------------------------------------------------------------- */

static ap_status move(const char *from, const char *to, bool exchange, ap_err *err)
{
    int r = exchange ? renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE) : rename(from, to);
    return r == 0 ? AP_OK
                  : ap_err_set(err, AP_ERR_IO, "%s %s to %s: %s", exchange ? "exchange" : "rename",
                               from, to, strerror(errno));
}

static ap_status parent_of(const char *path, ap_err *err)
{
    char *d = strdup(path);
    if (!d) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = mkdir_parents(dirname(d), err);
    free(d);
    return st;
}

/* Swaps the packset in tmp into DIR layer by layer, the root manifest and signature last:
 * what a mount has open moves as whole directories (never a file renamed over or unlinked,
 * which would change its ctime: annpackfs would see a damaged source). tmp ends up holding
 * the layers DIR no longer uses. */
static ap_status switch_layers(const char *dir, const char *tmp, const tree *t, const current *cur,
                               ap_err *err)
{
    ap_status st = AP_OK;
    for (size_t i = 1; !st && i < t->n; i++) {
        const tree_member *m = &t->m[i];
        char *src = pathf(tmp, m->path), *dst = pathf(dir, m->path);
        struct stat sb;
        if (!src || !dst)
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        else if (lstat(dst, &sb) == 0 && member_same(dir, m))
            st = AP_OK;
        else if (lstat(dst, &sb) == 0)
            st = move(src, dst, true, err);
        else if (!(st = parent_of(dst, err)))
            st = move(src, dst, false, err);
        free(src);
        free(dst);
    }
    /* Layers only the old packset had go to tmp (still whole, still readable). */
    for (size_t k = 0; !st && k < cur->nmembers; k++) {
        bool kept = false;
        for (size_t i = 1; i < t->n; i++)
            kept |= !strcmp(t->m[i].path, cur->members[k]);
        if (kept) continue;
        char *src = pathf(dir, cur->members[k]), *dst = pathf(tmp, cur->members[k]);
        struct stat sb;
        if (!src || !dst)
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        else if (lstat(src, &sb) == 0 && !(st = parent_of(dst, err)))
            st = move(src, dst, false, err);
        /* A parent left empty (deltas/ once its last delta went) goes too. */
        for (char *sl = src ? strrchr(src, '/') : NULL; !st && sl && sl > src + strlen(dir);
             sl = strrchr(src, '/')) {
            *sl = 0;
            if (strlen(src) <= strlen(dir) || rmdir(src) != 0) break;
        }
        free(src);
        free(dst);
    }
    for (const char *const *f = (const char *const[]){"pack.manifest.json", AP_SIGNATURE, NULL};
         !st && *f; f++) {
        char *src = pathf(tmp, *f), *dst = pathf(dir, *f);
        st = src && dst ? move(src, dst, false, err)
                        : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        free(src);
        free(dst);
    }
    if (!st) st = fsync_dir(dir, err);
    return st;
}

/* Removes earlier retired trees (.DIR.pull-*) except keep. */
static void prune_retired(const char *dir, const char *keep)
{
    char *a = strdup(dir), *b = strdup(dir);
    if (!a || !b) goto out;
    char *parent = dirname(a), *base = basename(b);
    char prefix[512];
    snprintf(prefix, sizeof prefix, ".%s.pull-", base);
    DIR *d = opendir(parent);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, strlen(prefix))) continue;
        char *p = pathf(parent, e->d_name);
        if (p && (!keep || strcmp(basename(p), basename((char *)(uintptr_t)keep)))) rmtree(p);
        free(p);
    }
    if (d) closedir(d);
out:
    free(a);
    free(b);
}

/* Deletes store blobs the tree does not use (the store keeps one generation for reuse). */
static void prune_store(const char *store, const tree *t)
{
    char *blobs = pathf(store, "blobs/sha256");
    DIR *d = blobs ? opendir(blobs) : NULL;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        bool used = false;
        for (size_t i = 0; !used && i < t->n; i++)
            for (size_t k = 0; !used && k < t->m[i].nfiles; k++)
                used = !strcmp(t->m[i].files[k].digest + 7, e->d_name);
        if (used) continue;
        char *p = pathf(blobs, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    if (d) closedir(d);
    free(blobs);
}

/* --- one pull ---------------------------------------------------------------------------- */

typedef enum { PULLED, UNCHANGED } pull_result;

static void emit(const pull_args *a, const tree *t, const char *status, const store_stats *ss,
                 const char *target)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ref", a->ref);
    if (*target) cJSON_AddStringToObject(o, "target", target);
    cJSON_AddStringToObject(o, "digest", t->top_digest);
    cJSON_AddNumberToObject(o, "version", (double)t->version);
    cJSON_AddStringToObject(o, "into", a->into);
    cJSON_AddStringToObject(o, "status", status);
    cJSON_AddNumberToObject(o, "fetched_bytes", (double)ss->fetched_bytes);
    cJSON_AddNumberToObject(o, "reused_bytes", (double)ss->reused_bytes);
    cJSON_AddNumberToObject(o, "resumed", ss->resumed);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s) {
        printf("%s\n", s);
        fflush(stdout);
    }
    free(s);
}

/* The highest version annpackfs accepted ({"version":N}, its -o state= file); a missing
 * file is 0 (the mount itself fails closed on it). */
static ap_status read_state(const char *path, uint64_t *v, ap_err *err)
{
    *v = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return AP_OK;
        return ap_err_set(err, AP_ERR_IO, "--state %s: %s", path, strerror(errno));
    }
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(j, "version");
    ap_status st = AP_OK;
    if (!cJSON_IsNumber(jv) || jv->valuedouble < 0 || jv->valuedouble > 9007199254740992.0)
        st = ap_err_set(err, AP_ERR_FORMAT, "--state %s: not {\"version\":N}", path);
    else
        *v = (uint64_t)jv->valuedouble;
    cJSON_Delete(j);
    return st;
}

static ap_status verify_tmp(const pull_args *a, const char *tmp, const tree *t, const current *cur,
                            ap_err *err)
{
    ap_trust_policy pol = {.keys = a->keys, .nkeys = a->nkeys, .hash_files = true};
    ap_view *v = NULL;
    ap_trust_result res;
    ap_status st = ap_view_open_trusted(tmp, &pol, &v, &res, err);
    if (v) ap_view_close(v);
    if (st) {
        char m[AP_ERR_MSG_MAX];
        snprintf(m, sizeof m, "%s", err->msg);
        return ap_err_set(err, st, "%s:%s does not verify with %s: %s", a->repo, a->ref, a->pubkey,
                          m);
    }
    /* The index's annotation is unsigned; the signed version decides. They must agree, so an
     * overwritten tag or a doctored index cannot pass for another version. */
    if (t->packset && res.version != t->version)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s:%s: the artifact says version %llu, its signed root manifest %llu",
                          a->repo, a->ref, (unsigned long long)t->version,
                          (unsigned long long)res.version);
    uint64_t floor = 0;
    if (a->state && t->packset && !a->downgrade) {
        ap_status sst = read_state(a->state, &floor, err);
        if (sst) return sst;
        if (res.version < floor)
            return ap_err_set(err, AP_ERR_VERIFY,
                              "refusing version %llu of %s:%s: %s says version %llu was served "
                              "(anti-rollback; --allow-downgrade overrides)",
                              (unsigned long long)res.version, a->repo, a->ref, a->state,
                              (unsigned long long)floor);
    }
    if (cur->verified && cur->packset && t->packset && res.version < cur->version && !a->downgrade)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "refusing version %llu of %s:%s: %s holds version %llu (anti-rollback; "
                          "--allow-downgrade overrides)",
                          (unsigned long long)res.version, a->repo, a->ref, a->into,
                          (unsigned long long)cur->version);
    return AP_OK;
}

/* Whether DIR already serves exactly t (same root manifest and signature). */
static bool serves_already(const char *dir, const tree *t)
{
    if (t->n == 0) return false;
    const tree_member *root = &t->m[0];
    int matched = 0;
    for (size_t i = 0; i < root->nfiles; i++) {
        const char *b = root->files[i].name;
        if (strcmp(b, "pack.manifest.json") && strcmp(b, AP_SIGNATURE)) continue;
        char *p = pathf(dir, b);
        char hex[AP_SHA256_HEX];
        ap_err err = {0};
        if (!p || ap_sha256_file(p, hex, NULL, &err) || strcmp(hex, root->files[i].digest + 7)) {
            free(p);
            return false;
        }
        free(p);
        matched++;
    }
    return matched == 2 && (t->packset || member_same(dir, root));
}

static ap_status pull_once(const pull_args *a, oci_client *c, pull_result *out, char *seen,
                           ap_err *err)
{
    tree t;
    char target[160];
    ap_status st = tree_from_registry(c, a->ref, &t, target, sizeof target, err);
    if (st) return st;
    current cur;
    read_current(a, &cur);
    store_stats ss = {0};
    if (cur.verified && serves_already(a->into, &t)) {
        *out = UNCHANGED;
        emit(a, &t, "unchanged", &ss, target);
        snprintf(seen, OCI_DIGEST_LEN, "%s", t.top_digest);
        current_free(&cur);
        tree_free(&t);
        return AP_OK;
    }
    char *tmp = NULL;
    st = parent_of(a->into, err); /* like mkdir -p of DIR's parent */
    if (!st) tmp = mkdtemp_beside(a->into, "pull", err);
    if (!st && !tmp) st = err->status ? err->status : AP_ERR_IO;
    /* Layers DIR already holds unchanged stay DIR's: their copies in tmp only serve the
     * verification and are never served, so they may be links to the store (a delta
     * release then writes the delta's bytes, not the whole packset's). */
    bool *keep = st ? NULL : calloc(t.n ? t.n : 1, sizeof *keep);
    if (!st && !keep) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 1; !st && keep && cur.verified && cur.packset && t.packset && i < t.n; i++)
        keep[i] = member_same(a->into, &t.m[i]);
    if (!st && keep && tmp) st = store_materialize(c, &t, a->store, tmp, keep, &ss, err);
    free(keep);
    if (!st && tmp) st = verify_tmp(a, tmp, &t, &cur, err);
    if (!st && tmp && chmod(tmp, 0755) != 0)
        st = ap_err_set(err, AP_ERR_IO, "chmod %s: %s", tmp, strerror(errno));
    if (!st) {
        if (!cur.exists) {
            st = move(tmp, a->into, false, err);
            free(tmp);
            tmp = NULL;
        } else if (cur.packset && t.packset) {
            st = switch_layers(a->into, tmp, &t, &cur, err);
        } else {
            /* A single pack (or a change of kind): the whole directory in one exchange. */
            st = move(tmp, a->into, true, err);
        }
    }
    if (st && tmp) {
        rmtree(tmp);
    } else if (!st) {
        prune_retired(a->into, tmp);
        prune_store(a->store, &t);
        *out = PULLED;
        emit(a, &t, "switched", &ss, target);
        snprintf(seen, OCI_DIGEST_LEN, "%s", t.top_digest);
    }
    free(tmp);
    current_free(&cur);
    tree_free(&t);
    return st;
}

static void sleep_ms(long ms)
{
    for (long left = ms; left > 0 && !g_stop; left -= 100) {
        struct timespec ts = {0, (left < 100 ? left : 100) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int follow(const pull_args *a, oci_client *c)
{
    struct sigaction sa = {.sa_handler = on_stop};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    char seen[OCI_DIGEST_LEN] = "", refused[OCI_DIGEST_LEN] = "";
    while (!g_stop) {
        ap_err err = {0};
        char now[OCI_DIGEST_LEN] = "";
        /* A HEAD per interval; the pull only when the reference moved. */
        ap_status st = oci_manifest_head(c, a->ref, now, &err);
        if (!st && strcmp(now, seen) && strcmp(now, refused)) {
            pull_result r = UNCHANGED;
            char got[OCI_DIGEST_LEN] = "";
            st = pull_once(a, c, &r, got, &err);
            if (!st) {
                snprintf(seen, sizeof seen, "%s", now);
                if (r == PULLED && a->on_update) {
                    int rc = system(a->on_update);
                    if (rc != 0) cli_msg("pull", AP_LOG_WARN, "--on-update exited with %d", rc);
                }
            } else if (err.status == AP_ERR_VERIFY) {
                /* Refused (a downgrade, a bad signature): not retried until REF moves again. */
                snprintf(refused, sizeof refused, "%s", now);
            }
        }
        if (st) cli_msg("pull", AP_LOG_ERROR, "%s; %s keeps serving what it has", err.msg, a->into);
        sleep_ms(a->interval_ms);
    }
    return EXIT_OK;
}

int cmd_pull(int argc, char **argv)
{
    static pull_args a;
    memset(&a, 0, sizeof a);
    a.interval_ms = 30000;
    optind = 1;
    opterr = 0;
    const char *cmd = "pull";
    for (int c; (c = getopt_long(argc, argv, ":h", pull_opts, NULL)) != -1;) {
        switch (c) {
        case 'h':
            fputs(pull_usage, stdout);
            return EXIT_OK;
        case P_INTO:
            a.into = optarg;
            break;
        case P_PUBKEY:
            a.pubkey = optarg;
            break;
        case P_STORE:
            a.store = optarg;
            break;
        case P_DOWNGRADE:
            a.downgrade = true;
            break;
        case P_FOLLOW:
            a.follow = true;
            break;
        case P_INTERVAL:
            a.interval_ms = parse_interval(optarg);
            if (a.interval_ms < 0)
                return cli_usage_error(cmd, "--interval %s: a duration such as 30s, 500ms, 2m",
                                       optarg);
            break;
        case P_ON_UPDATE:
            a.on_update = optarg;
            break;
        case P_REGISTRY:
            a.conn.url = optarg;
            break;
        case P_TOKEN_FILE:
            a.conn.token_file = optarg;
            break;
        case P_AUTH_FILE:
            a.conn.auth_file = optarg;
            break;
        case P_CACERT:
            a.conn.cacert = optarg;
            break;
        case P_INSECURE:
            a.conn.insecure = true;
            break;
        case P_STATE:
            a.state = optarg;
            break;
        case ':':
            return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(cmd, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return cli_usage_error(cmd, "one REF is required");
    if (!a.into || !a.pubkey) return cli_usage_error(cmd, "--into and --pubkey are required");
    if (parse_ref(cmd, argv[optind], &a)) return EXIT_USAGE;
    ap_err err = {0};
    if (ap_pubkeys_load(a.pubkey, a.keys, &a.nkeys, &err)) return cli_fail(cmd, &err);
    char *own = NULL;
    if (!a.store) {
        char *x = strdup(a.into), *y = strdup(a.into);
        size_t n = strlen(a.into) * 2 + 16;
        own = malloc(n);
        if (!x || !y || !own) {
            free(x);
            free(y);
            free(own);
            return EXIT_FAIL;
        }
        snprintf(own, n, "%s/.%s.store", dirname(x), basename(y));
        free(x);
        free(y);
        a.store = own;
    }
    oci_client *c = NULL;
    if (oci_open(&a.conn, a.repo, &c, &err)) {
        free(own);
        int rc = cli_fail(cmd, &err);
        return err.status == AP_ERR_ARG ? EXIT_USAGE : rc;
    }
    /* One pull at a time per DIR (a second one waits). */
    if (parent_of(a.store, &err)) {
        oci_close(c);
        free(own);
        return cli_fail(cmd, &err);
    }
    char *lock = malloc(strlen(a.store) + 8);
    int lfd = -1;
    if (lock) {
        sprintf(lock, "%s.lock", a.store);
        lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lfd >= 0) flock(lfd, LOCK_EX);
    }
    int rc;
    if (a.follow) {
        rc = follow(&a, c);
    } else {
        pull_result r;
        char seen[OCI_DIGEST_LEN];
        rc = pull_once(&a, c, &r, seen, &err) ? cli_fail(cmd, &err) : EXIT_OK;
    }
    if (lfd >= 0) close(lfd);
    free(lock);
    oci_close(c);
    free(own);
    return rc;
}
