/* Writing the packset root manifest, schema 3 (docs/PACKSET.md): every layer's files named
 * and hashed in place. The reader is format/root_manifest.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/packset.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "pack_open.h"
#include "root_write.h"

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
