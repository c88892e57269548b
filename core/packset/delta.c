/* What makes a delta fit its base: see delta.h and docs/PACKSET.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/caps.h"
#include "annpack/packset.h"
#include "delta.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "pack_open.h"
#include "path.h"
#include "tombstones.h"

bool ap_delta_readds(const ap_meta *m, const uint64_t *tomb, size_t ntomb, uint64_t *id)
{
    for (size_t i = 0; i < ntomb; i++)
        if (ap_meta_has(m, tomb[i])) {
            *id = tomb[i];
            return true;
        }
    return false;
}

ap_status ap_delta_files_check(const cJSON *dm, const char *name, const char *tomb_name,
                               ap_delta_file_check check, const void *ctx, ap_err *err)
{
    const cJSON *files, *f;
    ap_status st = ap_json_member(dm, "files", cJSON_Object, name, &files, err);
    if (st) return st;
    /* It must pin the layer's manifest and tombstones. */
    if (!cJSON_GetObjectItemCaseSensitive(files, AP_MANIFEST) ||
        !cJSON_GetObjectItemCaseSensitive(files, tomb_name))
        return ap_err_set(err, AP_ERR_VERIFY, "%s: files must list %s and %s", name, AP_MANIFEST,
                          tomb_name);
    cJSON_ArrayForEach(f, files)
    {
        const char *want = NULL;
        if ((st = ap_path_check(f->string, name, "files key", err)) ||
            (st = ap_json_str(f, "sha256", name, &want, err)) ||
            (st = check(ctx, f->string, want, name, err)))
            return st;
    }
    return AP_OK;
}

ap_status ap_delta_fields_check(const cJSON *dm, const char *name, const char *base_sha256,
                                const ap_pack *delta, size_t ntomb, ap_err *err)
{
    uint64_t schema, adds, tombs;
    const char *kind, *base;
    const cJSON *emb;
    ap_status st;
    if ((st = ap_json_str(dm, "base_sha256_annpack", name, &base, err))) return st;
    if (strcmp(base, base_sha256) != 0)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s: built against another base (its base_sha256_annpack %.16s..., the "
                          "base's %.16s...)",
                          name, base, base_sha256);
    if ((st = ap_json_u64(dm, "schema_version", 1000, name, &schema, err)) ||
        (st = ap_json_str(dm, "kind", name, &kind, err)) ||
        (st = ap_json_u64(dm, "adds", AP_JSON_MAX_SAFE_INT, name, &adds, err)) ||
        (st = ap_json_u64(dm, "tombstones", AP_JSON_MAX_SAFE_INT, name, &tombs, err)) ||
        (st = ap_json_member(dm, "embedder", cJSON_Object, name, &emb, err)))
        return st;
    if (schema != 1 || strcmp(kind, "annpack-delta") != 0)
        return ap_err_set(err, AP_ERR_UNSUPPORTED,
                          "%s: not an annpack-delta manifest of schema_version 1", name);
    uint64_t rows = ap_meta_count(ap_pack_meta(delta));
    if (adds != rows || tombs != ntomb)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s: says %llu adds and %llu tombstones, the layer has %llu and %zu",
                          name, (unsigned long long)adds, (unsigned long long)tombs,
                          (unsigned long long)rows, ntomb);
    char *want = ap_embedder_describe(ap_pack_embedder(delta)), *got = NULL;
    st = want ? ap_embedder_block_describe(emb, name, &got, err)
              : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st && got && want && strcmp(got, want) != 0)
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: embedder %s differs from the layer's %s", name,
                        got, want);
    free(want);
    free(got);
    return st;
}

ap_status ap_delta_fits_base(const ap_pack *base, const ap_pack *delta, const uint64_t *tomb,
                             size_t ntomb, const char *dir, ap_err *err)
{
    uint64_t id;
    if (ap_delta_readds(ap_pack_meta(delta), tomb, ntomb, &id))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: id %llu is both added and deleted", dir,
                          (unsigned long long)id);
    const ap_annp_header *bh = ap_annp_get_header(ap_pack_annp(base));
    const ap_annp_header *dh = ap_annp_get_header(ap_pack_annp(delta));
    if (dh->dim != bh->dim)
        return ap_err_set(err, AP_ERR_VERIFY, "%s: delta dim %u differs from the base dim %u", dir,
                          dh->dim, bh->dim);
    char *be = ap_embedder_describe(ap_pack_embedder(base));
    char *de = ap_embedder_describe(ap_pack_embedder(delta));
    ap_status st = AP_OK;
    if (!be || !de)
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    else if (strcmp(be, de) != 0)
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: delta embedder %s differs from the base's %s", dir,
                        de, be);
    free(be);
    free(de);
    return st;
}

/* A listed file of a delta directory, hashed where it lies. */
static ap_status hash_in_dir(const void *ctx, const char *file, const char *sha256,
                             const char *listed_in, ap_err *err)
{
    char *p = ap_path_join(ctx, file), hex[AP_SHA256_HEX];
    uint64_t size;
    ap_status st =
        p ? ap_sha256_file(p, hex, &size, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st && strcmp(hex, sha256) != 0)
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: sha256 mismatch with %s", p, listed_in);
    free(p);
    return st;
}

/* DIR/tombstones.jsonl, parsed (at most ANNPACK_MAX_META_BYTES). */
static ap_status load_tombstones(const char *dir, uint64_t **ids, size_t *n, ap_err *err)
{
    const ap_caps *caps = ap_caps_get();
    size_t max = caps->max_meta_bytes > SIZE_MAX ? SIZE_MAX : (size_t)caps->max_meta_bytes;
    char *path = ap_path_join(dir, AP_TOMBSTONES), *text = NULL;
    size_t len = 0;
    if (!path) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = ap_read_file(path, max, &text, &len, err);
    if (st == AP_ERR_LIMIT)
        st = ap_err_set(err, AP_ERR_LIMIT, "%s: larger than ANNPACK_MAX_META_BYTES (%llu)", path,
                        (unsigned long long)caps->max_meta_bytes);
    if (!st) st = ap_delta_tombstones_parse(text, len, path, ids, n, err);
    free(text);
    free(path);
    return st;
}

ap_status ap_delta_check_dir(const char *delta_dir, const char *base_dir, const char *base_sha256,
                             ap_err *err)
{
    ap_verify_opts vo = {0};
    ap_status st = ap_pack_verify(delta_dir, &vo, NULL, err);
    if (st) return st;
    char *dm = ap_path_join(delta_dir, AP_DELTA_MANIFEST);
    cJSON *j = NULL;
    ap_pack *bp = NULL, *dp = NULL;
    uint64_t *tomb = NULL;
    size_t ntomb = 0;
    if (!dm) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!(st = ap_json_load_file(dm, AP_MAX_MANIFEST_BYTES, &j, NULL, NULL, err)) &&
        !(st = ap_delta_files_check(j, dm, AP_TOMBSTONES, hash_in_dir, delta_dir, err)) &&
        !(st = load_tombstones(delta_dir, &tomb, &ntomb, err)) &&
        !(st = ap_pack_open(base_dir, &bp, err)) && !(st = ap_pack_open(delta_dir, &dp, err)) &&
        !(st = ap_delta_fields_check(j, dm, base_sha256, dp, ntomb, err)))
        st = ap_delta_fits_base(bp, dp, tomb, ntomb, delta_dir, err);
    ap_pack_close(bp);
    ap_pack_close(dp);
    free(tomb);
    cJSON_Delete(j);
    free(dm);
    return st;
}
