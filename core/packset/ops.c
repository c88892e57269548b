/* Packset operations: build-base, build-delta, append/promote, revert, rebase, create.
 * See include/annpack/packset.h and docs/PACKSET.md.
 *
 * Crash safety: new data is written under new names (temporary directories renamed into
 * place, or fresh delta directories), fsynced, and the root manifest is replaced last by
 * an atomic rename. Until that rename the old root manifest, which names only old files,
 * is what every reader sees; after it, the new one, whose files are all durable. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annpack/caps.h"
#include "annpack/log.h"
#include "annpack/packset.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "ops.h"
#include "pack_write.h"
#include "view.h"

ap_status ap_parse_id_list(const char *text, size_t len, const char *name, uint64_t **ids,
                           size_t *n, ap_err *err)
{
    *ids = NULL;
    *n = 0;
    size_t cap = 0, line = 0;
    const char *p = text, *end = text + len;
    ap_status st = AP_OK;
    while (p < end && !st) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        const char *a = p, *b = le;
        while (a < b && (*a == ' ' || *a == '\t' || *a == '\r'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
            b--;
        p = nl ? nl + 1 : end;
        if (a == b) continue;
        uint64_t id = 0;
        char what[300];
        snprintf(what, sizeof what, "%.250s:%zu", name, line);
        if (*a == '{') {
            cJSON *j = NULL;
            if ((st = ap_json_parse_strict(a, (size_t)(b - a), what, &j, err))) break;
            const cJSON *it = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
            char w2[320];
            snprintf(w2, sizeof w2, "%s: \"id\"", what);
            st = it ? ap_json_item_u64(it, AP_JSON_MAX_SAFE_INT, w2, &id, err)
                    : ap_err_set(err, AP_ERR_FORMAT, "%s: expected {\"id\": N}", what);
            cJSON_Delete(j);
            if (st) break;
        } else {
            int ok = b - a <= 16;
            for (const char *c = a; ok && c < b; c++) {
                ok = *c >= '0' && *c <= '9';
                id = id * 10 + (uint64_t)(*c - '0');
            }
            if (!ok || id > AP_JSON_MAX_SAFE_INT) {
                /* Only this line, escaped and cut: the message stays one line. */
                char ex[200];
                ap_json_excerpt(ex, sizeof ex, a, (size_t)(b - a), 40);
                st = ap_err_set(err, AP_ERR_FORMAT,
                                "%s: \"%s\" is not an id (an integer in [0, 2^53) or {\"id\": N})",
                                what, ex);
                break;
            }
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            uint64_t *g = realloc(*ids, cap * sizeof *g);
            if (!g) {
                st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
                break;
            }
            *ids = g;
        }
        (*ids)[(*n)++] = id;
    }
    if (st) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return st;
}

/* ---- hashing layer files into the root manifest ----------------------------------- */

static ap_status hash_rel(const char *root, const char *rel, char hex[AP_SHA256_HEX], ap_err *err)
{
    char *p = ap_path_join(root, rel);
    if (!p) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    uint64_t size;
    ap_status st = ap_sha256_file(p, hex, &size, err);
    free(p);
    return st;
}

static char *rel_join(const char *a, const char *b)
{
    return ap_path_join(a, b);
}

/* Adds "key": path and "sha256_key": hash of root/path. */
static ap_status add_hashed(cJSON *o, const char *root, const char *key, const char *path,
                            ap_err *err)
{
    char hex[AP_SHA256_HEX], hk[64];
    ap_status st = hash_rel(root, path, hex, err);
    if (st) return st;
    snprintf(hk, sizeof hk, "sha256_%s", key);
    cJSON_AddStringToObject(o, key, path);
    cJSON_AddStringToObject(o, hk, hex);
    return AP_OK;
}

/* The name of a pack directory's metadata file, from its manifest. */
static ap_status pack_meta_name(const char *dir, char **out, ap_err *err)
{
    ap_pack_manifest m;
    ap_status st = ap_pack_manifest_load(dir, &m, err);
    if (st) return st;
    *out = strdup(m.meta);
    ap_pack_manifest_free(&m);
    return *out ? AP_OK : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
}

static ap_status layer_block(cJSON *o, const char *root, const char *path, ap_err *err)
{
    char *dir = ap_path_join(root, path), *meta = NULL;
    char *pa = rel_join(path, AP_ANNPACK), *pm = NULL, *pman = rel_join(path, AP_MANIFEST);
    ap_status st = (!dir || !pa || !pman) ? ap_err_set(err, AP_ERR_NOMEM, "out of memory") : AP_OK;
    if (!st) st = pack_meta_name(dir, &meta, err);
    if (!st && !(pm = rel_join(path, meta))) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) cJSON_AddStringToObject(o, "path", path);
    if (!st) st = add_hashed(o, root, "annpack", pa, err);
    if (!st) st = add_hashed(o, root, "meta", pm, err);
    if (!st) st = add_hashed(o, root, "manifest", pman, err);
    free(dir);
    free(meta);
    free(pa);
    free(pm);
    free(pman);
    return st;
}

/* Adds a delta's entry: its layer block, tombstones, delta manifest, and the base hash. */
static ap_status delta_block(cJSON *d, const char *root, uint64_t seq, const char *path,
                             const char *base_hex, ap_err *err)
{
    ap_json_add_u64(d, "seq", seq);
    ap_status st = layer_block(d, root, path, err);
    if (st) return st;
    char *t = rel_join(path, AP_TOMBSTONES);
    char *dm = rel_join(path, AP_DELTA_MANIFEST);
    if (!t || !dm) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) st = add_hashed(d, root, "tombstones", t, err);
    if (!st) st = add_hashed(d, root, "delta_manifest", dm, err);
    free(t);
    free(dm);
    if (!st) cJSON_AddStringToObject(d, "base_sha256_annpack", base_hex);
    return st;
}

/* Writes root/pack.manifest.json atomically. */
ap_status ap_root_write(const char *root, uint64_t version, const char *base_path,
                        const ap_delta_ref *deltas, size_t n, const cJSON *expires, ap_err *err)
{
    cJSON *m = cJSON_CreateObject();
    char *text = NULL, *bdir = ap_path_join(root, base_path), *emb = NULL;
    ap_pack *bp = NULL;
    ap_status st = (!m || !bdir) ? ap_err_set(err, AP_ERR_NOMEM, "out of memory") : AP_OK;
    if (!st) st = ap_pack_open(bdir, &bp, err);
    if (st) goto out;
    cJSON_AddNumberToObject(m, "schema_version", AP_PACKSET_SCHEMA);
    cJSON_AddStringToObject(m, "format", "annpack-packset");
    ap_json_add_u64(m, "version", version);
    ap_json_add_u64(m, "dim", ap_annp_get_header(ap_pack_annp(bp))->dim);
    emb = ap_embedder_describe(ap_pack_embedder(bp));
    cJSON *e = NULL;
    if (!emb || (st = ap_json_parse_strict(emb, strlen(emb), "embedder", &e, err))) {
        if (!st) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    cJSON_AddItemToObject(m, "embedder", e);
    if (expires) cJSON_AddItemToObject(m, "expires", cJSON_Duplicate(expires, 1));
    cJSON *b = cJSON_AddObjectToObject(m, "base");
    if ((st = layer_block(b, root, base_path, err))) goto out;
    char base_hex[AP_SHA256_HEX];
    snprintf(base_hex, sizeof base_hex, "%s",
             cJSON_GetObjectItemCaseSensitive(b, "sha256_annpack")->valuestring);
    cJSON *arr = cJSON_AddArrayToObject(m, "deltas");
    for (size_t i = 0; i < n && !st; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, d);
        st = delta_block(d, root, deltas[i].seq, deltas[i].path, base_hex, err);
    }
    if (st) goto out;
    size_t len;
    text = ap_json_render(m, &len);
    char *path = ap_path_join(root, AP_MANIFEST);
    st = text && path ? ap_write_file_atomic(path, text, len, 0644, err)
                      : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    free(path);
out:
    ap_pack_close(bp);
    free(emb);
    free(bdir);
    free(text);
    cJSON_Delete(m);
    return st;
}

/* ---- changing a packset ------------------------------------------------------------ */

ap_status ap_change_begin(const char *dir, const ap_change_opts *co, const char *what, ap_change *c,
                          ap_err *err)
{
    static const ap_change_opts none = {0};
    if (!co) co = &none;
    memset(c, 0, sizeof *c);
    c->dir = dir;
    c->lock_fd = -1;
    ap_status st = ap_dir_lock(dir, &c->lock_fd, err);
    if (st) return st;
    char *sig = ap_path_join(dir, AP_SIGNATURE);
    struct stat sb;
    if (!sig) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    c->was_signed = lstat(sig, &sb) == 0;
    if (c->was_signed && !co->npubkeys) {
        st = ap_err_set(err, AP_ERR_VERIFY,
                        "%s is signed (%s): pass its public key (--pubkey PUB) so the signature "
                        "is checked before it is read or changed; refusing to %s it",
                        dir, sig, what);
        goto fail;
    }
    /* Integrity, not freshness: an expired packset may be changed (and re-signed). */
    ap_verify_opts vo = {.pubkeys = co->pubkeys, .npubkeys = co->npubkeys, .allow_expired = true};
    if ((st = ap_verify_dir(dir, &vo, NULL, err))) {
        char tmp[AP_ERR_MSG_MAX];
        snprintf(tmp, sizeof tmp, "%s", err ? err->msg : "");
        st = ap_err_set(err, st, "refusing to %s %s: it does not verify: %s", what, dir, tmp);
        goto fail;
    }
    if ((st = ap_root_manifest_load(dir, &c->m, err))) goto fail;
    if (c->m.schema != AP_PACKSET_SCHEMA) {
        st = ap_err_set(err, AP_ERR_ARG, "%s is a pack, not a packset (schema_version 3)", dir);
        goto fail;
    }
    if (!(c->base_dir = ap_path_join(dir, c->m.base_path))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    free(sig);
    return AP_OK;
fail:
    free(sig);
    ap_change_end(c);
    return st;
}

void ap_change_end(ap_change *c)
{
    ap_root_manifest_free(&c->m);
    free(c->base_dir);
    c->base_dir = NULL;
    ap_dir_unlock(c->lock_fd);
    c->lock_fd = -1;
}

cJSON *ap_change_next_root(const ap_change *c, size_t keep, ap_err *err)
{
    if (c->m.version >= AP_JSON_MAX_SAFE_INT) {
        ap_err_set(err, AP_ERR_LIMIT, "%s: version %llu cannot increase further", c->dir,
                   (unsigned long long)c->m.version);
        return NULL;
    }
    cJSON *r = cJSON_Duplicate(c->m.root, 1);
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)c->m.version + 1);
    cJSON *nv = cJSON_CreateRaw(v);
    if (!r || !nv || !cJSON_ReplaceItemInObjectCaseSensitive(r, "version", nv)) {
        if (!r || !cJSON_GetObjectItemCaseSensitive(r, "version")) cJSON_Delete(nv);
        cJSON_Delete(r);
        ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "deltas");
    if (!d) d = cJSON_AddArrayToObject(r, "deltas");
    if (!cJSON_IsArray(d)) {
        cJSON_Delete(r);
        ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    while (cJSON_GetArraySize(d) > (int)keep)
        cJSON_DeleteItemFromArray(d, (int)keep);
    return r;
}

ap_status ap_root_add_delta(cJSON *root, const char *dir, uint64_t seq, const char *path,
                            ap_err *err)
{
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "deltas");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(root, "base");
    const cJSON *bh = base ? cJSON_GetObjectItemCaseSensitive(base, "sha256_annpack") : NULL;
    if (!arr || !bh || !cJSON_IsArray(arr) || !cJSON_IsString(bh) || !bh->valuestring)
        return ap_err_set(err, AP_ERR_INTERNAL, "%s: root manifest without deltas or base hash",
                          dir);
    cJSON *d = cJSON_CreateObject();
    if (!d) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    cJSON_AddItemToArray(arr, d);
    return delta_block(d, dir, seq, path, bh->valuestring, err);
}

ap_status ap_change_commit(ap_change *c, const cJSON *root, const char *step, ap_err *err)
{
    size_t len;
    char *text = ap_json_render(root, &len), *path = ap_path_join(c->dir, AP_MANIFEST);
    char point[64];
    ap_status st = text && path ? AP_OK : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) {
        snprintf(point, sizeof point, "%s:before-manifest", step);
        ap_crash_point(point);
        st = ap_write_file_atomic(path, text, len, 0644, err);
    }
    if (!st) {
        snprintf(point, sizeof point, "%s:after-manifest", step);
        ap_crash_point(point);
        /* The old signature signs the old manifest bytes only: never leave it beside the new
         * ones (the caller says so; the packset must be signed again). */
        ap_err e2 = {0};
        if (ap_unlink_in(c->dir, AP_SIGNATURE, NULL, &e2))
            st = ap_err_set(err, AP_ERR_IO,
                            "%s changed to version %llu, but its old signature could not be "
                            "removed (remove %s/%s): %s",
                            c->dir, (unsigned long long)c->m.version + 1, c->dir, AP_SIGNATURE,
                            e2.msg);
    }
    free(text);
    free(path);
    return st;
}

bool ap_paths_overlap(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;
    if (strncmp(a, b, n) != 0) return false;
    return la == lb || (la < lb ? b[la] == '/' : a[lb] == '/');
}

ap_status ap_check_packset_out(const char *out, bool force, bool *exists, ap_err *err)
{
    *exists = false;
    struct stat sb;
    if (lstat(out, &sb) != 0) {
        if (errno == ENOENT) return AP_OK;
        return ap_err_errno(err, AP_ERR_IO, errno, "%s", out);
    }
    if (!S_ISDIR(sb.st_mode))
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not a directory; refusing to replace it", out);
    *exists = true;
    if (force || ap_dir_entries(out) == 0) return AP_OK;
    char *sig = ap_path_join(out, AP_SIGNATURE);
    bool is_signed = sig && lstat(sig, &sb) == 0;
    free(sig);
    if (is_signed)
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is signed; refusing to replace it (use --force)", out);
    ap_root_manifest m;
    ap_status st = ap_root_manifest_load(out, &m, NULL);
    bool packset = !st && m.schema == AP_PACKSET_SCHEMA;
    ap_root_manifest_free(&m);
    if (!packset)
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not a packset; refusing to overwrite it (use --force)",
                          out);
    return AP_OK; /* it may be this very result (an interrupted run): compared at the end */
}

ap_status ap_publish_packset_out(const char *tmp, const char *out, bool exists, bool force,
                                 ap_err *err)
{
    bool empty = exists && ap_dir_entries(out) == 0;
    if (exists && !empty && ap_tree_equal(tmp, out)) {
        ap_rmtree(tmp); /* exactly this result already (an interrupted run wrote it) */
        return AP_OK;
    }
    if (exists && !empty && !force)
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and differs from the packset this command writes; refusing "
                          "to replace it (use --force)",
                          out);
    return ap_publish_dir(tmp, out, exists, err);
}

/* ---- build-base ------------------------------------------------------------------------ */

/* An existing packset directory may be replaced without force only when it is exactly an
 * earlier build-base output: unsigned, version 1, no deltas, nothing but the root manifest
 * and a base holding only build files. */
static ap_status check_base_output(const char *dir, bool force, bool *replace, ap_err *err)
{
    *replace = false;
    struct stat sb;
    if (lstat(dir, &sb) != 0) {
        if (errno == ENOENT) return AP_OK;
        return ap_err_errno(err, AP_ERR_IO, errno, "%s", dir);
    }
    if (!S_ISDIR(sb.st_mode))
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not a directory; refusing to replace it", dir);
    *replace = true;
    if (force || ap_dir_entries(dir) == 0) return AP_OK;
    char *ps = NULL;
    if (ap_enclosing_packset(dir, &ps)) {
        ap_status st = ap_err_set(
            err, AP_ERR_EXISTS, "%s is inside the packset %s; refusing to replace it (use --force)",
            dir, ps);
        free(ps);
        return st;
    }
    ap_root_manifest m;
    if (ap_root_manifest_load(dir, &m, NULL) || m.schema != AP_PACKSET_SCHEMA) {
        ap_root_manifest_free(&m);
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not a packset; refusing to overwrite it (use --force)",
                          dir);
    }
    char *sig = ap_path_join(dir, AP_SIGNATURE), *base = ap_path_join(dir, "base");
    int is_signed = sig && lstat(sig, &sb) == 0;
    ap_status st = AP_OK;
    if (m.version != 1 || m.ndeltas || is_signed || strcmp(m.base_path, "base") != 0 ||
        ap_dir_entries(dir) != 2 || !base || ap_only_build_files(base, NULL))
        st = ap_err_set(err, AP_ERR_EXISTS,
                        "%s is a packset (version %llu, %zu deltas%s) and not an earlier "
                        "build-base output; build-base would replace it with a new version 1: "
                        "refusing (use --force to replace it; build-delta, revert and rebase "
                        "change a packset)",
                        dir, (unsigned long long)m.version, m.ndeltas,
                        is_signed ? ", signed" : ", other files");
    free(sig);
    free(base);
    ap_root_manifest_free(&m);
    return st;
}

ap_status ap_packset_build_base(const ap_build_opts *o, ap_build_report *rep, ap_err *err)
{
    if (!o->output_dir) return ap_err_set(err, AP_ERR_ARG, "build-base needs --packset DIR");
    bool replace = false;
    ap_status st = check_base_output(o->output_dir, o->force, &replace, err);
    if (st) return st;
    char *tmp = NULL, *base = NULL;
    if ((st = ap_mkdtemp_beside(o->output_dir, &tmp, err))) return st;
    if (!(base = ap_path_join(tmp, "base"))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    ap_build_opts bo = *o;
    bo.output_dir = base;
    bo.force = false;
    if ((st = ap_pack_build(&bo, rep, err))) goto out;
    if ((st = ap_root_write(tmp, 1, "base", NULL, 0, NULL, err))) goto out;
    st = ap_publish_dir(tmp, o->output_dir, replace, err);
    if (!st) {
        free(tmp);
        tmp = NULL;
    }
out:
    if (tmp) ap_rmtree(tmp);
    free(tmp);
    free(base);
    return st;
}

/* ---- deltas -------------------------------------------------------------------------- */

/* ids sorted and unique. */
static ap_status write_tombstones(const char *dir, const uint64_t *ids, size_t n, ap_err *err)
{
    char *buf = malloc(n * 32 + 1), *path = ap_path_join(dir, AP_TOMBSTONES);
    ap_status st = (!buf || !path) ? ap_err_set(err, AP_ERR_NOMEM, "out of memory") : AP_OK;
    size_t at = 0;
    for (size_t i = 0; i < n && !st; i++)
        at += (size_t)snprintf(buf + at, 32, "{\"id\":%llu}\n", (unsigned long long)ids[i]);
    if (!st) st = ap_write_file(path, buf, at, err);
    free(buf);
    free(path);
    return st;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The refusal for an existing out_dir that is not the delta just built. */
static ap_status differs(const char *out, ap_err *err)
{
    char *ps = NULL;
    ap_status st;
    if (ap_enclosing_packset(out, &ps))
        st = ap_err_set(err, AP_ERR_EXISTS,
                        "%s exists, is not in the root manifest of %s and is not the delta this "
                        "command builds: a leftover of an interrupted build-delta or "
                        "promote-delta, or a delta staged there; remove it, or pass --force to "
                        "replace it",
                        out, ps);
    else
        st = ap_err_set(err, AP_ERR_EXISTS,
                        "%s exists and is not the delta this command builds (a leftover of an "
                        "interrupted run, or another delta); remove it, or pass --force to "
                        "replace it",
                        out);
    free(ps);
    return st;
}

ap_status ap_delta_build(const ap_delta_opts *o, ap_err *err)
{
    if (!o->base_dir || !o->out_dir)
        return ap_err_set(err, AP_ERR_ARG, "build-delta needs a base and --out");
    if (!o->add_csv && !o->n_delete)
        return ap_err_set(err, AP_ERR_ARG, "build-delta needs --add and/or --delete-ids");
    struct stat sb;
    bool exists = lstat(o->out_dir, &sb) == 0;
    if (exists && !S_ISDIR(sb.st_mode))
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not a directory; a delta is written to a new directory",
                          o->out_dir);
    bool empty = exists && ap_dir_entries(o->out_dir) == 0;
    if (exists && !empty && !o->force) {
        /* Only a delta can equal the one built: refuse anything else before building. */
        char *dmp = ap_path_join(o->out_dir, AP_DELTA_MANIFEST);
        bool delta = dmp && lstat(dmp, &sb) == 0;
        free(dmp);
        if (!delta)
            return ap_err_set(err, AP_ERR_EXISTS,
                              "%s exists and is not a delta; refusing to replace it (use --force)",
                              o->out_dir);
    }
    ap_pack *base = NULL;
    char *tmp = NULL, *emb = NULL, *bann = NULL, *bman = NULL, *dm = NULL, *text = NULL;
    uint64_t *del = NULL;
    ap_meta *meta = NULL;
    cJSON *j = NULL;
    ap_status st = ap_pack_open(o->base_dir, &base, err);
    if (st) return st;
    emb = ap_embedder_describe(ap_pack_embedder(base));
    bann = ap_path_join(o->base_dir, AP_ANNPACK);
    bman = ap_path_join(o->base_dir, AP_MANIFEST);
    del = malloc((o->n_delete ? o->n_delete : 1) * sizeof *del);
    if (!emb || !bann || !bman || !del) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (o->n_delete) memcpy(del, o->delete_ids, o->n_delete * sizeof *del);
    qsort(del, o->n_delete, sizeof *del, cmp_u64);
    size_t nd = 0;
    for (size_t i = 0; i < o->n_delete; i++)
        if (nd == 0 || del[nd - 1] != del[i]) del[nd++] = del[i];
    if ((st = ap_mkdtemp_beside(o->out_dir, &tmp, err))) goto out;
    if (o->add_csv) {
        ap_build_opts bo = {.input_csv = o->add_csv,
                            .text_col = o->text_col,
                            .id_col = o->id_col,
                            .output_dir = tmp,
                            .lists = o->lists,
                            .seed = o->seed,
                            .meta_codec = o->meta_codec,
                            .force = true,
                            .embedder_json = emb,
                            .progress = o->progress,
                            .progress_ud = o->progress_ud};
        /* ap_pack_build renames its own temporary directory onto tmp (which is empty). */
        if ((st = ap_pack_build(&bo, NULL, err))) goto out;
    } else {
        ap_embedder *e = NULL;
        ap_meta_writer *w = NULL;
        st = ap_embedder_from_json(emb, strlen(emb), "embedder", &e, err);
        if (!st) st = ap_meta_writer_open(tmp, o->meta_codec, 0, &w, err);
        if (!st) st = ap_meta_writer_finish(w, err);
        ap_meta_writer_free(w);
        cJSON *bb = cJSON_CreateObject();
        cJSON_AddStringToObject(bb, "input", "none (delete-only delta)");
        ap_pack_spec sp = {
            .emb = e, .n = 0, .lists = 1, .seed = o->seed, .codec = o->meta_codec, .build = bb};
        if (!st) st = ap_pack_finish(tmp, &sp, NULL, err);
        cJSON_Delete(bb);
        ap_embedder_free(e);
        if (st) goto out;
    }
    /* An id both added and deleted in one delta is ambiguous: refuse it. */
    if ((st = ap_meta_open(tmp, &meta, err))) goto out;
    for (size_t i = 0; i < nd; i++) {
        char *row = NULL;
        size_t rl;
        if (ap_meta_get(meta, del[i], &row, &rl, NULL) == AP_OK) {
            free(row);
            st = ap_err_set(err, AP_ERR_ARG,
                            "id %llu is both added (in %s) and deleted in one delta",
                            (unsigned long long)del[i], o->add_csv);
            goto out;
        }
    }
    uint64_t adds = ap_meta_count(meta);
    if ((st = write_tombstones(tmp, del, nd, err))) goto out;
    char bhex[AP_SHA256_HEX], mhex[AP_SHA256_HEX];
    uint64_t sz;
    if ((st = ap_sha256_file(bann, bhex, &sz, err)) || (st = ap_sha256_file(bman, mhex, &sz, err)))
        goto out;
    j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "schema_version", 1);
    cJSON_AddStringToObject(j, "kind", "annpack-delta");
    cJSON_AddStringToObject(j, "base_sha256_annpack", bhex);
    cJSON_AddStringToObject(j, "base_sha256_manifest", mhex);
    cJSON *e = NULL;
    if ((st = ap_json_parse_strict(emb, strlen(emb), "embedder", &e, err))) goto out;
    cJSON_AddItemToObject(j, "embedder", e);
    ap_json_add_u64(j, "adds", adds);
    ap_json_add_u64(j, "tombstones", nd);
    cJSON *files = cJSON_AddObjectToObject(j, "files");
    if ((st = ap_manifest_add_file(files, tmp, AP_MANIFEST, err)) ||
        (st = ap_manifest_add_file(files, tmp, AP_TOMBSTONES, err)))
        goto out;
    size_t len;
    text = ap_json_render(j, &len);
    dm = ap_path_join(tmp, AP_DELTA_MANIFEST);
    if (!text || !dm) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = ap_write_file(dm, text, len, err))) goto out;
    if (exists && !empty && ap_tree_equal(tmp, o->out_dir)) {
        /* Exactly what this command builds (an interrupted run left it): keep it. */
        ap_rmtree(tmp);
    } else if (exists && !empty && !o->force) {
        st = differs(o->out_dir, err);
        goto out;
    } else if ((st = ap_publish_dir(tmp, o->out_dir, exists, err))) {
        goto out;
    }
    free(tmp);
    tmp = NULL;
out:
    ap_meta_close(meta);
    cJSON_Delete(j);
    if (tmp) ap_rmtree(tmp);
    free(tmp);
    free(emb);
    free(bann);
    free(bman);
    free(dm);
    free(text);
    free(del);
    ap_pack_close(base);
    return st;
}
