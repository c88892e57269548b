/* Reading the packset root manifest: see root_manifest.h and docs/PACKSET.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/caps.h"
#include "annpack/format.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "path.h"
#include "root_manifest.h"

static ap_status path_field(const cJSON *o, const char *key, const char *name, const char *where,
                            const char **out, ap_err *err)
{
    ap_status st = ap_json_str(o, key, name, out, err);
    if (st) return st;
    char field[128];
    snprintf(field, sizeof field, "%s.%s", where, key);
    return ap_path_check(*out, name, field, err);
}

static ap_status hash_field(const cJSON *o, const char *key, const char *name, const char **out,
                            ap_err *err)
{
    ap_status st = ap_json_str(o, key, name, out, err);
    if (st) return st;
    if (!ap_is_sha256_hex(*out))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: field \"%s\" is not 64 lowercase hex digits",
                          name, key);
    return AP_OK;
}

ap_status ap_root_manifest_load(const char *dir, ap_root_manifest *m, ap_err *err)
{
    memset(m, 0, sizeof *m);
    char *path = NULL, *raw = NULL;
    size_t len = 0;
    ap_status st = ap_manifest_read(dir, &path, &raw, &len, err);
    if (!st) st = ap_root_manifest_parse(raw, len, path, m, err);
    free(path);
    return st;
}

/* A layer file's root-relative path must be the layer path plus the file's own name, so
 * the root manifest and the layer's manifest name the same file. */
static ap_status layer_file(const char *layer, const char *rel, const char *name, const char *field,
                            ap_err *err)
{
    size_t n = strlen(layer);
    if (strncmp(rel, layer, n) != 0 || rel[n] != '/' || strchr(rel + n + 1, '/'))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %s \"%s\" is not a file directly in \"%s\"",
                          name, field, rel, layer);
    return AP_OK;
}

/* "base": its path, the root-relative paths of its files (directly in it) and their
 * hashes. */
static ap_status parse_base(const cJSON *r, const char *name, ap_root_manifest *m, ap_err *err)
{
    const cJSON *base;
    ap_status st;
    if ((st = ap_json_member(r, "base", cJSON_Object, name, &base, err)) ||
        (st = path_field(base, "path", name, "base", &m->base_path, err)) ||
        (st = path_field(base, "annpack", name, "base", &m->base_annpack, err)) ||
        (st = path_field(base, "meta", name, "base", &m->base_meta, err)) ||
        (st = path_field(base, "manifest", name, "base", &m->base_manifest, err)) ||
        (st = hash_field(base, "sha256_annpack", name, &m->base_sha256_annpack, err)) ||
        (st = hash_field(base, "sha256_meta", name, &m->base_sha256_meta, err)) ||
        (st = hash_field(base, "sha256_manifest", name, &m->base_sha256_manifest, err)) ||
        (st = layer_file(m->base_path, m->base_annpack, name, "base.annpack", err)) ||
        (st = layer_file(m->base_path, m->base_meta, name, "base.meta", err)))
        return st;
    return layer_file(m->base_path, m->base_manifest, name, "base.manifest", err);
}

/* deltas[i]: a seq above the previous one's, its path, files and hashes, built against
 * the base. */
static ap_status parse_delta(const cJSON *d, size_t i, const char *name, ap_root_manifest *m,
                             ap_err *err)
{
    ap_delta_entry *e = &m->deltas[i];
    char where[32];
    snprintf(where, sizeof where, "deltas[%zu]", i);
    if (!cJSON_IsObject(d))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %s is not an object", name, where);
    ap_status st = ap_json_u64(d, "seq", UINT32_MAX, name, &e->seq, err);
    if (st) return st;
    if (e->seq == 0 || (i > 0 && e->seq <= m->deltas[i - 1].seq))
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: %s.seq %llu is not greater than the previous seq (seqs start at 1 "
                          "and increase)",
                          name, where, (unsigned long long)e->seq);
    if ((st = path_field(d, "path", name, where, &e->path, err)) ||
        (st = path_field(d, "annpack", name, where, &e->annpack, err)) ||
        (st = path_field(d, "meta", name, where, &e->meta, err)) ||
        (st = path_field(d, "tombstones", name, where, &e->tombstones, err)) ||
        (st = path_field(d, "manifest", name, where, &e->manifest, err)) ||
        (st = path_field(d, "delta_manifest", name, where, &e->delta_manifest, err)) ||
        (st = hash_field(d, "base_sha256_annpack", name, &e->base_sha256_annpack, err)) ||
        (st = hash_field(d, "sha256_annpack", name, &e->sha256_annpack, err)) ||
        (st = hash_field(d, "sha256_meta", name, &e->sha256_meta, err)) ||
        (st = hash_field(d, "sha256_tombstones", name, &e->sha256_tombstones, err)) ||
        (st = hash_field(d, "sha256_manifest", name, &e->sha256_manifest, err)) ||
        (st = hash_field(d, "sha256_delta_manifest", name, &e->sha256_delta_manifest, err)))
        return st;
    if ((st = layer_file(e->path, e->annpack, name, "annpack", err)) ||
        (st = layer_file(e->path, e->meta, name, "meta", err)) ||
        (st = layer_file(e->path, e->tombstones, name, "tombstones", err)) ||
        (st = layer_file(e->path, e->manifest, name, "manifest", err)) ||
        (st = layer_file(e->path, e->delta_manifest, name, "delta_manifest", err)))
        return st;
    if (strcmp(e->base_sha256_annpack, m->base_sha256_annpack) != 0)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s: %s (seq %llu) was built against another base (base_sha256_annpack "
                          "%.16s..., this base %.16s...)",
                          name, e->path, (unsigned long long)e->seq, e->base_sha256_annpack,
                          m->base_sha256_annpack);
    return AP_OK;
}

/* "deltas": at most AP_MAX_DELTAS entries (parse_delta). */
static ap_status parse_deltas(const cJSON *r, const char *name, ap_root_manifest *m, ap_err *err)
{
    const cJSON *deltas, *d;
    ap_status st = ap_json_member(r, "deltas", cJSON_Array, name, &deltas, err);
    if (st) return st;
    int nd = cJSON_GetArraySize(deltas);
    if ((unsigned)nd > AP_MAX_DELTAS)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: %d deltas (at most %u)", name, nd, AP_MAX_DELTAS);
    m->ndeltas = (size_t)nd;
    m->deltas = calloc(nd ? (size_t)nd : 1, sizeof *m->deltas);
    if (!m->deltas) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    size_t i = 0;
    cJSON_ArrayForEach(d, deltas)
    {
        if ((st = parse_delta(d, i++, name, m, err))) return st;
    }
    return AP_OK;
}

ap_status ap_root_manifest_parse(char *raw, size_t raw_len, const char *name, ap_root_manifest *m,
                                 ap_err *err)
{
    memset(m, 0, sizeof *m);
    m->raw = raw;
    m->raw_len = raw_len;
    ap_status st = ap_json_parse_strict(raw, raw_len, name, &m->root, err);
    if (st) goto out;
    const cJSON *r = m->root;
    uint64_t v;
    if (!cJSON_IsObject(r)) {
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: not a JSON object", name);
        goto out;
    }
    if ((st = ap_json_u64(r, "schema_version", 1000, name, &v, err))) goto out;
    m->schema = (uint32_t)v;
    if (v == AP_PACK_SCHEMA) goto out; /* a single pack: ap_pack_open reads the rest */
    if (v != 3) {
        st = ap_err_set(err, AP_ERR_UNSUPPORTED, "%s: schema_version %llu not supported (2 or 3)",
                        name, (unsigned long long)v);
        goto out;
    }
    if ((st = ap_json_u64(r, "version", AP_JSON_MAX_SAFE_INT, name, &m->version, err)) ||
        (st = parse_base(r, name, m, err)) ||
        (st = ap_json_u64(r, "dim", UINT32_MAX, name, &v, err)))
        goto out;
    m->dim = (uint32_t)v;
    if (!(st = ap_json_member(r, "embedder", cJSON_Object, name, &m->embedder, err)))
        st = parse_deltas(r, name, m, err);
out:
    if (st) ap_root_manifest_free(m);
    return st;
}

void ap_root_manifest_free(ap_root_manifest *m)
{
    cJSON_Delete(m->root);
    free(m->raw);
    free(m->deltas);
    memset(m, 0, sizeof *m);
}
