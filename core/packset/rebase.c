/* Rebase: compact base + deltas − tombstones into a new packset with a single base
 * (docs/PACKSET.md). Vectors are the stored f16 vectors (widened to f32 for k-means and
 * narrowed back, which is exact), rows are copied byte for byte, the embedder block is the
 * recorded one: nothing is re-embedded. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "annpack/packset.h"
#include "calibrate.h"
#include "filter_build.h"
#include "fp16.h"
#include "fsops.h"
#include "json.h"
#include "merge.h"
#include "ops.h"
#include "pack_open.h"
#include "pack_write.h"
#include "root_write.h"
#include "view.h"

typedef struct id_item {
    uint64_t id;
    const uint8_t *vec;
} id_item;

static int cmp_id_item(const void *a, const void *b)
{
    const id_item *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* The live set in ascending id order: ids and vectors (widened to f32), malloc'd. */
static ap_status live_by_id(const ap_view *v, const ap_merged *x, uint64_t **ids_out,
                            float **vecs_out, ap_err *err)
{
    uint64_t n = ap_view_live_count(v);
    uint32_t dim = ap_view_dim(v);
    id_item *items = malloc((n ? n : 1) * sizeof *items);
    float *vecs = malloc((n ? n : 1) * dim * sizeof *vecs);
    uint64_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!items || !vecs || !ids) {
        free(items);
        free(vecs);
        free(ids);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %llu vectors",
                          (unsigned long long)n);
    }
    for (uint64_t i = 0; i < n; i++)
        items[i] = (id_item){ap_item_id(&x->items[i]), x->items[i].vec};
    qsort(items, n, sizeof *items, cmp_id_item);
    for (uint64_t i = 0; i < n; i++) {
        ids[i] = items[i].id;
        ap_f16_to_f32_n(vecs + i * dim, (const uint16_t *)(const void *)items[i].vec, dim);
    }
    free(items);
    *ids_out = ids;
    *vecs_out = vecs;
    return AP_OK;
}

/* The new base's metadata in base/: every live row, byte for byte, in ids' order. */
static ap_status copy_rows(const ap_view *v, const ap_merged *x, const uint64_t *ids,
                           const char *base, ap_progress_fn progress, void *progress_ud,
                           ap_err *err)
{
    uint64_t n = ap_view_live_count(v);
    assert(ids && (x->row_id || n == 0)); /* the live set, built by the caller */
    ap_meta_writer *w = NULL;
    ap_status st = ap_meta_writer_open(base, AP_META_ZSTD, 0, &w, err);
    for (uint64_t i = 0; i < n && !st; i++) {
        /* live_by_id filled all n ids. */
        /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
        if (x->row_id[i] != ids[i]) {
            st = ap_err_set(err, AP_ERR_INTERNAL, "rebase: rows and vectors disagree at id %llu",
                            (unsigned long long)ids[i]);
            break;
        }
        char *row = NULL;
        size_t len;
        st = ap_meta_get(ap_pack_meta(v->layers[x->row_layer[i]].pack), ids[i], &row, &len, err);
        if (!st) st = ap_meta_writer_add(w, ids[i], row, len, err);
        free(row);
        if (!st && progress && (i & 0xffff) == 0) progress(progress_ud, "rows", i, n);
    }
    if (!st) st = ap_meta_writer_finish(w, err);
    ap_meta_writer_free(w);
    return st;
}

/* The new base's build block: what it was rebased from. */
static cJSON *rebased_from(const ap_view *v)
{
    cJSON *build = cJSON_CreateObject();
    char hr[AP_SHA256_HEX];
    size_t rl;
    const char *raw = ap_view_manifest_raw(v, &rl);
    ap_sha256_hex(raw, rl, hr);
    cJSON *from = cJSON_AddObjectToObject(build, "rebased_from");
    ap_json_add_u64(from, "version", ap_view_version(v));
    cJSON_AddStringToObject(from, "root_manifest_sha256", hr);
    ap_json_add_u64(from, "deltas", ap_view_n_deltas(v));
    return build;
}

/* The rebased packset in tmp: base/ (the live set, new lists) and its root manifest. */
static ap_status write_rebased(const ap_view *v, const char *tmp, uint32_t lists, uint64_t seed,
                               ap_progress_fn progress, void *progress_ud, ap_err *err)
{
    uint64_t n = ap_view_live_count(v), *ids = NULL;
    float *vecs = NULL;
    ap_merged *x = NULL;
    cJSON *build = NULL;
    char *base = ap_path_join(tmp, "base");
    ap_status st = AP_OK;
    if (!base || mkdir(base, 0755) != 0) {
        st = ap_err_errno(err, AP_ERR_IO, errno, "%s/base", tmp);
        goto out;
    }
    if ((st = ap_view_merged_tables(v, &x, err))) goto out;
    if ((st = live_by_id(v, x, &ids, &vecs, err))) goto out;
    if ((st = copy_rows(v, x, ids, base, progress, progress_ud, err))) goto out;
    /* The filter sets follow the copied rows, for the old base's columns. */
    const ap_filter *f = ap_pack_filter(v->layers[0].pack);
    if (f && (st = ap_filter_build_like(base, f, err))) goto out;
    build = rebased_from(v);
    ap_pack_spec sp = {.emb = ap_view_embedder(v),
                       .n = n,
                       .vecs = vecs,
                       .ids = ids,
                       .lists = lists,
                       .seed = seed,
                       .codec = AP_META_ZSTD,
                       .build = build,
                       .sq8 = ap_view_has_sq8(v),
                       .bits = ap_view_has_bits(v),
                       /* recalibrated for the new lists, to the old base's target (none if
                        * it had none, so earlier packsets rebase byte for byte) */
                       .target_recall =
                           ap_calibration_target_of(ap_pack_manifest_of(v->layers[0].pack)->build),
                       .progress = progress,
                       .progress_ud = progress_ud};
    if ((st = ap_pack_finish(base, &sp, NULL, err))) goto out;
    st = ap_root_write(tmp, ap_view_version(v) + 1, "base", NULL, 0,
                       cJSON_GetObjectItemCaseSensitive(v->root.root, "expires"), err);
out:
    ap_merged_free(x);
    cJSON_Delete(build);
    free(base);
    free(vecs);
    free(ids);
    return st;
}

ap_status ap_packset_rebase(const char *ps, const char *out_dir, uint32_t lists, uint64_t seed,
                            const ap_change_opts *co, ap_progress_fn progress, void *progress_ud,
                            ap_err *err)
{
    bool exists = false, force = co && co->force;
    ap_status st = ap_check_packset_out(out_dir, force, &exists, err);
    if (st) return st;
    /* Read only what verifies (and, with keys, what was signed): a rebase that compacted
     * tampered bytes would hand them to the next signature. */
    ap_change c;
    if ((st = ap_change_begin(ps, co, "rebase", true, &c, err))) return st;
    ap_view *v = NULL;
    char *tmp = NULL;
    if (!(st = ap_view_open(ps, &v, err)) && !(st = ap_mkdtemp_beside(out_dir, &tmp, err)) &&
        !(st = write_rebased(v, tmp, lists, seed, progress, progress_ud, err))) {
        ap_crash_point("rebase:before-rename");
        st = ap_publish_packset_out(tmp, out_dir, exists, force, err);
        if (!st) {
            free(tmp);
            tmp = NULL;
        }
    }
    if (tmp) ap_rmtree(tmp);
    free(tmp);
    ap_view_close(v);
    ap_change_end(&c);
    return st;
}
