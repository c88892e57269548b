/* Verifying a pack directory: see include/annpack/pack.h (ap_pack_verify). */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "annpack/caps.h"
#include "annpack/pack.h"
#include "annpack/sign.h"
#include "fp16.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "pack_open.h"
#include "parallel.h"
#include "report.h"
#include "view.h"

typedef struct ent {
    uint64_t id, off, len;
} ent;

static int cmp_off(const void *a, const void *b)
{
    const ent *x = a, *y = b;
    return (x->off > y->off) - (x->off < y->off);
}

/* Sorts ids ascending: a least-significant-digit radix sort by bytes, skipping the bytes
 * every id shares (ids below 2^24 take 3 passes), where a comparison sort of 1M ids was a
 * tenth of the deep check. */
static ap_status sort_ids(uint64_t *ids, uint64_t n, ap_err *err)
{
    if (n < 2) return AP_OK;
    uint64_t(*cnt)[256] = calloc(8, sizeof *cnt);
    uint64_t *tmp = malloc(n * sizeof *tmp);
    if (!cnt || !tmp) {
        free(cnt);
        free(tmp);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    for (uint64_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++)
            cnt[b][(ids[i] >> (8 * b)) & 255]++;
    uint64_t *src = ids, *dst = tmp;
    for (int b = 0; b < 8; b++) {
        if (cnt[b][(ids[0] >> (8 * b)) & 255] == n) continue; /* every id has this byte */
        uint64_t at = 0;
        for (int k = 0; k < 256; k++) {
            uint64_t c = cnt[b][k];
            cnt[b][k] = at;
            at += c;
        }
        for (uint64_t i = 0; i < n; i++)
            dst[cnt[b][(src[i] >> (8 * b)) & 255]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != ids) memcpy(ids, src, n * sizeof *ids);
    free(cnt);
    free(tmp);
    return AP_OK;
}

/* Whether the index's entries are in strictly increasing offset order (the builders write
 * the rows in id order): then sorting a copy by offset would give the index itself (no
 * two offsets tie, whatever the sort), so the rows are walked in the index's order. */
static bool index_in_off_order(const ap_meta *meta, uint64_t n)
{
    uint64_t id, off, len, prev = 0;
    for (uint64_t i = 0; i < n; i++) {
        ap_meta_entry(meta, i, &id, &off, &len);
        if (i && off <= prev) return false;
        prev = off;
    }
    return true;
}

/* The first failure of parallel parts, in part order: what a sequential pass would have
 * reported, whatever the thread count. */
typedef struct first_err {
    pthread_mutex_t mu;
    uint32_t at; /* the failing part (UINT32_MAX: none) */
    ap_err e;
} first_err;

static void first_err_init(first_err *f)
{
    pthread_mutex_init(&f->mu, NULL);
    f->at = UINT32_MAX;
    f->e = (ap_err){0};
}

/* Records part p's failure; whether a lower part failed already (p may stop). */
static void first_err_set(first_err *f, uint32_t p, const ap_err *e)
{
    pthread_mutex_lock(&f->mu);
    if (p < f->at) {
        f->at = p;
        f->e = *e;
    }
    pthread_mutex_unlock(&f->mu);
}

static ap_status first_err_done(first_err *f, ap_err *err)
{
    pthread_mutex_destroy(&f->mu);
    if (f->at == UINT32_MAX) return AP_OK;
    if (err) *err = f->e;
    return f->e.status;
}

/* Entry i in offset order: of the sorted copy, or (NULL) of the index, already in it. */
static inline ent entry_at(const ap_meta *meta, const ent *sorted, uint64_t i)
{
    if (sorted) return sorted[i];
    ent e;
    ap_meta_entry(meta, i, &e.id, &e.off, &e.len);
    return e;
}

/* Rows [from, to) of the entries in offset order: each must start where the previous one ended
 * and be a JSON object whose "id" is the entry's id. Read in large chunks. */
static ap_status meta_rows_range(const ap_meta *meta, const ent *sorted, uint64_t from, uint64_t to,
                                 const char *name, const ap_checks *o, bool report, ap_err *err)
{
    uint64_t n = to, total = ap_meta_stream_size(meta);
    size_t cap = 4u << 20;
    char *chunk = malloc(cap);
    if (!chunk) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = AP_OK;
    uint64_t pos = 0, cbeg = 0, clen = 0;
    if (from) {
        ent prev = entry_at(meta, sorted, from - 1);
        pos = prev.off + prev.len + 1;
    }
    for (uint64_t i = from; i < n; i++) {
        const ent e = entry_at(meta, sorted, i);
        if (e.off != pos) {
            st = ap_err_set(err, AP_ERR_VERIFY,
                            "%s: index does not tile the rows: row of id %llu at offset %llu, "
                            "expected %llu",
                            name, (unsigned long long)e.id, (unsigned long long)e.off,
                            (unsigned long long)pos);
            goto out;
        }
        uint64_t need = e.len + 1;
        if (e.off + need > total) need = total - e.off; /* last row may lack '\n' */
        if (i == from || e.off < cbeg || e.off + need > cbeg + clen) {
            if (need > cap) {
                char *c = realloc(chunk, need);
                if (!c) {
                    st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
                    goto out;
                }
                chunk = c;
                cap = need;
            }
            cbeg = e.off;
            clen = total - cbeg < cap ? total - cbeg : cap;
            if ((st = ap_meta_read_stream(meta, cbeg, chunk, clen, err))) goto out;
        }
        const char *row = chunk + (e.off - cbeg);
        /* The chunk holds the row (read just above). */
        /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
        if (need == e.len + 1 && row[e.len] != '\n') {
            st = ap_err_set(err, AP_ERR_VERIFY, "%s: row of id %llu is not followed by a newline",
                            name, (unsigned long long)e.id);
            goto out;
        }
        uint64_t rid = 0;
        if (ap_json_plain_id_row(row, e.len, &rid)) goto have_id;
        cJSON *j = NULL;
        char what[256];
        /* The row's name for messages, written once per failing row only. */
        what[0] = '\0';
        st = ap_json_parse_strict(row, e.len, "row", &j, NULL);
        const cJSON *idit =
            !st && cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
        if (!st && idit) st = ap_json_item_u64(idit, AP_JSON_MAX_SAFE_INT, "row", &rid, NULL);
        cJSON_Delete(j);
        if (st || !idit) {
            snprintf(what, sizeof what, "%.200s: row of id %llu", name, (unsigned long long)e.id);
            j = NULL;
            if ((st = ap_json_parse_strict(row, e.len, what, &j, err))) goto out;
            idit = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
            st = idit ? ap_json_item_u64(idit, AP_JSON_MAX_SAFE_INT, what, &rid, err)
                      : ap_err_set(err, AP_ERR_VERIFY, "%s: not an object with an \"id\"", what);
            cJSON_Delete(j);
            if (st) goto out;
        }
    have_id:
        if (rid != e.id) {
            st = ap_err_set(err, AP_ERR_VERIFY, "%s: index says id %llu, row says %llu", name,
                            (unsigned long long)e.id, (unsigned long long)rid);
            goto out;
        }
        pos = e.off + e.len + 1;
        if (report && o->progress && (i & 0xffff) == 0)
            o->progress(o->progress_ud, "verify meta", i, n);
    }
out:
    free(chunk);
    return st;
}

typedef struct rows_job {
    const ap_meta *meta;
    const ent *es;
    uint64_t n;
    const char *name;
    const ap_checks *o;
    first_err fe;
} rows_job;

static void rows_part(void *ctx, uint32_t p, uint32_t nparts)
{
    rows_job *j = ctx;
    size_t from, to;
    ap_part_range(j->n, p, nparts, &from, &to);
    ap_err e = {0};
    if (from < to && meta_rows_range(j->meta, j->es, from, to, j->name, j->o, p == 0, &e))
        first_err_set(&j->fe, p, &e);
}

/* Rows: the index entries, sorted by offset, must tile the stream exactly, and each row
 * must be a JSON object whose "id" is the entry's id. The entries are cut into parts
 * checked on the threads (parallel.h). */
static ap_status deep_meta_rows(const ap_meta *meta, const char *name, const ap_checks *o,
                                ap_err *err)
{
    uint64_t n = ap_meta_count(meta), total = ap_meta_stream_size(meta);
    ent *es = NULL; /* a sorted copy, when the index is not in offset order already */
    if (!index_in_off_order(meta, n)) {
        if (!(es = malloc((n ? n : 1) * sizeof *es)))
            return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        for (uint64_t i = 0; i < n; i++)
            ap_meta_entry(meta, i, &es[i].id, &es[i].off, &es[i].len);
        qsort(es, n, sizeof *es, cmp_off);
    }
    rows_job j = {.meta = meta, .es = es, .n = n, .name = name, .o = o};
    first_err_init(&j.fe);
    ap_parallel_for(ap_parallel_parts(n, 65536), rows_part, &j);
    ap_status st = first_err_done(&j.fe, err);
    uint64_t pos = 0;
    if (n) {
        ent last = entry_at(meta, es, n - 1);
        pos = last.off + last.len + 1;
    }
    if (!st && pos < total) {
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: %llu bytes of rows after the last indexed row",
                        name, (unsigned long long)(total - pos));
    }
    free(es);
    return st;
}

/* Lists [from, to) of a: every vector finite and unit-norm. */
typedef struct lists_job {
    const ap_annp *a;
    const char *aname;
    const ap_checks *o;
    first_err fe;
} lists_job;

/* Whether a vector is finite with a norm within 1 +- 0.0099, by ap_f16_sumsq: a cheap
 * first look. The float sums are of exact positive terms (relative error < 1e-5), so a
 * vector it passes is one the double check in lists_part passes too; the others
 * (non-finite, or near the 0.01 bound) go to that check, which decides and names them. */
static bool norm_clearly_ok(const uint16_t *vec, uint32_t dim)
{
    float s = ap_f16_sumsq(vec, dim);
    /* 0.9901^2 and 1.0099^2: inside the bound by far more than the sums' error. */
    return s >= 0.98029801f && s <= 1.01989801f;
}

static void lists_part(void *ctx, uint32_t p, uint32_t nparts)
{
    lists_job *jb = ctx;
    const ap_annp_header *h = ap_annp_get_header(jb->a);
    size_t from, to;
    ap_part_range(h->n_lists, p, nparts, &from, &to);
    float *v = malloc(h->dim * sizeof *v);
    ap_err e = {0};
    if (!v) {
        ap_err_set(&e, AP_ERR_NOMEM, "out of memory");
        first_err_set(&jb->fe, p, &e);
        return;
    }
    for (uint32_t li = (uint32_t)from; li < to; li++) {
        ap_annp_list l;
        ap_annp_list_get(jb->a, li, &l);
        for (uint32_t j = 0; j < l.count; j++) {
            const uint16_t *vec = (const uint16_t *)(const void *)(l.vecs + 2ull * h->dim * j);
            if (norm_clearly_ok(vec, h->dim)) continue;
            uint64_t id = ap_annp_list_id(&l, j);
            ap_f16_to_f32_n(v, vec, h->dim);
            /* Four running sums (no dependency chain); a non-finite value makes the sum
             * non-finite (f16 squares cannot overflow a double). */
            double s4[4] = {0, 0, 0, 0};
            uint32_t d = 0;
            for (; d + 4 <= h->dim; d += 4)
                for (int u = 0; u < 4; u++)
                    s4[u] += (double)v[d + u] * v[d + u];
            for (; d < h->dim; d++)
                s4[0] += (double)v[d] * v[d];
            double s = (s4[0] + s4[1]) + (s4[2] + s4[3]);
            if (!isfinite(s)) {
                ap_err_set(&e, AP_ERR_VERIFY, "%s: list %u: vector of id %llu is not finite",
                           jb->aname, li, (unsigned long long)id);
                goto fail;
            }
            if (fabs(sqrt(s) - 1.0) > 0.01) {
                ap_err_set(&e, AP_ERR_VERIFY,
                           "%s: list %u: vector of id %llu has norm %.4f (want 1 within 0.01)",
                           jb->aname, li, (unsigned long long)id, sqrt(s));
                goto fail;
            }
        }
        if (p == 0 && jb->o->progress && (li & 0xff) == 0)
            jb->o->progress(jb->o->progress_ud, "verify lists", li, to);
    }
    free(v);
    return;
fail:
    free(v);
    first_err_set(&jb->fe, p, &e);
}

/* Whether the metadata ids are 0..n-1 and the vectors' ids each of them once: the common
 * case, checked with a bitmap of n bits instead of a sorted copy of the ids. When it holds
 * the ids are unique and equal to the metadata ids, as ids_check would find; when it does
 * not, ids_check decides and names the failure. */
static bool ids_dense_match(const ap_annp *a, const ap_meta *meta, uint64_t n)
{
    if (ap_meta_count(meta) != n) return false;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t id, off, len;
        ap_meta_entry(meta, i, &id, &off, &len);
        if (id != i) return false;
    }
    uint64_t *seen = calloc(n / 64 + 1, sizeof *seen);
    if (!seen) return false;
    bool ok = true;
    const ap_annp_header *h = ap_annp_get_header(a);
    for (uint32_t li = 0; ok && li < h->n_lists; li++) {
        ap_annp_list l;
        ap_annp_list_get(a, li, &l);
        for (uint32_t j = 0; ok && j < l.count; j++) {
            uint64_t id = ap_annp_list_id(&l, j);
            uint64_t bit = 1ull << (id & 63);
            ok = id < n && !(seen[id / 64] & bit);
            if (ok) seen[id / 64] |= bit;
        }
    }
    free(seen);
    return ok;
}

/* The vectors' ids unique and equal to the metadata ids, by a sorted copy: the first
 * duplicate, or the first id in one set but not the other, is the failure. */
static ap_status ids_check(const ap_annp *a, const ap_meta *meta, uint64_t n, const char *aname,
                           const char *mname, const char **bad_file, ap_err *err)
{
    const ap_annp_header *h = ap_annp_get_header(a);
    uint64_t *ids = calloc(n ? n : 1, sizeof *ids); /* zeroed: the analyzer cannot count */
    if (!ids) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    uint64_t at = 0;
    for (uint32_t li = 0; li < h->n_lists; li++) {
        ap_annp_list l;
        ap_annp_list_get(a, li, &l);
        for (uint32_t j = 0; j < l.count; j++)
            ids[at++] = ap_annp_list_id(&l, j);
    }
    ap_status st = sort_ids(ids, n, err);
    if (st) goto out;
    for (uint64_t i = 1; i < n; i++)
        if (ids[i] == ids[i - 1]) {
            st = ap_err_set(err, AP_ERR_VERIFY, "%s: id %llu appears twice", aname,
                            (unsigned long long)ids[i]);
            goto out;
        }
    *bad_file = mname;
    if (ap_meta_count(meta) != n) {
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: %llu metadata rows for %llu vectors", mname,
                        (unsigned long long)ap_meta_count(meta), (unsigned long long)n);
        goto out;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t id, off, len;
        ap_meta_entry(meta, i, &id, &off, &len);
        if (id != ids[i]) {
            st = ap_err_set(err, AP_ERR_VERIFY, "%s: id %llu has %s", mname,
                            (unsigned long long)(id < ids[i] ? id : ids[i]),
                            id < ids[i] ? "a metadata row but no vector"
                                        : "a vector but no metadata row");
            goto out;
        }
    }
out:
    free(ids);
    return st;
}

/* Structure: ids unique and equal to the metadata ids; vectors finite and unit-norm. */
static ap_status deep_annp(const ap_pack *p, const char *aname, const char *mname,
                           const ap_checks *o, ap_err *err, const char **bad_file)
{
    const ap_annp *a = ap_pack_annp(p);
    const ap_meta *meta = ap_pack_meta(p);
    const ap_annp_header *h = ap_annp_get_header(a);
    uint64_t n = h->n_vectors;
    *bad_file = aname;
    uint64_t at = 0;
    for (uint32_t li = 0; li < h->n_lists; li++) {
        ap_annp_list l;
        ap_annp_list_get(a, li, &l);
        at += l.count;
    }
    if (at != n)
        return ap_err_set(err, AP_ERR_VERIFY, "%s: lists hold %llu vectors, the header says %llu",
                          aname, (unsigned long long)at, (unsigned long long)n);
    lists_job jb = {.a = a, .aname = aname, .o = o};
    first_err_init(&jb.fe);
    ap_parallel_for(ap_parallel_parts(h->n_lists, 8), lists_part, &jb);
    ap_status st = first_err_done(&jb.fe, err);
    if (st) return st;
    if (!ids_dense_match(a, meta, n) && (st = ids_check(a, meta, n, aname, mname, bad_file, err)))
        return st;
    *bad_file = mname;
    return deep_meta_rows(meta, mname, o, err);
}

ap_status ap_pack_check_deep(const ap_pack *p, const ap_checks *cx, const char **bad_file,
                             ap_err *err)
{
    const ap_pack_manifest *m = ap_pack_manifest_of(p);
    char aname[1100], mname[1100];
    snprintf(aname, sizeof aname, "%.800s/%s", ap_pack_dir(p), m->annpack);
    snprintf(mname, sizeof mname, "%.800s/%s", ap_pack_dir(p), m->meta);
    ap_status st = deep_annp(p, aname, mname, cx, err, bad_file);
    if (st) {
        *bad_file = *bad_file == aname ? m->annpack : m->meta;
        return st;
    }
    /* The sidecar must be exactly the encoding of the vectors it claims to copy. */
    const ap_sq8 *sq = ap_pack_sq8(p);
    *bad_file = AP_SQ8;
    if (sq && (st = ap_sq8_check_codes(sq, ap_pack_annp(p), err))) return st;
    const ap_bits *bits = ap_pack_bits(p);
    *bad_file = AP_BITS;
    if (bits && (st = ap_bits_check_codes(bits, ap_pack_annp(p), err))) return st;
    *bad_file = AP_FILTER;
    return ap_pack_check_filter(p, cx, err);
}

/* Verification of a pack (require_pack) or of a pack or packset: the verified open does
 * every check as it reads, recording them in the report. */
static ap_status verify(const char *dir, const ap_verify_opts *opts, bool require_pack,
                        char **report_out, ap_err *err)
{
    ap_verify_opts none = {0};
    const ap_verify_opts *o = opts ? opts : &none;
    ap_report r = ap_report_new(dir, "pack", o->deep);
    if (report_out) *report_out = NULL;
    if (!r.root) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_view_open_opts vo = {.keys = o->pubkeys,
                            .nkeys = o->npubkeys,
                            .sig_path = o->sig_path,
                            .allow_expired = o->allow_expired,
                            .checks = {.hash = true,
                                       .deep = o->deep,
                                       .rep = &r,
                                       .progress = o->progress,
                                       .progress_ud = o->progress_ud}};
    ap_view *v = NULL;
    ap_view_trust t;
    ap_status st = ap_view_open_ex(dir, &vo, &v, &t, err);
    if (!st && require_pack && ap_view_is_packset(v))
        st = ap_report_fail(&r, "manifest", AP_MANIFEST,
                            ap_err_set(err, AP_ERR_UNSUPPORTED,
                                       "%s/%s: schema_version 3 is not a pack manifest (need 2; "
                                       "this is a packset)",
                                       dir, AP_MANIFEST),
                            err);
    if (!st && ap_view_is_packset(v)) {
        ap_json_add_u64(r.root, "version", ap_view_version(v));
        ap_json_add_u64(r.root, "live", ap_view_live_count(v));
        ap_report_ok(&r, "view", NULL);
    }
    if (!st && t.sig_present && !t.sig_checked) {
        /* Without a trusted key a signature proves nothing: say so rather than "ok". */
        cJSON *sig = cJSON_GetObjectItemCaseSensitive(r.root, "signature");
        if (sig)
            cJSON_AddStringToObject(sig, "note",
                                    "present but not checked: pass a public key (--pubkey) to "
                                    "check it");
    }
    ap_view_close(v);
    ap_report_finish(&r, st, report_out);
    return st;
}

ap_status ap_pack_verify(const char *dir, const ap_verify_opts *opts, char **report_out,
                         ap_err *err)
{
    return verify(dir, opts, true, report_out, err);
}

ap_status ap_verify_dir(const char *dir, const ap_verify_opts *opts, char **report, ap_err *err)
{
    return verify(dir, opts, false, report, err);
}
