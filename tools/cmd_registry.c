/* annpack registry upload|list|download|alias set|get|list|delete: packs and packsets as
 * OCI artifacts in any OCI distribution registry (docs/DISTRIBUTION.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "annpack/trust.h"
#include "cli.h"
#include "registry/layout.h"
#include "registry/oci.h"
#include "registry/store.h"

static const char registry_usage[] =
    "usage: annpack registry upload   --org O --project P --version V --pack-dir DIR\n"
    "                                 [--skip-verify] [--sign-key KEY.pem] [--pubkey K.pub]\n"
    "       annpack registry list     --org O --project P\n"
    "       annpack registry download --org O --project P --version V|ALIAS --out DIR\n"
    "                                 [--pubkey K.pub] [--force]\n"
    "       annpack registry alias set    --org O --project P --alias A --version V\n"
    "       annpack registry alias get    --org O --project P --alias A\n"
    "       annpack registry alias list   --org O --project P\n"
    "       annpack registry alias delete --org O --project P --alias A\n"
    "\n"
    "Packs and packsets as OCI artifacts in repository O/P of any OCI distribution registry\n"
    "(docs/DISTRIBUTION.md): a version is an immutable tag, an alias a mutable one.\n"
    "\n"
    "  upload      verify DIR (a pack or a packset; --pubkey also checks its signature),\n"
    "              sign it first with --sign-key, then push one layer per file and tag it V.\n"
    "              V already holding the same artifact is a no-op; another one is refused\n"
    "  list        versions and aliases (JSON)\n"
    "  download    fetch version or alias V into DIR (new; --force replaces it atomically),\n"
    "              every blob checked against its digest; --pubkey verifies before DIR\n"
    "              appears. `annpack pull` is the serving host's verified, resumable form\n"
    "  alias set   point alias A at version V (V must exist)\n"
    "  alias get   the version alias A points at (JSON)\n"
    "  alias list  every alias (JSON)\n"
    "  alias delete  remove alias A (never a version)\n"
    "\n"
    "Connection (every subcommand):\n"
    "  --registry URL     http(s)://host[:port] (default: $ANNPACK_REGISTRY_URL)\n"
    "  --token-file F     a Bearer token (default: $ANNPACK_REGISTRY_TOKEN)\n"
    "  --auth-file F      user:password on the first line, or a Docker auth.json; sent as\n"
    "                     Basic auth or traded for a token when the registry asks (401)\n"
    "  --cacert F         CA bundle for https; --insecure skips the certificate check\n";

typedef struct reg_args {
    const char *org, *project, *version, *alias, *pack_dir, *out, *sign_key, *pubkey;
    bool skip_verify, force;
    oci_opts conn;
} reg_args;

enum {
    O_REGISTRY = 256,
    O_TOKEN_FILE,
    O_AUTH_FILE,
    O_CACERT,
    O_INSECURE,
    O_ORG,
    O_PROJECT,
    O_VERSION,
    O_ALIAS,
    O_PACK_DIR,
    O_OUT,
    O_SKIP_VERIFY,
    O_SIGN_KEY,
    O_PUBKEY,
    O_FORCE
};

static const struct option reg_opts[] = {
    {"registry", required_argument, NULL, O_REGISTRY},
    {"token-file", required_argument, NULL, O_TOKEN_FILE},
    {"auth-file", required_argument, NULL, O_AUTH_FILE},
    {"cacert", required_argument, NULL, O_CACERT},
    {"insecure", no_argument, NULL, O_INSECURE},
    {"org", required_argument, NULL, O_ORG},
    {"project", required_argument, NULL, O_PROJECT},
    {"version", required_argument, NULL, O_VERSION},
    {"alias", required_argument, NULL, O_ALIAS},
    {"pack-dir", required_argument, NULL, O_PACK_DIR},
    {"out", required_argument, NULL, O_OUT},
    {"skip-verify", no_argument, NULL, O_SKIP_VERIFY},
    {"sign-key", required_argument, NULL, O_SIGN_KEY},
    {"pubkey", required_argument, NULL, O_PUBKEY},
    {"force", no_argument, NULL, O_FORCE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse(const char *cmd, int argc, char **argv, reg_args *a)
{
    memset(a, 0, sizeof *a);
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", reg_opts, NULL)) != -1;) {
        switch (c) {
        case 'h':
            fputs(registry_usage, stdout);
            return -1;
        case O_REGISTRY:
            a->conn.url = optarg;
            break;
        case O_TOKEN_FILE:
            a->conn.token_file = optarg;
            break;
        case O_AUTH_FILE:
            a->conn.auth_file = optarg;
            break;
        case O_CACERT:
            a->conn.cacert = optarg;
            break;
        case O_INSECURE:
            a->conn.insecure = true;
            break;
        case O_ORG:
            a->org = optarg;
            break;
        case O_PROJECT:
            a->project = optarg;
            break;
        case O_VERSION:
            a->version = optarg;
            break;
        case O_ALIAS:
            a->alias = optarg;
            break;
        case O_PACK_DIR:
            a->pack_dir = optarg;
            break;
        case O_OUT:
            a->out = optarg;
            break;
        case O_SKIP_VERIFY:
            a->skip_verify = true;
            break;
        case O_SIGN_KEY:
            a->sign_key = optarg;
            break;
        case O_PUBKEY:
            a->pubkey = optarg;
            break;
        case O_FORCE:
            a->force = true;
            break;
        case ':':
            return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(cmd, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!a->org || !a->project) return cli_usage_error(cmd, "--org and --project are required");
    return 0;
}

/* Repository names are lowercase path components (the distribution spec's grammar). */
static int valid_component(const char *s)
{
    if (!s || !*s || strlen(s) > 128) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              ((*p == '.' || *p == '_' || *p == '-') && p != s && p[1])))
            return 0;
    return 1;
}

static int open_client(const char *cmd, const reg_args *a, oci_client **c)
{
    if (!valid_component(a->org) || !valid_component(a->project))
        return cli_usage_error(cmd, "--org and --project must be lowercase letters, digits and "
                                    "inner . _ - (an OCI repository name)");
    char repo[300];
    snprintf(repo, sizeof repo, "%s/%s", a->org, a->project);
    ap_err err = {0};
    if (oci_open(&a->conn, repo, c, &err)) {
        int rc = cli_fail(cmd, &err);
        return err.status == AP_ERR_ARG ? EXIT_USAGE : rc; /* no or a bad --registry */
    }
    return 0;
}

static int need_tag(const char *cmd, const char *opt, const char *v)
{
    if (!v) {
        cli_usage_error(cmd, "%s is required", opt);
        return EXIT_USAGE;
    }
    if (!oci_valid_tag(v) || !strncmp(v, "sha256-", 7))
        return cli_usage_error(cmd,
                               "%s %s: an OCI tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}, not "
                               "starting with sha256-)",
                               opt, v);
    return 0;
}

/* The artifactType of the manifest at ref ("" when absent). */
static ap_status artifact_type(oci_client *c, const char *ref, char *at, size_t n, char *digest,
                               size_t *size, char *media, size_t mn, ap_err *err)
{
    char *body = NULL;
    size_t len = 0;
    ap_status st = oci_manifest_get(c, ref, &body, &len, digest, media, mn, err);
    if (st) return st;
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "artifactType");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "mediaType");
    snprintf(at, n, "%s", cJSON_IsString(t) ? t->valuestring : "");
    if (media && cJSON_IsString(mt)) snprintf(media, mn, "%s", mt->valuestring);
    if (size) *size = len;
    cJSON_Delete(j);
    free(body);
    return AP_OK;
}

/* --- upload ------------------------------------------------------------------------------ */

static ap_status verify_dir(const reg_args *a, ap_err *err)
{
    ap_pubkey keys[AP_MAX_PUBKEYS];
    size_t nkeys = 0;
    if (a->pubkey) {
        ap_status st = ap_pubkeys_load(a->pubkey, keys, &nkeys, err);
        if (st) return st;
    }
    ap_trust_policy pol = {
        .keys = keys, .nkeys = nkeys, .hash_files = true, .allow_expired = false};
    ap_view *v = NULL;
    ap_trust_result res;
    ap_status st = ap_view_open_trusted(a->pack_dir, &pol, &v, &res, err);
    if (v) ap_view_close(v);
    return st;
}

static ap_status push_tree(oci_client *c, const reg_args *a, const tree *t, ap_err *err)
{
    ap_status st = oci_blob_push_mem(c, "{}", 2, OCI_EMPTY_DIGEST, err);
    for (size_t i = 0; !st && i < t->n; i++) {
        const tree_member *m = &t->m[i];
        for (size_t k = 0; !st && k < m->nfiles; k++) {
            char *rel = tree_file_path(m, &m->files[k]);
            size_t n = strlen(a->pack_dir) + (rel ? strlen(rel) : 0) + 2;
            char *p = malloc(n);
            if (!rel || !p) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
            if (!st) {
                snprintf(p, n, "%s/%s", a->pack_dir, rel);
                st = oci_blob_push_file(c, p, m->files[k].digest, m->files[k].size, err);
                if (st) {
                    char msg[AP_ERR_MSG_MAX];
                    snprintf(msg, sizeof msg, "%s", err->msg);
                    st = ap_err_set(err, st, "%s: %s", p, msg);
                }
            }
            free(rel);
            free(p);
        }
        if (st || !t->packset) continue;
        /* Each packset member is tagged by its digest so garbage collection keeps it. */
        char tag[OCI_DIGEST_LEN];
        snprintf(tag, sizeof tag, "sha256-%s", m->digest + 7);
        st = oci_manifest_put(c, tag, OCI_MANIFEST, m->manifest, m->manifest_len, err);
    }
    if (!st) st = oci_manifest_put(c, a->version, t->top_media, t->top, t->top_len, err);
    return st;
}

static int reg_upload(const char *cmd, const reg_args *a)
{
    if (need_tag(cmd, "--version", a->version)) return EXIT_USAGE;
    if (!a->pack_dir) return cli_usage_error(cmd, "--pack-dir is required");
    ap_err err = {0};
    if (a->sign_key) {
        ap_seckey *key = NULL;
        ap_status st = ap_seckey_load(a->sign_key, &key, &err);
        if (!st) st = ap_dir_sign(a->pack_dir, key, NULL, NULL, &err);
        ap_seckey_free(key);
        if (st) return cli_fail(cmd, &err);
    }
    if (!a->skip_verify && verify_dir(a, &err)) return cli_fail(cmd, &err);
    oci_client *c = NULL;
    int rc = open_client(cmd, a, &c);
    if (rc) return rc;
    tree t;
    if (tree_from_dir(a->pack_dir, &t, &err)) {
        oci_close(c);
        return cli_fail(cmd, &err);
    }
    /* No conditional PUT in the spec: HEAD before (absent: push; same digest: nothing to do;
     * another: refuse) and after (the tag holds what was sent). */
    char have[OCI_DIGEST_LEN] = "";
    ap_status st = oci_manifest_head(c, a->version, have, &err);
    const char *what = "uploaded";
    if (st == AP_OK && strcmp(have, t.top_digest)) {
        st = ap_err_set(&err, AP_ERR_EXISTS,
                        "version %s of %s already exists with other contents (%s, this is %s); "
                        "versions are immutable: upload under a new version",
                        a->version, oci_repo(c), have, t.top_digest);
    } else if (st == AP_OK) {
        what = "already uploaded (same digest, nothing pushed)";
    } else if (st == AP_ERR_NOTFOUND) {
        st = push_tree(c, a, &t, &err);
        if (!st) st = oci_manifest_head(c, a->version, have, &err);
        if (!st && strcmp(have, t.top_digest))
            st = ap_err_set(&err, AP_ERR_EXISTS,
                            "version %s of %s changed during the upload: it now holds %s, not %s",
                            a->version, oci_repo(c), have, t.top_digest);
    }
    if (!st) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "repository", oci_repo(c));
        cJSON_AddStringToObject(o, "version", a->version);
        cJSON_AddStringToObject(o, "digest", t.top_digest);
        cJSON_AddStringToObject(o, "kind", t.packset ? "packset" : "pack");
        if (t.packset) cJSON_AddNumberToObject(o, "packset_version", (double)t.version);
        cJSON_AddStringToObject(o, "status", what);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        rc = s ? cli_emit(s) : EXIT_FAIL;
        if (s) cli_emit("\n");
        free(s);
    } else {
        rc = cli_fail(cmd, &err);
    }
    tree_free(&t);
    oci_close(c);
    return rc;
}

/* --- list and aliases -------------------------------------------------------------------- */

typedef struct entry {
    char *tag;
    char digest[OCI_DIGEST_LEN];
    char at[128];
    char target[160]; /* aliases: the version tag */
    char version[32]; /* packsets: the signed version */
} entry;

static ap_status describe(oci_client *c, const char *tag, entry *e, ap_err *err)
{
    char *body = NULL;
    size_t len = 0;
    ap_status st = oci_manifest_get(c, tag, &body, &len, e->digest, NULL, 0, err);
    if (st) return st;
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(j, "artifactType");
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(j, "annotations");
    const cJSON *tg = cJSON_GetObjectItemCaseSensitive(ann, ANN_TARGET);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ann, ANN_VERSION);
    snprintf(e->at, sizeof e->at, "%s", cJSON_IsString(at) ? at->valuestring : "");
    snprintf(e->target, sizeof e->target, "%s", cJSON_IsString(tg) ? tg->valuestring : "");
    snprintf(e->version, sizeof e->version, "%s", cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(j);
    free(body);
    return AP_OK;
}

static cJSON *entry_json(const entry *e, bool alias)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, alias ? "alias" : "version", e->tag);
    if (alias) cJSON_AddStringToObject(o, "target", e->target);
    cJSON_AddStringToObject(o, "digest", e->digest);
    if (!alias) {
        cJSON_AddStringToObject(o, "kind", !strcmp(e->at, AT_PACKSET) ? "packset" : "pack");
        if (*e->version) cJSON_AddNumberToObject(o, "packset_version", strtod(e->version, NULL));
    }
    return o;
}

/* versions and/or aliases of the repository as JSON. */
static int reg_list(const char *cmd, const reg_args *a, bool versions, bool aliases)
{
    oci_client *c = NULL;
    int rc = open_client(cmd, a, &c);
    if (rc) return rc;
    ap_err err = {0};
    char **tags = NULL;
    size_t n = 0;
    ap_status st = oci_tags(c, &tags, &n, &err);
    if (st == AP_ERR_NOTFOUND) st = AP_OK; /* no repository yet: nothing in it */
    cJSON *o = cJSON_CreateObject(), *va = cJSON_CreateArray(), *aa = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "repository", oci_repo(c));
    for (size_t i = 0; !st && i < n; i++) {
        if (!strncmp(tags[i], "sha256-", 7)) continue; /* packset members */
        entry e = {.tag = tags[i]};
        st = describe(c, tags[i], &e, &err);
        if (st) break;
        if (!strcmp(e.at, AT_ALIAS))
            cJSON_AddItemToArray(aa, entry_json(&e, true));
        else if (!strcmp(e.at, AT_PACK) || !strcmp(e.at, AT_PACKSET))
            cJSON_AddItemToArray(va, entry_json(&e, false));
    }
    if (versions)
        cJSON_AddItemToObject(o, "versions", va);
    else
        cJSON_Delete(va);
    if (aliases)
        cJSON_AddItemToObject(o, "aliases", aa);
    else
        cJSON_Delete(aa);
    if (!st) {
        char *s = cJSON_PrintUnformatted(o);
        rc = s ? cli_emit(s) : EXIT_FAIL;
        if (s) cli_emit("\n");
        free(s);
    } else {
        rc = cli_fail(cmd, &err);
    }
    cJSON_Delete(o);
    oci_free_strv(tags, n);
    oci_close(c);
    return rc;
}

static int reg_alias_set(const char *cmd, const reg_args *a)
{
    if (need_tag(cmd, "--alias", a->alias) || need_tag(cmd, "--version", a->version))
        return EXIT_USAGE;
    if (!strcmp(a->alias, a->version))
        return cli_usage_error(cmd, "--alias and --version are the same tag");
    oci_client *c = NULL;
    int rc = open_client(cmd, a, &c);
    if (rc) return rc;
    ap_err err = {0};
    char at[128], digest[OCI_DIGEST_LEN], media[128] = "";
    size_t size = 0;
    ap_status st =
        artifact_type(c, a->version, at, sizeof at, digest, &size, media, sizeof media, &err);
    if (st == AP_ERR_NOTFOUND)
        st = ap_err_set(&err, AP_ERR_NOTFOUND, "no version %s in %s", a->version, oci_repo(c));
    if (!st && strcmp(at, AT_PACK) && strcmp(at, AT_PACKSET))
        st = ap_err_set(&err, AP_ERR_ARG, "%s:%s is not a version (artifactType %s)", oci_repo(c),
                        a->version, *at ? at : "none");
    /* The alias tag must be an alias already, or new: never overwrite a version. */
    char cur_at[128];
    if (!st) {
        ap_status s2 = artifact_type(c, a->alias, cur_at, sizeof cur_at, NULL, NULL, NULL, 0, &err);
        if (s2 == AP_OK && strcmp(cur_at, AT_ALIAS))
            st = ap_err_set(&err, AP_ERR_EXISTS,
                            "%s:%s is a version, not an alias: refusing to "
                            "move it",
                            oci_repo(c), a->alias);
        else if (s2 && s2 != AP_ERR_NOTFOUND)
            st = s2;
    }
    char *idx = NULL;
    if (!st) {
        idx = alias_index(a->alias, a->version, media, digest, size, at);
        if (!idx) st = ap_err_set(&err, AP_ERR_NOMEM, "out of memory");
    }
    if (!st) st = oci_manifest_put(c, a->alias, OCI_INDEX, idx, strlen(idx), &err);
    char want[OCI_DIGEST_LEN], have[OCI_DIGEST_LEN];
    if (!st) {
        oci_digest_mem(idx, strlen(idx), want);
        st = oci_manifest_head(c, a->alias, have, &err);
        if (!st && strcmp(want, have))
            st = ap_err_set(&err, AP_ERR_EXISTS, "alias %s moved meanwhile: it holds %s", a->alias,
                            have);
    }
    free(idx);
    if (!st)
        printf("{\"alias\":\"%s\",\"target\":\"%s\",\"digest\":\"%s\"}\n", a->alias, a->version,
               want);
    rc = st ? cli_fail(cmd, &err) : EXIT_OK;
    oci_close(c);
    return rc;
}

static int reg_alias_get(const char *cmd, const reg_args *a, bool del)
{
    if (need_tag(cmd, "--alias", a->alias)) return EXIT_USAGE;
    oci_client *c = NULL;
    int rc = open_client(cmd, a, &c);
    if (rc) return rc;
    ap_err err = {0};
    entry e = {.tag = (char *)(uintptr_t)a->alias};
    ap_status st = describe(c, a->alias, &e, &err);
    if (st == AP_ERR_NOTFOUND)
        st = ap_err_set(&err, AP_ERR_NOTFOUND, "no alias %s in %s", a->alias, oci_repo(c));
    if (!st && strcmp(e.at, AT_ALIAS))
        st = ap_err_set(&err, AP_ERR_ARG, "%s:%s is a version, not an alias%s", oci_repo(c),
                        a->alias, del ? ": versions are never deleted" : "");
    /* Deleting an alias deletes its own index (its digest names the alias, never a version). */
    if (!st && del) st = oci_manifest_delete(c, e.digest, &err);
    if (!st) {
        cJSON *o = entry_json(&e, true);
        if (del) cJSON_AddBoolToObject(o, "deleted", 1);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        rc = s ? cli_emit(s) : EXIT_FAIL;
        if (s) cli_emit("\n");
        free(s);
    } else {
        rc = cli_fail(cmd, &err);
    }
    oci_close(c);
    return rc;
}

/* --- download ---------------------------------------------------------------------------- */

static int reg_download(const char *cmd, const reg_args *a)
{
    if (need_tag(cmd, "--version", a->version)) return EXIT_USAGE;
    if (!a->out) return cli_usage_error(cmd, "--out is required");
    struct stat sb;
    if (!a->force && lstat(a->out, &sb) == 0) {
        ap_err e = {0};
        ap_err_set(&e, AP_ERR_EXISTS, "%s exists (--force replaces it)", a->out);
        return cli_fail(cmd, &e);
    }
    oci_client *c = NULL;
    int rc = open_client(cmd, a, &c);
    if (rc) return rc;
    ap_err err = {0};
    tree t;
    char target[160];
    ap_status st = tree_from_registry(c, a->version, &t, target, sizeof target, &err);
    char *parent = strdup(a->out), *slash = parent ? strrchr(parent, '/') : NULL;
    if (slash && slash != parent) {
        *slash = 0;
        if (!st) st = mkdir_parents(parent, &err); /* like mkdir -p of DIR's parent */
    }
    free(parent);
    char *tmp = st ? NULL : mkdtemp_beside(a->out, "download", &err);
    char *store = NULL;
    if (!st && !tmp) st = err.status ? err.status : AP_ERR_IO;
    if (!st) {
        store = mkdtemp_beside(a->out, "blobs", &err);
        if (!store) st = err.status ? err.status : AP_ERR_IO;
    }
    store_stats ss = {0};
    if (!st) {
        /* The store is temporary here: links are safe (nothing serves it yet). */
        bool *all = calloc(t.n ? t.n : 1, sizeof *all);
        for (size_t i = 0; all && i < t.n; i++)
            all[i] = true;
        st = store_materialize(c, &t, store, tmp, all, &ss, &err);
        free(all);
    }
    if (!st && a->pubkey) {
        ap_pubkey keys[AP_MAX_PUBKEYS];
        size_t nkeys = 0;
        st = ap_pubkeys_load(a->pubkey, keys, &nkeys, &err);
        ap_trust_policy pol = {.keys = keys, .nkeys = nkeys, .hash_files = true};
        ap_view *v = NULL;
        if (!st) st = ap_view_open_trusted(tmp, &pol, &v, NULL, &err);
        if (v) ap_view_close(v);
    }
    if (!st && chmod(tmp, 0755) != 0)
        st = ap_err_set(&err, AP_ERR_IO, "chmod %s: %s", tmp, strerror(errno));
    if (!st) {
        /* Appears whole or not at all; --force swaps the old one out in one rename. */
        if (lstat(a->out, &sb) == 0) {
            if (renameat2(AT_FDCWD, tmp, AT_FDCWD, a->out, RENAME_EXCHANGE) != 0)
                st = ap_err_set(&err, AP_ERR_IO, "replace %s: %s", a->out, strerror(errno));
        } else if (rename(tmp, a->out) != 0) {
            st = ap_err_set(&err, AP_ERR_IO, "rename to %s: %s", a->out, strerror(errno));
        }
    }
    if (tmp) rmtree(tmp);
    if (store) rmtree(store);
    free(tmp);
    free(store);
    if (!st) {
        printf("{\"repository\":\"%s\",\"ref\":\"%s\",\"target\":\"%s\",\"digest\":\"%s\","
               "\"out\":\"%s\",\"bytes\":%llu}\n",
               oci_repo(c), a->version, *target ? target : a->version, t.top_digest, a->out,
               (unsigned long long)ss.fetched_bytes);
        tree_free(&t);
    }
    rc = st ? cli_fail(cmd, &err) : EXIT_OK;
    oci_close(c);
    return rc;
}

int cmd_registry(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(registry_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *sub = argv[1];
    int shift = 1;
    char cmd[64];
    if (!strcmp(sub, "alias")) {
        if (argc < 3) return cli_usage_error("registry alias", "set, get, list or delete?");
        snprintf(cmd, sizeof cmd, "registry alias %s", argv[2]);
        shift = 2;
    } else {
        snprintf(cmd, sizeof cmd, "registry %s", sub);
    }
    reg_args a;
    int p = parse(cmd, argc - shift, argv + shift, &a);
    if (p) return p < 0 ? EXIT_OK : p;
    if (!strcmp(sub, "upload")) return reg_upload(cmd, &a);
    if (!strcmp(sub, "list")) return reg_list(cmd, &a, true, true);
    if (!strcmp(sub, "download")) return reg_download(cmd, &a);
    if (!strcmp(sub, "alias")) {
        const char *op = argv[2];
        if (!strcmp(op, "set")) return reg_alias_set(cmd, &a);
        if (!strcmp(op, "get")) return reg_alias_get(cmd, &a, false);
        if (!strcmp(op, "list")) return reg_list(cmd, &a, false, true);
        if (!strcmp(op, "delete")) return reg_alias_get(cmd, &a, true);
        return cli_usage_error("registry alias", "unknown subcommand '%s' (set, get, list, delete)",
                               op);
    }
    return cli_usage_error("registry", "unknown subcommand '%s' (see --help)", sub);
}
