/* Opening and searching a pack directory: see include/annpack/pack.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/pack.h"
#include "fsops.h"
#include "ivf.h"
#include "json.h"
#include "manifest.h"

struct ap_pack {
    char *dir;
    ap_pack_manifest m;
    ap_annp *annp;
    ap_meta *meta;
    ap_embedder *emb;
    ap_sq8 *sq8; /* the int8 sidecar when the manifest lists pack.sq8 */
};

const char *ap_version(void)
{
    return ANNPACK_VERSION;
}

ap_status ap_pack_open(const char *dir, ap_pack **out, ap_err *err)
{
    *out = NULL;
    ap_pack *p = calloc(1, sizeof *p);
    if (!p || !(p->dir = strdup(dir))) {
        free(p);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    char *apath = NULL, *mpath = NULL, *ipath = NULL, *emb = NULL;
    ap_status st = ap_pack_manifest_load(dir, &p->m, err);
    if (st) goto out;
    const char *files[3] = {p->m.annpack, p->m.meta, p->m.idx};
    for (int i = 0; i < 3 && !st; i++)
        if (files[i]) st = ap_path_inside(dir, files[i], dir, err);
    if (st) goto out;
    apath = ap_path_join(dir, p->m.annpack);
    mpath = ap_path_join(dir, p->m.meta);
    ipath = p->m.idx ? ap_path_join(dir, p->m.idx) : NULL;
    if (!apath || !mpath || (p->m.idx && !ipath)) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = ap_annp_open(apath, &p->annp, err))) goto out;
    const ap_annp_header *h = ap_annp_get_header(p->annp);
    if (h->dim != p->m.dim || h->n_lists != p->m.n_lists || h->n_vectors != p->m.n_vectors) {
        st = ap_err_set(err, AP_ERR_VERIFY,
                        "%s: manifest says dim %u, %u lists, %u vectors; %s has %u, %u, %u", dir,
                        p->m.dim, p->m.n_lists, p->m.n_vectors, apath, h->dim, h->n_lists,
                        h->n_vectors);
        goto out;
    }
    if ((st = ap_meta_open_files(mpath, ipath, &p->meta, err))) goto out;
    emb = cJSON_PrintUnformatted(p->m.embedder);
    if (!emb) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    char name[1100];
    snprintf(name, sizeof name, "%.1000s/%s: embedder", dir, AP_MANIFEST);
    if ((st = ap_embedder_from_json(emb, strlen(emb), name, &p->emb, err))) goto out;
    if (p->emb->dim != h->dim) {
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: embedder dim %u differs from the index dim %u",
                        dir, p->emb->dim, h->dim);
        goto out;
    }
    if (ap_pack_manifest_file(&p->m, AP_SQ8)) {
        if ((st = ap_path_inside(dir, AP_SQ8, dir, err))) goto out;
        char *sp = ap_path_join(dir, AP_SQ8);
        st = sp ? ap_sq8_open(sp, p->annp, &p->sq8, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        free(sp);
    }
out:
    free(apath);
    free(mpath);
    free(ipath);
    free(emb);
    if (st) {
        ap_pack_close(p);
        return st;
    }
    *out = p;
    return AP_OK;
}

void ap_pack_close(ap_pack *p)
{
    if (!p) return;
    ap_sq8_close(p->sq8);
    ap_annp_close(p->annp);
    ap_meta_close(p->meta);
    ap_embedder_free(p->emb);
    ap_pack_manifest_free(&p->m);
    free(p->dir);
    free(p);
}

const ap_annp *ap_pack_annp(const ap_pack *p)
{
    return p->annp;
}

const ap_meta *ap_pack_meta(const ap_pack *p)
{
    return p->meta;
}

const ap_embedder *ap_pack_embedder(const ap_pack *p)
{
    return p->emb;
}

const ap_sq8 *ap_pack_sq8(const ap_pack *p)
{
    return p->sq8;
}

const ap_manifest_file *ap_pack_listed(const ap_pack *p, const char *name)
{
    return ap_pack_manifest_file(&p->m, name);
}

const char *ap_pack_manifest_raw(const ap_pack *p, size_t *len)
{
    if (len) *len = p->m.raw_len;
    return p->m.raw;
}

char *ap_pack_manifest_block(const ap_pack *p, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(p->m.root, key);
    return it ? cJSON_PrintUnformatted(it) : NULL;
}

ap_status ap_pack_embed(const ap_pack *p, const char *text, size_t len, float *q, ap_err *err)
{
    return ap_embedder_embed(p->emb, text, len, q, err);
}

ap_status ap_pack_search_vec(const ap_pack *p, const float *q, uint32_t k, uint32_t probe,
                             ap_hit *hits, uint32_t *n, ap_err *err)
{
    ap_ivf ix = {.annp = p->annp, .sq8 = p->sq8};
    ap_search_params sp = {.k = k, .probe = probe, .scan = AP_SCAN_AUTO};
    return ap_ivf_search(&ix, q, &sp, hits, n, NULL, err);
}


static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

char *ap_pack_inspect_json(const ap_pack *p)
{
    const ap_annp_header *h = ap_annp_get_header(p->annp);
    uint32_t *sizes = malloc((h->n_lists ? h->n_lists : 1) * sizeof *sizes);
    if (!sizes) return NULL;
    for (uint32_t i = 0; i < h->n_lists; i++) {
        ap_annp_list l;
        ap_annp_list_get(p->annp, i, &l);
        sizes[i] = l.count;
    }
    qsort(sizes, h->n_lists, sizeof *sizes, cmp_u32);
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (!o) goto out;
    cJSON_AddStringToObject(o, "path", p->dir);
    cJSON_AddStringToObject(o, "kind", "pack");
    ap_json_add_u64(o, "dim", h->dim);
    ap_json_add_u64(o, "n_lists", h->n_lists);
    ap_json_add_u64(o, "n_vectors", h->n_vectors);
    cJSON *ls = cJSON_AddObjectToObject(o, "list_size");
    ap_json_add_u64(ls, "min", sizes[0]);
    ap_json_add_u64(ls, "median", sizes[h->n_lists / 2]);
    ap_json_add_u64(ls, "max", sizes[h->n_lists - 1]);
    ap_json_add_u64(o, "meta_rows", ap_meta_count(p->meta));
    cJSON_AddItemToObject(o, "embedder", cJSON_Duplicate(p->m.embedder, 1));
    if (p->m.build) cJSON_AddItemToObject(o, "build", cJSON_Duplicate(p->m.build, 1));
    cJSON_AddItemToObject(o, "files",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(p->m.root, "files"), 1));
    s = ap_json_render(o, NULL);
out:
    cJSON_Delete(o);
    free(sizes);
    return s;
}
