/* A pack's pack.digests: see pack_digests.h. */
#include <stdlib.h>
#include <string.h>

#include "annpack/meta.h"
#include "annpack/sq8.h"
#include "digest.h"
#include "digest_layout.h"
#include "mapping.h"
#include "pack_digests.h"

ap_status ap_pack_digests_load(const ap_src *s, const ap_manifest_file *f,
                               const ap_pack_manifest *m, ap_pack_digests *d, ap_err *err)
{
    memset(d, 0, sizeof *d);
    if (s->size != f->size)
        return ap_err_set(err, AP_ERR_VERIFY, "%s: size %llu, the manifest says %llu", s->name,
                          (unsigned long long)s->size, (unsigned long long)f->size);
    char *raw = NULL;
    size_t len = 0;
    ap_status st = ap_src_read(s, AP_DIGEST_MAX_BYTES, &raw, &len, err);
    if (st) return st;
    d->raw = (uint8_t *)raw;
    d->len = len;
    /* What is parsed is what was hashed. */
    char hex[AP_SHA256_HEX];
    ap_sha256_hex(raw, len, hex);
    if (len != f->size || strcmp(hex, f->sha256) != 0)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s: sha256 mismatch (the manifest %.16s..., file %.16s...)", s->name,
                          f->sha256, hex);
    ap_err pe;
    if (ap_digest_table_parse(d->raw, len, s->name, &d->t, &pe))
        return ap_err_set(err, AP_ERR_VERIFY, "%s", pe.msg);
    /* Exactly the manifest's other files, each with its listed size. */
    size_t covered = 0;
    for (size_t i = 0; i < m->nfiles; i++) {
        const ap_manifest_file *mf = &m->files[i];
        if (strcmp(mf->path, AP_DIGESTS) == 0) continue;
        const ap_digest_file *e = ap_digest_table_find(&d->t, mf->path);
        if (!e)
            return ap_err_set(err, AP_ERR_VERIFY, "%s: does not cover %s, which the manifest lists",
                              s->name, mf->path);
        if (e->size != mf->size)
            return ap_err_set(err, AP_ERR_VERIFY,
                              "%s: %s has %llu bytes there, the manifest says %llu", s->name,
                              mf->path, (unsigned long long)e->size, (unsigned long long)mf->size);
        covered++;
    }
    if (covered != d->t.n_files)
        for (uint32_t k = 0; k < d->t.n_files; k++)
            if (!ap_pack_manifest_file(m, d->t.files[k].name) ||
                strcmp(d->t.files[k].name, AP_DIGESTS) == 0)
                return ap_err_set(err, AP_ERR_VERIFY,
                                  "%s: covers %s, which the manifest does not list", s->name,
                                  d->t.files[k].name);
    return AP_OK;
}

/* The table's ranges of name must be exactly the layout's. */
static ap_status same_layout(const ap_digest_file *e, const ap_digest_layout *l, const char *table,
                             ap_err *err)
{
    if (e->n_ranges != l->n)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s: %s has %u ranges, its structure %u (docs/FORMAT.md)", table, e->name,
                          e->n_ranges, l->n);
    for (uint32_t k = 0; k < l->n; k++) {
        ap_digest_range r = ap_digest_range_at(e, k);
        if (r.off != l->off[k] || r.len != l->len[k])
            return ap_err_set(err, AP_ERR_VERIFY,
                              "%s: %s range %u is %llu bytes at %llu, its structure says %llu at "
                              "%llu",
                              table, e->name, k, (unsigned long long)r.len,
                              (unsigned long long)r.off, (unsigned long long)l->len[k],
                              (unsigned long long)l->off[k]);
    }
    return AP_OK;
}

ap_status ap_pack_digests_check_layout(const ap_pack_digests *d, const ap_annp *annp,
                                       const ap_src *meta, const char *meta_name, ap_err *err)
{
    const char *table = AP_DIGESTS;
    for (uint32_t i = 0; i < d->t.n_files; i++) {
        const ap_digest_file *e = &d->t.files[i];
        const void *map = NULL;
        ap_status st = AP_OK;
        if (strcmp(e->name, AP_META_ZST) == 0) {
            if (!meta || meta->fd < 0 || strcmp(meta_name, AP_META_ZST) != 0) continue;
            if ((st = ap_map_file(meta->fd, (size_t)meta->size, meta->name, &map, err))) return st;
        }
        ap_digest_layout l;
        ap_err le;
        st = ap_digest_layout_of(e->name, map, e->size, annp, &l, &le);
        if (map) ap_unmap_file(map, (size_t)e->size);
        if (st) return ap_err_set(err, AP_ERR_VERIFY, "%s", le.msg);
        st = same_layout(e, &l, table, err);
        ap_digest_layout_free(&l);
        if (st) return st;
    }
    return AP_OK;
}

void ap_pack_digests_free(ap_pack_digests *d)
{
    ap_lazy_free(d->lazy);
    ap_digest_table_free(&d->t);
    free(d->raw);
    memset(d, 0, sizeof *d);
}
