/* Opening and searching a pack directory: see include/annpack/pack.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "annp_deferred.h"
#include "annpack/caps.h"
#include "annpack/format.h"
#include "coarse.h"
#include "corpus.h"
#include "delta_lists.h"
#include "filter.h"
#include "fsops.h"
#include "ivf.h"
#include "json.h"
#include "manifest.h"
#include "meta_format.h"
#include "pack_digests.h"
#include "pack_open.h"

/* The files a pack keeps open while it is open (mapped or read on demand). */
enum {
    SRC_ANNPACK,
    SRC_META,
    SRC_IDX,
    SRC_SQ8,
    SRC_IDF,
    SRC_FILTER,
    SRC_BITS,
    SRC_DLISTS,
    SRC_COUNT
};

struct ap_pack {
    char *dir;
    ap_pack_manifest m;
    ap_annp *annp;
    ap_meta *meta;
    ap_embedder *emb;
    ap_sq8 *sq8;             /* the int8 sidecar when the manifest lists pack.sq8 */
    ap_bits *bits;           /* the 1-bit code sidecar when the manifest lists pack.bits */
    ap_filter filter;        /* pack.filter when listed (n_cols 0 otherwise) */
    uint8_t *dlists_img;     /* a delta's delta.lists when listed (read whole), or NULL */
    const uint8_t *dlists;   /* its entries, into dlists_img */
    uint32_t dlists_base;    /* the base list count it was grouped under */
    ap_src src[SRC_COUNT];   /* fd -1 where the pack has no such file */
    ap_coarse_cache *coarse; /* centroid codes for ap_pack_search_vec, built on first use */
    ap_pack_digests dg;      /* pack.digests when listed and the open checks hashes */
    bool has_dg;
    bool lazy; /* has_dg and opened to check lists on first use */
};

bool ap_meaningful_name(const char *name)
{
    size_t n = strlen(name);
    return (n > 8 && strcmp(name + n - 8, ".annpack") == 0) || strncmp(name, "pack.meta", 9) == 0 ||
           (n > 4 && strcmp(name + n - 4, ".idx") == 0) || strncmp(name, "tombstones", 10) == 0 ||
           (n > 4 && strcmp(name + n - 4, ".zst") == 0) ||
           (n > 6 && strcmp(name + n - 6, ".jsonl") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".sq8") == 0) ||
           (n > 5 && strcmp(name + n - 5, ".bits") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".idf") == 0) || strcmp(name, AP_FILTER) == 0 ||
           strcmp(name, AP_DELTA_LISTS) == 0;
}

ap_status ap_embedder_block_describe(const cJSON *block, const char *name, char **desc, ap_err *err)
{
    *desc = NULL;
    char *text = cJSON_PrintUnformatted(block);
    ap_embedder *e = NULL;
    ap_status st = text ? ap_embedder_from_json(text, strlen(text), name, &e, err)
                        : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st && !(*desc = ap_embedder_describe(e)))
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_embedder_free(e);
    free(text);
    return st;
}

/* A file in the pack directory that could change its meaning but that the manifest does
 * not list (a delta's tombstones are covered by its delta manifest instead). */
static ap_status check_unlisted(int dirfd, const ap_pack *p, bool delta, const char *prefix,
                                const ap_checks *cx, ap_err *err)
{
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return ap_err_errno(err, AP_ERR_IO, errno, "%s", p->dir);
    }
    ap_status st = AP_OK;
    for (struct dirent *e; !st && (e = readdir(d));) {
        if (!ap_meaningful_name(e->d_name) || ap_pack_manifest_file(&p->m, e->d_name)) continue;
        if (delta && strcmp(e->d_name, AP_TOMBSTONES) == 0) continue;
        st = ap_err_set(err, AP_ERR_VERIFY,
                        "%s/%s: file not listed in the manifest could change the pack's meaning; "
                        "remove it",
                        p->dir, e->d_name);
        ap_report_failp(cx->rep, "unlisted", prefix, e->d_name, st, err);
    }
    closedir(d);
    return st;
}

/* Reads and checks the pack's own manifest (unless the caller read it). */
static ap_status read_manifest(int dirfd, ap_pack *p, const char *prefix, char *raw, size_t raw_len,
                               const ap_pack_expect *ex, const ap_checks *cx, ap_err *err)
{
    char *name = ap_path_join(p->dir, AP_MANIFEST);
    if (!name) {
        free(raw);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    ap_status st = AP_OK;
    if (!raw) {
        st = ap_manifest_read_at(dirfd, p->dir, name, &raw, &raw_len, err);
        if (!st && ex && ex->sha256_manifest) {
            char hex[AP_SHA256_HEX];
            ap_sha256_hex(raw, raw_len, hex);
            if (strcmp(hex, ex->sha256_manifest) != 0)
                st = ap_err_set(err, AP_ERR_VERIFY,
                                "%s: sha256 mismatch (root manifest %.16s..., file %.16s...)", name,
                                ex->sha256_manifest, hex);
            if (st)
                ap_report_failp(cx->rep, "sha256", prefix, AP_MANIFEST, st, err);
            else
                ap_report_okp(cx->rep, "sha256", prefix, AP_MANIFEST);
        }
        if (st) {
            free(raw);
            free(name);
            if (st == AP_ERR_NOTFOUND && ex)
                st = ap_err_set(err, AP_ERR_VERIFY, "%s/%s: listed in the manifest but missing",
                                p->dir, AP_MANIFEST);
            return st;
        }
    }
    st = ap_pack_manifest_parse(raw, raw_len, name, &p->m, err);
    free(name);
    if (st) return st;
    /* The root manifest and this manifest must name the same files. */
    if (ex && ((ex->annpack && strcmp(ex->annpack, p->m.annpack) != 0) ||
               (ex->meta && strcmp(ex->meta, p->m.meta) != 0)))
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s: the root manifest names %s and %s, the pack's manifest %s and %s",
                          p->dir, ex->annpack ? ex->annpack : "-", ex->meta ? ex->meta : "-",
                          p->m.annpack, p->m.meta);
    return AP_OK;
}

/* The root manifest's hash of a file must agree with the pack manifest's. */
static ap_status agree(const ap_pack *p, const char *name, const char *root_sha,
                       const char *own_sha, ap_err *err)
{
    if (!root_sha || strcmp(root_sha, own_sha) == 0) return AP_OK;
    return ap_err_set(err, AP_ERR_VERIFY,
                      "%s/%s: the root manifest's sha256 %.16s... differs from the pack "
                      "manifest's %.16s...",
                      p->dir, name, root_sha, own_sha);
}

/* The checker's file for slot k (-1: none). */
static int lazy_file_of(int slot)
{
    return slot == SRC_ANNPACK ? AP_LZ_ANNPACK
           : slot == SRC_SQ8   ? AP_LZ_SQ8
           : slot == SRC_BITS  ? AP_LZ_BITS
           : slot == SRC_META  ? AP_LZ_META
                               : -1;
}

/* With cx->hash and a listed pack.digests: reads and checks it first (the chain of trust
 * runs manifest -> pack.digests -> ranges). */
static ap_status open_digests(int dirfd, ap_pack *p, const char *prefix, const ap_checks *cx,
                              ap_err *err)
{
    const ap_manifest_file *f = ap_pack_manifest_file(&p->m, AP_DIGESTS);
    if (!f || !cx->hash) return AP_OK;
    ap_src s;
    ap_status st = ap_src_open(dirfd, f->path, p->dir, &s, err);
    if (st == AP_ERR_NOTFOUND)
        st = ap_err_set(err, AP_ERR_VERIFY, "%s/%s: listed in the manifest but missing", p->dir,
                        f->path);
    if (!st) {
        st = ap_pack_digests_load(&s, f, &p->m, &p->dg, err);
        ap_src_close(&s);
    }
    if (st) return ap_report_failp(cx->rep, "sha256", prefix, f->path, st, err);
    p->has_dg = true;
    p->lazy = cx->lazy;
    ap_report_okp(cx->rep, "sha256", prefix, f->path);
    return AP_OK;
}

/* Opens (and with cx->hash, hashes) every file the manifest lists; keeps the ones the
 * pack uses open in p->src. Files the digest table covers range by range (the ANNP file,
 * the sidecar, the rows) are not hashed whole here: their ranges are (check_ranges). */
static ap_status open_files(int dirfd, ap_pack *p, const char *prefix, const ap_pack_expect *ex,
                            const ap_checks *cx, ap_err *err)
{
    const char *used[SRC_COUNT] = {p->m.annpack,
                                   p->m.meta,
                                   p->m.idx,
                                   ap_pack_manifest_file(&p->m, AP_SQ8) ? AP_SQ8 : NULL,
                                   ap_pack_manifest_file(&p->m, AP_IDF) ? AP_IDF : NULL,
                                   ap_pack_manifest_file(&p->m, AP_FILTER) ? AP_FILTER : NULL,
                                   ap_pack_manifest_file(&p->m, AP_BITS) ? AP_BITS : NULL,
                                   ap_pack_manifest_file(&p->m, AP_DELTA_LISTS) ? AP_DELTA_LISTS
                                                                                : NULL};
    for (size_t i = 0; i < p->m.nfiles; i++) {
        const ap_manifest_file *f = &p->m.files[i];
        if (p->has_dg && strcmp(f->path, AP_DIGESTS) == 0) continue;
        int slot = -1;
        for (int k = 0; k < SRC_COUNT; k++)
            if (used[k] && strcmp(used[k], f->path) == 0) slot = k;
        if (slot < 0 && !cx->hash) continue;
        ap_src tmp, *s = slot >= 0 ? &p->src[slot] : &tmp;
        ap_status st = ap_src_open(dirfd, f->path, p->dir, s, err);
        const char *check = st == AP_ERR_VERIFY ? "path" : "sha256";
        if (st == AP_ERR_NOTFOUND)
            st = ap_err_set(err, AP_ERR_VERIFY, "%s/%s: listed in the manifest but missing", p->dir,
                            f->path);
        if (st) return ap_report_failp(cx->rep, check, prefix, f->path, st, err);
        if (!st && ex && slot == SRC_ANNPACK)
            st = agree(p, f->path, ex->sha256_annpack, f->sha256, err);
        if (!st && ex && slot == SRC_META) st = agree(p, f->path, ex->sha256_meta, f->sha256, err);
        bool by_ranges = p->has_dg && lazy_file_of(slot) >= 0;
        if (!st && cx->hash && by_ranges && s->size != f->size)
            st = ap_err_set(err, AP_ERR_VERIFY, "%s: size %llu, the manifest says %llu", s->name,
                            (unsigned long long)s->size, (unsigned long long)f->size);
        else if (!st && cx->hash && !by_ranges)
            st = ap_src_check_digest(s, f->size, f->sha256, NULL, err);
        if (slot < 0) ap_src_close(&tmp);
        if (st) return ap_report_failp(cx->rep, "sha256", prefix, f->path, st, err);
        if (cx->hash && !by_ranges) ap_report_okp(cx->rep, "sha256", prefix, f->path);
    }
    return AP_OK;
}

/* The corpus table the embedder needs (corpus.h), read whole from the file opened with the
 * others and checked against the hash the embedder block names. */
static ap_status load_table(ap_pack *p, ap_err *err)
{
    const char *file = ap_embedder_sidecar(p->emb);
    if (!file) return AP_OK;
    const ap_src *t = &p->src[SRC_IDF];
    if (t->fd < 0)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s/%s: the embedder needs %s but the manifest's files do not list it",
                          p->dir, AP_MANIFEST, file);
    char *bytes = NULL;
    size_t len = 0;
    ap_status st = ap_src_read(t, AP_EMBED_TABLE_MAX, &bytes, &len, err);
    if (!st) st = ap_embedder_load_table(p->emb, bytes, len, t->name, err);
    free(bytes);
    return st;
}

/* pack.filter, read whole when the manifest lists it. */
static ap_status load_filter(ap_pack *p, ap_err *err)
{
    const ap_src *f = &p->src[SRC_FILTER];
    if (f->fd < 0) return AP_OK;
    char *bytes = NULL;
    size_t len = 0;
    ap_status st = ap_src_read(f, (size_t)AP_FILTER_MAX_BYTES, &bytes, &len, err);
    if (!st)
        st = ap_filter_parse((uint8_t *)bytes, len, f->name, &p->filter, err);
    else
        free(bytes);
    return st;
}

/* delta.lists, read whole when the manifest lists it (a delta built for its base). */
static ap_status load_delta_lists(ap_pack *p, ap_err *err)
{
    const ap_src *f = &p->src[SRC_DLISTS];
    if (f->fd < 0) return AP_OK;
    size_t len = 0, max = AP_DELTA_LISTS_HEADER + 4ull * p->m.n_vectors;
    char *img = NULL;
    ap_status st = ap_src_read(f, max, &img, &len, err);
    p->dlists_img = (uint8_t *)img;
    if (st == AP_ERR_LIMIT)
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: larger than %zu bytes (%u vectors)", f->name, max,
                        p->m.n_vectors);
    if (!st)
        st = ap_delta_lists_parse(p->dlists_img, len, f->name, p->m.n_vectors, &p->dlists_base,
                                  &p->dlists, err);
    return st;
}

/* The digest table's entries of the covered open files, by lazy file (NULL: not covered). */
static void covered_files(const ap_pack *p, const ap_digest_file *files[AP_LZ_COUNT],
                          const ap_src *src[AP_LZ_COUNT])
{
    for (int f = 0; f < AP_LZ_COUNT; f++) {
        files[f] = NULL;
        if (src) src[f] = NULL;
    }
    for (int k = 0; k < SRC_COUNT; k++) {
        int lf = lazy_file_of(k);
        if (lf < 0 || p->src[k].fd < 0) continue;
        const char *name = k == SRC_ANNPACK ? p->m.annpack
                           : k == SRC_META  ? p->m.meta
                           : k == SRC_BITS  ? AP_BITS
                                            : AP_SQ8;
        files[lf] = ap_digest_table_find(&p->dg.t, name);
        if (src) src[lf] = &p->src[k];
    }
}

/* A failed range check, reported under the file whose range failed. */
static ap_status ranges_failed(const ap_pack *p, const char *prefix, const ap_checks *cx,
                               ap_status st, ap_err *err)
{
    const ap_digest_file *files[AP_LZ_COUNT];
    covered_files(p, files, NULL);
    const char *bad = p->m.annpack;
    for (int f = 0; f < AP_LZ_COUNT; f++)
        if (files[f] && err && strstr(err->msg, files[f]->name)) bad = files[f]->name;
    return ap_report_failp(cx->rep, "sha256", prefix, bad, st, err);
}

static void ranges_ok(const ap_pack *p, const char *prefix, const ap_checks *cx)
{
    const ap_digest_file *files[AP_LZ_COUNT];
    covered_files(p, files, NULL);
    for (int f = 0; f < AP_LZ_COUNT; f++)
        if (files[f])
            ap_report_okp(cx->rep, cx->lazy ? "digests" : "sha256", prefix, files[f]->name);
}

/* The manifest path of slot k's file. */
static const char *src_path(const ap_pack *p, int k)
{
    static const char *const fixed[SRC_COUNT] = {
        [SRC_SQ8] = AP_SQ8, [SRC_IDF] = AP_IDF, [SRC_FILTER] = AP_FILTER, [SRC_BITS] = AP_BITS};
    return k == SRC_ANNPACK ? p->m.annpack
           : k == SRC_META  ? p->m.meta
           : k == SRC_IDX   ? p->m.idx
                            : fixed[k];
}

/* The readers' mappings, for the range checker to hash through. */
static void set_maps(ap_pack *p)
{
    size_t n;
    ap_lazy_set_map(p->dg.lazy, AP_LZ_ANNPACK, ap_annp_bytes(p->annp));
    if (p->sq8) ap_lazy_set_map(p->dg.lazy, AP_LZ_SQ8, ap_sq8_bytes(p->sq8, &n));
    if (p->bits) ap_lazy_set_map(p->dg.lazy, AP_LZ_BITS, ap_bits_bytes(p->bits, &n));
}

/* The range checker over the covered open files; then the heads (the parts the readers
 * parse at open: the ANNP header, centroids and offset table, the sidecar's header, the
 * seek table). Unless cx->lazy, every other range is checked after the readers are open
 * (check_rest), when it can be hashed through their mappings. */
static ap_status check_ranges(ap_pack *p, const char *prefix, const ap_checks *cx, ap_err *err)
{
    if (!p->has_dg) return AP_OK;
    const ap_digest_file *files[AP_LZ_COUNT];
    const ap_src *src[AP_LZ_COUNT];
    covered_files(p, files, src);
    ap_status st = ap_lazy_new(files, src, cx->lazy, &p->dg.lazy, err);
    if (st) return st;
    ap_lazy *z = p->dg.lazy;
    if (files[AP_LZ_ANNPACK]) st = ap_lazy_check_range(z, AP_LZ_ANNPACK, 0, err);
    if (!st && files[AP_LZ_ANNPACK])
        st = ap_lazy_check_range(z, AP_LZ_ANNPACK, files[AP_LZ_ANNPACK]->n_ranges - 1, err);
    if (!st && files[AP_LZ_SQ8]) st = ap_lazy_check_range(z, AP_LZ_SQ8, 0, err);
    if (!st && files[AP_LZ_BITS]) st = ap_lazy_check_range(z, AP_LZ_BITS, 0, err);
    if (!st && files[AP_LZ_META] && strcmp(p->m.meta, AP_META_ZST) == 0)
        st = ap_lazy_check_range(z, AP_LZ_META, files[AP_LZ_META]->n_ranges - 1, err);
    /* Without an index every row is read at open to build one: check them all first. */
    for (uint32_t k = 0; !st && !p->m.idx && files[AP_LZ_META] && k < files[AP_LZ_META]->n_ranges;
         k++)
        st = ap_lazy_check_range(z, AP_LZ_META, k, err);
    if (st) return ranges_failed(p, prefix, cx, st, err);
    if (cx->lazy) ranges_ok(p, prefix, cx);
    return AP_OK;
}

/* Unless cx->lazy: every range not checked yet, on the threads. A deep check reads every
 * byte through the readers' mappings next, so then the ranges are hashed through them too
 * (no copy, and the pages are in place for the deep check); otherwise by pread, which
 * leaves the process's resident set as small as a lazy open's. */
static ap_status check_rest(ap_pack *p, const char *prefix, const ap_checks *cx, bool mapped,
                            ap_err *err)
{
    if (!p->has_dg || cx->lazy) return AP_OK;
    if (mapped) set_maps(p);
    ap_status st = ap_lazy_check_all(p->dg.lazy, err);
    if (st) return ranges_failed(p, prefix, cx, st, err);
    /* A file written to while it was hashed may have passed on its new bytes under the
     * stat taken when it was opened (which later reads compare against): refuse it, so a
     * pass means the bytes checked are the bytes of the file as opened. */
    for (int k = 0; k < SRC_COUNT; k++)
        if (p->src[k].fd >= 0 && (st = ap_src_unchanged(&p->src[k], err)))
            return ap_report_failp(cx->rep, "sha256", prefix, src_path(p, k), st, err);
    ranges_ok(p, prefix, cx);
    return AP_OK;
}

/* The metadata reader checks the rows' ranges before it uses their bytes. */
static ap_status meta_guard(const void *ctx, uint64_t off, uint64_t len, ap_err *err)
{
    const ap_pack *p = ctx;
    return ap_lazy_check(p->dg.lazy, AP_LZ_META, off, len, err);
}

static ap_status open_readers(ap_pack *p, ap_err *err)
{
    const ap_src *a = &p->src[SRC_ANNPACK], *m = &p->src[SRC_META], *x = &p->src[SRC_IDX];
    /* A lazily checked pack reads no list at open: counts are compared on first use. */
    ap_status st = p->lazy ? ap_annp_open_fd_deferred(a->fd, a->size, a->name, &p->annp, err)
                           : ap_annp_open_fd(a->fd, a->size, a->name, &p->annp, err);
    if (st) return st;
    const ap_annp_header *h = ap_annp_get_header(p->annp);
    if (h->dim != p->m.dim || h->n_lists != p->m.n_lists || h->n_vectors != p->m.n_vectors)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s: manifest says dim %u, %u lists, %u vectors; %s has %u, %u, %u",
                          p->dir, p->m.dim, p->m.n_lists, p->m.n_vectors, a->name, h->dim,
                          h->n_lists, h->n_vectors);
    ap_meta_file rows = {m->fd, m->size, m->name}, idx = {x->fd, x->size, x->name};
    if ((st = ap_meta_open_fds(&rows, p->m.idx ? &idx : NULL, &p->meta, err))) return st;
    char *emb = cJSON_PrintUnformatted(p->m.embedder);
    if (!emb) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    char name[1100];
    snprintf(name, sizeof name, "%.1000s/%s: embedder", p->dir, AP_MANIFEST);
    st = ap_embedder_from_json(emb, strlen(emb), name, &p->emb, err);
    free(emb);
    if (st) return st;
    if (ap_embedder_dim(p->emb) != h->dim)
        return ap_err_set(err, AP_ERR_VERIFY, "%s: embedder dim %u differs from the index dim %u",
                          p->dir, ap_embedder_dim(p->emb), h->dim);
    if ((st = load_table(p, err))) return st;
    if ((st = load_filter(p, err))) return st;
    if ((st = load_delta_lists(p, err))) return st;
    const ap_src *q = &p->src[SRC_SQ8];
    if (q->fd >= 0) st = ap_sq8_open_fd(q->fd, q->size, q->name, p->annp, &p->sq8, err);
    const ap_src *bs = &p->src[SRC_BITS];
    if (!st && bs->fd >= 0)
        st = ap_bits_open_fd(bs->fd, bs->size, bs->name, p->annp, &p->bits, err);
    return st;
}

ap_status ap_pack_open_at(int dirfd, const char *display, const char *prefix, char *raw,
                          size_t raw_len, const ap_pack_expect *ex, const ap_checks *cx,
                          ap_pack **out, ap_err *err)
{
    static const ap_checks none;
    if (!cx) cx = &none;
    *out = NULL;
    ap_pack *p = calloc(1, sizeof *p);
    if (!p || !(p->dir = strdup(display))) {
        free(p);
        free(raw);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < SRC_COUNT; k++)
        p->src[k].fd = -1;
    if (!(p->coarse = malloc(sizeof *p->coarse))) {
        ap_pack_close(p);
        free(raw);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    ap_coarse_cache_init(p->coarse);
    bool given = raw != NULL; /* the caller read (and recorded) the manifest */
    ap_status st = read_manifest(dirfd, p, prefix, raw, raw_len, ex, cx, err);
    if (st) {
        ap_report_failp(cx->rep, "manifest", prefix, AP_MANIFEST, st, err);
        goto out;
    }
    if (!given) ap_report_okp(cx->rep, "manifest", prefix, AP_MANIFEST);
    /* A delta directory verified on its own is recognised by its delta manifest. */
    bool delta =
        ex ? ex->delta : faccessat(dirfd, AP_DELTA_MANIFEST, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
    if (cx->hash && (st = check_unlisted(dirfd, p, delta, prefix, cx, err))) goto out;
    if ((st = open_digests(dirfd, p, prefix, cx, err))) goto out;
    if ((st = open_files(dirfd, p, prefix, ex, cx, err))) goto out;
    if ((st = check_ranges(p, prefix, cx, err))) goto out;
    /* The readers parse only the heads, checked above; the other ranges are checked before
     * a structure failure is reported, as they were before the readers opened. */
    ap_err serr = {0};
    ap_status sst = open_readers(p, &serr);
    if (!sst && p->has_dg)
        sst = ap_pack_digests_check_layout(&p->dg, p->annp, &p->src[SRC_META], p->m.meta, &serr);
    if ((st = check_rest(p, prefix, cx, !sst && cx->deep, err))) goto out;
    if (sst) {
        if (err) *err = serr;
        st = sst;
        ap_report_failp(cx->rep, "structure", prefix, p->m.annpack, st, err);
        goto out;
    }
    if (p->has_dg && ap_lazy_covers(p->dg.lazy, AP_LZ_META))
        ap_meta_set_guard(p->meta, meta_guard, p);
    if (p->has_dg) set_maps(p);
    ap_report_okp(cx->rep, "structure", prefix, p->m.annpack);
    if (cx->deep) {
        const char *bad = NULL;
        if ((st = ap_pack_check_deep(p, cx, &bad, err))) {
            ap_report_failp(cx->rep, "deep", prefix, bad, st, err);
            goto out;
        }
        ap_report_okp(cx->rep, "deep", prefix, NULL);
    }
out:
    if (st) {
        ap_pack_close(p);
        return st;
    }
    *out = p;
    return AP_OK;
}

ap_status ap_pack_open(const char *dir, ap_pack **out, ap_err *err)
{
    *out = NULL;
    int fd;
    ap_status st = ap_dir_open_path(dir, &fd, err);
    if (st) return st;
    st = ap_pack_open_at(fd, dir, NULL, NULL, 0, NULL, NULL, out, err);
    close(fd);
    return st;
}

void ap_pack_close(ap_pack *p)
{
    if (!p) return;
    ap_sq8_close(p->sq8);
    ap_bits_close(p->bits);
    ap_filter_free(&p->filter);
    free(p->dlists_img);
    ap_annp_close(p->annp);
    ap_pack_digests_free(&p->dg);
    ap_meta_close(p->meta);
    ap_embedder_free(p->emb);
    ap_pack_manifest_free(&p->m);
    for (int k = 0; k < SRC_COUNT; k++)
        ap_src_close(&p->src[k]);
    if (p->coarse) ap_coarse_cache_free(p->coarse);
    free(p->coarse);
    free(p->dir);
    free(p);
}

const uint8_t *ap_pack_delta_lists(const ap_pack *p, uint32_t *base_lists)
{
    *base_lists = p->dlists_base;
    return p->dlists;
}

const ap_filter *ap_pack_filter(const ap_pack *p)
{
    return p->filter.n_cols ? &p->filter : NULL;
}

size_t ap_pack_sources(const ap_pack *p, const ap_src **out)
{
    *out = p->src;
    return SRC_COUNT;
}

ap_status ap_pack_check_list(const ap_pack *p, uint32_t list, ap_err *err)
{
    if (!p->has_dg) return AP_OK;
    ap_status st = ap_lazy_check_range(p->dg.lazy, AP_LZ_ANNPACK, list + 1, err);
    if (!st) st = ap_annp_check_count(p->annp, list, err);
    if (!st && ap_lazy_covers(p->dg.lazy, AP_LZ_SQ8))
        st = ap_lazy_check_range(p->dg.lazy, AP_LZ_SQ8, list + 1, err);
    if (!st && ap_lazy_covers(p->dg.lazy, AP_LZ_BITS))
        st = ap_lazy_check_range(p->dg.lazy, AP_LZ_BITS, list + 1, err);
    return st;
}

bool ap_pack_is_lazy(const ap_pack *p)
{
    return p->lazy;
}

ap_status ap_pack_check_bytes(const ap_pack *p, const char *name, uint64_t off, uint64_t len,
                              ap_err *err)
{
    if (!p->has_dg) return AP_OK;
    int f = strcmp(name, p->m.annpack) == 0 ? AP_LZ_ANNPACK
            : strcmp(name, AP_SQ8) == 0     ? AP_LZ_SQ8
            : strcmp(name, AP_BITS) == 0    ? AP_LZ_BITS
            : strcmp(name, p->m.meta) == 0  ? AP_LZ_META
                                            : -1;
    return f < 0 ? AP_OK : ap_lazy_check(p->dg.lazy, f, off, len, err);
}

ap_status ap_pack_verify_step(const ap_pack *p, uint64_t max_bytes, bool *done, ap_err *err)
{
    *done = true;
    return p->has_dg ? ap_lazy_step(p->dg.lazy, max_bytes, done, err) : AP_OK;
}

void ap_pack_verify_counts(const ap_pack *p, ap_verify_counts *c)
{
    memset(c, 0, sizeof *c);
    c->digests = p->has_dg;
    if (p->has_dg)
        ap_lazy_counts(p->dg.lazy, &c->hashed, &c->bad, &c->total, c->bad_msg, sizeof c->bad_msg);
}

const ap_pack_manifest *ap_pack_manifest_of(const ap_pack *p)
{
    return &p->m;
}

const char *ap_pack_dir(const ap_pack *p)
{
    return p->dir;
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

const ap_bits *ap_pack_bits(const ap_pack *p)
{
    return p->bits;
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

static ap_status list_guard(const void *ctx, uint32_t list, ap_err *err)
{
    return ap_pack_check_list(ctx, list, err);
}

ap_status ap_pack_search_vec(const ap_pack *p, const float *q, uint32_t k, uint32_t probe,
                             ap_hit *hits, uint32_t *n, ap_err *err)
{
    ap_ivf ix = {.annp = p->annp,
                 .sq8 = p->sq8,
                 .bits = p->bits,
                 .coarse = p->coarse,
                 .guard = p->has_dg ? list_guard : NULL,
                 .guard_ctx = p};
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
