/* Verifying a pack directory: see include/annpack/pack.h (ap_pack_verify). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "annpack/caps.h"
#include "annpack/pack.h"
#include "annpack/trust.h"
#include "fp16.h"
#include "fsops.h"
#include "json.h"
#include "manifest.h"
#include "verify.h"

/* Files that would change a pack's meaning if a reader picked them up. */
static int meaningful(const char *name)
{
    size_t n = strlen(name);
    return (n > 8 && strcmp(name + n - 8, ".annpack") == 0) || strncmp(name, "pack.meta", 9) == 0 ||
           (n > 4 && strcmp(name + n - 4, ".idx") == 0) || strncmp(name, "tombstones", 10) == 0 ||
           (n > 4 && strcmp(name + n - 4, ".zst") == 0) || (n > 6 && strcmp(name + n - 6, ".jsonl") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".sq8") == 0);
}


ap_status ap_pack_check_unlisted(const char *dir, const ap_pack_manifest *m, char *bad, size_t badlen)
{
    DIR *d = opendir(dir);
    if (!d) return AP_ERR_IO;
    /* A delta directory's tombstones are covered by its delta manifest (and the packset's
     * root manifest), which checks them; see packset_verify.c. */
    char *dm = ap_path_join(dir, "delta.manifest.json");
    int is_delta = dm && access(dm, F_OK) == 0;
    free(dm);
    struct dirent *e;
    ap_status st = AP_OK;
    while ((e = readdir(d))) {
        if (!meaningful(e->d_name)) continue;
        if (is_delta && strcmp(e->d_name, "tombstones.jsonl") == 0) continue;
        if (ap_pack_manifest_file(m, e->d_name)) continue;
        snprintf(bad, badlen, "%s", e->d_name);
        st = AP_ERR_VERIFY;
        break;
    }
    closedir(d);
    return st;
}

typedef struct ent {
    uint64_t id, off, len;
} ent;

static int cmp_off(const void *a, const void *b)
{
    const ent *x = a, *y = b;
    return (x->off > y->off) - (x->off < y->off);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Rows: the index entries, sorted by offset, must tile the stream exactly, and each row
 * must be a JSON object whose "id" is the entry's id. Read in large chunks. */
static ap_status deep_meta_rows(const ap_meta *meta, const char *name, const ap_verify_opts *o,
                                ap_err *err)
{
    uint64_t n = ap_meta_count(meta), total = ap_meta_stream_size(meta);
    ent *es = malloc((n ? n : 1) * sizeof *es);
    size_t cap = 4u << 20;
    char *chunk = malloc(cap);
    ap_status st = AP_OK;
    if (!es || !chunk) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (uint64_t i = 0; i < n; i++) ap_meta_entry(meta, i, &es[i].id, &es[i].off, &es[i].len);
    qsort(es, n, sizeof *es, cmp_off);
    uint64_t pos = 0, cbeg = 0, clen = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (es[i].off != pos) {
            st = ap_err_set(err, AP_ERR_VERIFY,
                            "%s: index does not tile the rows: row of id %llu at offset %llu, "
                            "expected %llu",
                            name, (unsigned long long)es[i].id, (unsigned long long)es[i].off,
                            (unsigned long long)pos);
            goto out;
        }
        uint64_t need = es[i].len + 1;
        if (es[i].off + need > total) need = total - es[i].off; /* last row may lack '\n' */
        if (es[i].off < cbeg || es[i].off + need > cbeg + clen) {
            if (need > cap) {
                char *c = realloc(chunk, need);
                if (!c) {
                    st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
                    goto out;
                }
                chunk = c;
                cap = need;
            }
            cbeg = es[i].off;
            clen = total - cbeg < cap ? total - cbeg : cap;
            if ((st = ap_meta_read_stream(meta, cbeg, chunk, clen, err))) goto out;
        }
        const char *row = chunk + (es[i].off - cbeg);
        /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): the chunk holds the row */
        if (need == es[i].len + 1 && row[es[i].len] != '\n') {
            st = ap_err_set(err, AP_ERR_VERIFY, "%s: row of id %llu is not followed by a newline",
                            name, (unsigned long long)es[i].id);
            goto out;
        }
        cJSON *j = NULL;
        char what[256];
        snprintf(what, sizeof what, "%.200s: row of id %llu", name, (unsigned long long)es[i].id);
        if ((st = ap_json_parse_strict(row, es[i].len, what, &j, err))) goto out;
        uint64_t rid = 0;
        const cJSON *idit = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
        st = idit ? ap_json_item_u64(idit, AP_JSON_MAX_SAFE_INT, what, &rid, err)
                  : ap_err_set(err, AP_ERR_VERIFY, "%s: not an object with an \"id\"", what);
        cJSON_Delete(j);
        if (st) goto out;
        if (rid != es[i].id) {
            st = ap_err_set(err, AP_ERR_VERIFY, "%s: index says id %llu, row says %llu", name,
                            (unsigned long long)es[i].id, (unsigned long long)rid);
            goto out;
        }
        pos = es[i].off + es[i].len + 1;
        if (o->progress && (i & 0xffff) == 0) o->progress(o->progress_ud, "verify meta", i, n);
    }
    if (pos < total) {
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: %llu bytes of rows after the last indexed row",
                        name, (unsigned long long)(total - pos));
    }
out:
    free(es);
    free(chunk);
    return st;
}

/* Structure: ids unique and equal to the metadata ids; vectors finite and unit-norm. */
static ap_status deep_annp(const ap_pack *p, const char *aname, const char *mname,
                           const ap_verify_opts *o, ap_err *err, const char **bad_file)
{
    const ap_annp *a = ap_pack_annp(p);
    const ap_meta *meta = ap_pack_meta(p);
    const ap_annp_header *h = ap_annp_get_header(a);
    uint64_t n = h->n_vectors;
    uint64_t *ids = malloc((n ? n : 1) * sizeof *ids);
    float *v = malloc(h->dim * sizeof *v);
    ap_status st = AP_OK;
    *bad_file = aname;
    if (!ids || !v) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    uint64_t at = 0;
    for (uint32_t li = 0; li < h->n_lists; li++) {
        ap_annp_list l;
        ap_annp_list_get(a, li, &l);
        for (uint32_t j = 0; j < l.count; j++) {
            uint64_t id = ap_annp_list_id(&l, j);
            ids[at++] = id;
            ap_f16_to_f32_n(v, (const uint16_t *)(const void *)(l.vecs + 2ull * h->dim * j), h->dim);
            double s = 0;
            for (uint32_t d = 0; d < h->dim; d++) {
                if (!isfinite(v[d])) {
                    st = ap_err_set(err, AP_ERR_VERIFY, "%s: list %u: vector of id %llu is not finite",
                                    aname, li, (unsigned long long)id);
                    goto out;
                }
                s += (double)v[d] * v[d];
            }
            if (fabs(sqrt(s) - 1.0) > 0.01) {
                st = ap_err_set(err, AP_ERR_VERIFY,
                                "%s: list %u: vector of id %llu has norm %.4f (want 1 within 0.01)",
                                aname, li, (unsigned long long)id, sqrt(s));
                goto out;
            }
        }
        if (o->progress && (li & 0xff) == 0) o->progress(o->progress_ud, "verify lists", li, h->n_lists);
    }
    qsort(ids, n, sizeof *ids, cmp_u64);
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
                            id < ids[i] ? "a metadata row but no vector" : "a vector but no metadata row");
            goto out;
        }
    }
    st = deep_meta_rows(meta, mname, o, err);
out:
    free(ids);
    free(v);
    return st;
}

ap_status ap_verify_trust(const char *dir, const char *raw, size_t len, const cJSON *root,
                          const ap_verify_opts *o, cJSON *report, ap_err *err)
{
    cJSON *sig = cJSON_AddObjectToObject(report, "signature");
    char *sp = o->sig_path ? NULL : ap_path_join(dir, AP_SIGNATURE);
    struct stat sb;
    cJSON_AddBoolToObject(sig, "present", stat(o->sig_path ? o->sig_path : sp, &sb) == 0);
    free(sp);
    cJSON_AddBoolToObject(sig, "checked", o->npubkeys > 0);
    if (o->npubkeys) {
        char keyid[AP_KEYID_HEX];
        ap_status st = ap_manifest_check_signature(dir, raw, len, o->pubkeys, o->npubkeys,
                                                   o->sig_path, keyid, err);
        cJSON_AddBoolToObject(sig, "valid", st == AP_OK);
        if (st) return st;
        cJSON_AddStringToObject(sig, "key_id", keyid);
    }
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(root, "expires");
    if (exp) {
        long long t;
        if (!cJSON_IsString(exp))
            return ap_err_set(err, AP_ERR_FORMAT, "%s/%s: \"expires\" is not a string", dir, AP_MANIFEST);
        ap_status st = ap_parse_rfc3339_utc(exp->valuestring, &t, err);
        if (st) return st;
        cJSON_AddStringToObject(report, "expires", exp->valuestring);
        if ((long long)time(NULL) > t && !o->allow_expired)
            return ap_err_set(err, AP_ERR_VERIFY,
                              "%s/%s: expired at %s (pass --allow-expired to accept it)", dir,
                              AP_MANIFEST, exp->valuestring);
    }
    return AP_OK;
}

ap_status ap_pack_verify(const char *dir, const ap_verify_opts *opts, char **report_out,
                         ap_err *err)
{
    ap_verify_opts none = {0};
    const ap_verify_opts *o = opts ? opts : &none;
    ap_report r = ap_report_new(dir, "pack", o->deep);
    if (report_out) *report_out = NULL;
    if (!r.root) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_pack_manifest m;
    ap_pack *p = NULL;
    ap_status st = ap_pack_manifest_load(dir, &m, err);
    if (st) {
        ap_report_fail(&r, "manifest", AP_MANIFEST, st, err);
        goto done;
    }
    ap_report_ok(&r, "manifest", AP_MANIFEST);
    if ((st = ap_verify_trust(dir, m.raw, m.raw_len, m.root, o, r.root, err))) {
        ap_report_fail(&r, "signature", o->sig_path ? o->sig_path : AP_SIGNATURE, st, err);
        goto done_m;
    }
    char bad[256];
    if (ap_pack_check_unlisted(dir, &m, bad, sizeof bad)) {
        st = ap_report_fail(&r, "unlisted", bad, ap_err_set(err, AP_ERR_VERIFY,
                  "%s/%s: file not listed in the manifest could change the pack's meaning; remove it",
                  dir, bad), err);
        goto done_m;
    }
    for (size_t i = 0; i < m.nfiles; i++) {
        const ap_manifest_file *f = &m.files[i];
        if ((st = ap_path_inside(dir, f->path, dir, err))) {
            ap_report_fail(&r, "path", f->path, st, err);
            goto done_m;
        }
        char *full = ap_path_join(dir, f->path);
        char hex[AP_SHA256_HEX];
        uint64_t size = 0;
        st = full ? ap_sha256_file(full, hex, &size, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        if (st == AP_OK && size != f->size)
            st = ap_err_set(err, AP_ERR_VERIFY, "%s: size %llu, manifest says %llu", full,
                            (unsigned long long)size, (unsigned long long)f->size);
        else if (st == AP_OK && strcmp(hex, f->sha256) != 0)
            st = ap_err_set(err, AP_ERR_VERIFY, "%s: sha256 mismatch (manifest %.16s..., file %.16s...)",
                            full, f->sha256, hex);
        else if (st == AP_ERR_NOTFOUND)
            st = ap_err_set(err, AP_ERR_VERIFY, "%s: listed in the manifest but missing", full);
        free(full);
        if (st) {
            ap_report_fail(&r, "sha256", f->path, st, err);
            goto done_m;
        }
        ap_report_ok(&r, "sha256", f->path);
    }
    if ((st = ap_pack_open(dir, &p, err))) {
        ap_report_fail(&r, "structure", m.annpack, st, err);
        goto done_m;
    }
    ap_report_ok(&r, "structure", m.annpack);
    if (o->deep) {
        const char *bad_file = NULL;
        if ((st = deep_annp(p, m.annpack, m.meta, o, err, &bad_file))) {
            ap_report_fail(&r, "deep", bad_file, st, err);
            goto done_m;
        }
        /* The sidecar must be exactly the encoding of the vectors it claims to copy. */
        const ap_sq8 *sq = ap_pack_sq8(p);
        if (sq && (st = ap_sq8_check_codes(sq, ap_pack_annp(p), err))) {
            ap_report_fail(&r, "deep", AP_SQ8, st, err);
            goto done_m;
        }
        ap_report_ok(&r, "deep", NULL);
    }
done_m:
    ap_pack_close(p);
    ap_pack_manifest_free(&m);
done:
    ap_report_finish(&r, st, report_out);
    return st;
}

ap_status ap_verify_dir(const char *dir, const ap_verify_opts *opts, char **report, ap_err *err)
{
    char *path = ap_path_join(dir, AP_MANIFEST);
    if (!path) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    cJSON *root = NULL;
    ap_status st = ap_json_load_file(path, AP_MAX_MANIFEST_BYTES, &root, NULL, NULL, err);
    free(path);
    uint64_t schema = 0;
    if (st == AP_OK && cJSON_IsObject(root))
        ap_json_u64(root, "schema_version", 1000, dir, &schema, NULL);
    cJSON_Delete(root);
    ap_verify_opts none = {0};
    if (schema == 3) return ap_packset_verify(dir, opts ? opts : &none, report, err);
    /* Errors reading the manifest are reported by the pack verifier with its report. */
    return ap_pack_verify(dir, opts, report, err);
}
