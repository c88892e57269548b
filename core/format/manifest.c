/* Pack manifest, schema 2: see manifest.h and docs/FORMAT.md. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/caps.h"
#include "annpack/format.h"
#include "annpack/meta.h"
#include "annpack/sign.h"
#include "annpack/sq8.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "path.h"
#include "source.h"

const ap_manifest_file *ap_pack_manifest_file(const ap_pack_manifest *m, const char *path)
{
    for (size_t i = 0; i < m->nfiles; i++)
        if (m->files[i].path && strcmp(m->files[i].path, path) == 0) return &m->files[i];
    return NULL;
}

bool ap_is_sha256_hex(const char *s)
{
    if (strlen(s) != 64) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
    return true;
}

static ap_status cap_message(ap_status st, const char *name, ap_err *err)
{
    if (st != AP_ERR_LIMIT) return st;
    return ap_err_set(err, AP_ERR_LIMIT, "%s: exceeds the manifest cap of %u bytes", name,
                      (unsigned)AP_MAX_MANIFEST_BYTES);
}

ap_status ap_manifest_read(const char *dir, char **path, char **raw, size_t *len, ap_err *err)
{
    *raw = NULL;
    *len = 0;
    if (!(*path = ap_path_join(dir, AP_MANIFEST)))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    return cap_message(ap_read_file(*path, AP_MAX_MANIFEST_BYTES, raw, len, err), *path, err);
}

ap_status ap_manifest_read_at(int dirfd, const char *dir, const char *name, char **raw, size_t *len,
                              ap_err *err)
{
    *raw = NULL;
    *len = 0;
    ap_src s;
    ap_status st = ap_src_open(dirfd, AP_MANIFEST, dir, &s, err);
    if (st) return st;
    st = cap_message(ap_src_read(&s, AP_MAX_MANIFEST_BYTES, raw, len, err), name, err);
    ap_src_close(&s);
    return st;
}

ap_status ap_pack_manifest_load(const char *dir, ap_pack_manifest *m, ap_err *err)
{
    memset(m, 0, sizeof *m);
    char *path = NULL, *raw = NULL;
    size_t len = 0;
    ap_status st = ap_manifest_read(dir, &path, &raw, &len, err);
    if (!st) st = ap_pack_manifest_parse(raw, len, path, m, err);
    free(path);
    return st;
}

/* schema_version, dim, n_lists, n_vectors (dim and n_lists within the caps). */
static ap_status parse_counts(const cJSON *r, const char *name, ap_pack_manifest *m, ap_err *err)
{
    const ap_caps *caps = ap_caps_get();
    uint64_t v;
    ap_status st;
    if ((st = ap_json_u64(r, "schema_version", 1000, name, &v, err))) return st;
    if (v != AP_PACK_SCHEMA)
        return ap_err_set(err, AP_ERR_UNSUPPORTED,
                          "%s: schema_version %llu is not a pack manifest (need 2%s)", name,
                          (unsigned long long)v, v == 3 ? "; this is a packset" : "");
    if ((st = ap_json_u64(r, "dim", UINT32_MAX, name, &v, err))) return st;
    if (v > caps->max_dim)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: dim %llu exceeds ANNPACK_MAX_DIM (%u)", name,
                          (unsigned long long)v, caps->max_dim);
    m->dim = (uint32_t)v;
    if ((st = ap_json_u64(r, "n_lists", UINT32_MAX, name, &v, err))) return st;
    if (v > caps->max_lists)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: n_lists %llu exceeds ANNPACK_MAX_LISTS (%u)",
                          name, (unsigned long long)v, caps->max_lists);
    m->n_lists = (uint32_t)v;
    if ((st = ap_json_u64(r, "n_vectors", UINT32_MAX, name, &v, err))) return st;
    m->n_vectors = (uint32_t)v;
    return AP_OK;
}

/* The one shard: its annpack and meta file names, safe paths. */
static ap_status parse_shard(const cJSON *r, const char *name, ap_pack_manifest *m, ap_err *err)
{
    const cJSON *shards;
    ap_status st = ap_json_member(r, "shards", cJSON_Array, name, &shards, err);
    if (st) return st;
    if (cJSON_GetArraySize(shards) != 1)
        return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s: %d shards (this version reads exactly 1)",
                          name, cJSON_GetArraySize(shards));
    const cJSON *sh = shards->child;
    if (!cJSON_IsObject(sh))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: shards[0] is not an object", name);
    if ((st = ap_json_str(sh, "annpack", name, &m->annpack, err)) ||
        (st = ap_json_str(sh, "meta", name, &m->meta, err)) ||
        (st = ap_path_check(m->annpack, name, "shards[0].annpack", err)))
        return st;
    return ap_path_check(m->meta, name, "shards[0].meta", err);
}

/* One entry of "files": a safe path, size and a 64-digit lowercase hex sha256; never the
 * manifest or its signature. */
static ap_status parse_file(const cJSON *it, const char *name, ap_manifest_file *f, ap_err *err)
{
    char field[1100];
    snprintf(field, sizeof field, "files[\"%.1000s\"]", it->string);
    f->path = it->string;
    ap_status st = ap_path_check(f->path, name, "files key", err);
    if (st) return st;
    if (!cJSON_IsObject(it))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %s is not an object", name, field);
    if ((st = ap_json_u64(it, "size", AP_JSON_MAX_SAFE_INT, name, &f->size, err)) ||
        (st = ap_json_str(it, "sha256", name, &f->sha256, err)))
        return st;
    if (!ap_is_sha256_hex(f->sha256))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %s.sha256 is not 64 lowercase hex digits", name,
                          field);
    if (strcmp(f->path, AP_MANIFEST) == 0 || strcmp(f->path, AP_SIGNATURE) == 0)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: the manifest may not list %s", name, f->path);
    return AP_OK;
}

/* "files": at most 64 entries, listing the shard's annpack and meta. */
static ap_status parse_files(const cJSON *r, const char *name, ap_pack_manifest *m, ap_err *err)
{
    const cJSON *files, *it;
    ap_status st = ap_json_member(r, "files", cJSON_Object, name, &files, err);
    if (st) return st;
    m->nfiles = (size_t)cJSON_GetArraySize(files);
    if (m->nfiles > 64)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: %zu files listed (at most 64)", name, m->nfiles);
    m->files = calloc(m->nfiles ? m->nfiles : 1, sizeof *m->files);
    if (!m->files) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    size_t i = 0;
    cJSON_ArrayForEach(it, files)
    {
        if ((st = parse_file(it, name, &m->files[i++], err))) return st;
    }
    if (!ap_pack_manifest_file(m, m->annpack) || !ap_pack_manifest_file(m, m->meta))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: files does not list %s", name,
                          ap_pack_manifest_file(m, m->annpack) ? m->meta : m->annpack);
    if (ap_pack_manifest_file(m, AP_META_IDX)) m->idx = AP_META_IDX;
    return AP_OK;
}

ap_status ap_pack_manifest_parse(char *raw, size_t raw_len, const char *name, ap_pack_manifest *m,
                                 ap_err *err)
{
    memset(m, 0, sizeof *m);
    m->raw = raw;
    m->raw_len = raw_len;
    ap_status st = ap_json_parse_strict(raw, raw_len, name, &m->root, err);
    const cJSON *r = m->root, *it;
    if (!st && !cJSON_IsObject(r))
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: not a JSON object", name);
    if (!st) st = parse_counts(r, name, m, err);
    if (!st) st = parse_shard(r, name, m, err);
    if (!st) st = parse_files(r, name, m, err);
    if (!st) st = ap_json_member(r, "embedder", cJSON_Object, name, &m->embedder, err);
    if (!st) {
        it = cJSON_GetObjectItemCaseSensitive(r, "build");
        if (it && !cJSON_IsObject(it))
            st = ap_err_set(err, AP_ERR_FORMAT, "%s: field \"build\" is not an object", name);
        m->build = it;
    }
    if (st) ap_pack_manifest_free(m);
    return st;
}

void ap_pack_manifest_free(ap_pack_manifest *m)
{
    cJSON_Delete(m->root);
    free(m->raw);
    free(m->files);
    memset(m, 0, sizeof *m);
}

ap_status ap_manifest_add_file(cJSON *files, const char *dir, const char *name, ap_err *err)
{
    char *p = ap_path_join(dir, name);
    if (!p) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    char hex[AP_SHA256_HEX];
    uint64_t size;
    ap_status st = ap_sha256_file(p, hex, &size, err);
    free(p);
    if (st) return st;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToObject(files, name, o) || !ap_json_add_u64(o, "size", size) ||
        !cJSON_AddStringToObject(o, "sha256", hex)) {
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    return AP_OK;
}

/* Adds a copy of block as key (nothing when block is NULL); 0 when out of memory. */
static int add_copy(cJSON *m, const char *key, const cJSON *block)
{
    if (!block) return 1;
    cJSON *c = cJSON_Duplicate(block, 1);
    if (c && cJSON_AddItemToObject(m, key, c)) return 1;
    cJSON_Delete(c);
    return 0;
}

/* The manifest's one shard: the whole pack. */
static int add_shard(cJSON *m, const ap_pack_manifest_spec *s)
{
    cJSON *shards = cJSON_AddArrayToObject(m, "shards"), *sh = cJSON_CreateObject();
    if (!shards || !sh || !cJSON_AddItemToArray(shards, sh)) {
        cJSON_Delete(sh);
        return 0;
    }
    return cJSON_AddStringToObject(sh, "name", "pack") &&
           cJSON_AddStringToObject(sh, "annpack", AP_ANNPACK) &&
           cJSON_AddStringToObject(sh, "meta", s->meta) &&
           ap_json_add_u64(sh, "n_vectors", s->n_vectors);
}

static int add_files(cJSON *m, const ap_pack_manifest_spec *s)
{
    cJSON *files = cJSON_AddObjectToObject(m, "files");
    if (!files) return 0;
    for (size_t i = 0; i < s->nfiles; i++) {
        cJSON *o = cJSON_AddObjectToObject(files, s->files[i].path);
        if (!o || !ap_json_add_u64(o, "size", s->files[i].size) ||
            !cJSON_AddStringToObject(o, "sha256", s->files[i].sha256))
            return 0;
    }
    return 1;
}

ap_status ap_pack_manifest_write(const ap_pack_manifest_spec *s, char **text, size_t *len,
                                 ap_err *err)
{
    *text = NULL;
    cJSON *m = cJSON_CreateObject(), *emb = NULL;
    ap_status st = AP_OK;
    if (!m) goto oom;
    if (!cJSON_AddNumberToObject(m, "schema_version", AP_PACK_SCHEMA) ||
        !cJSON_AddStringToObject(m, "format", "annpack") || !ap_json_add_u64(m, "dim", s->dim) ||
        !ap_json_add_u64(m, "n_lists", s->n_lists) ||
        !ap_json_add_u64(m, "n_vectors", s->n_vectors) ||
        !cJSON_AddStringToObject(m, "metric", "dot") || !add_shard(m, s) || !add_files(m, s))
        goto oom;
    if ((st = ap_json_parse_strict(s->embedder, strlen(s->embedder), "embedder", &emb, err)))
        goto fail;
    if (!cJSON_AddItemToObject(m, "embedder", emb)) {
        cJSON_Delete(emb);
        goto oom;
    }
    if (!add_copy(m, "build", s->build) || !add_copy(m, "packset", s->packset)) goto oom;
    if (!(*text = ap_json_render(m, len))) goto oom;
    cJSON_Delete(m);
    return AP_OK;
oom:
    st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
fail:
    cJSON_Delete(m);
    return st;
}
