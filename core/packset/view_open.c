/* Opening a view with every file read once beneath the directory's descriptor: see
 * view.h (ap_view_open_ex).
 *
 * Order: the root manifest's bytes are read once; when keys are given their signature is
 * checked before they are parsed (a hostile manifest costs one Ed25519 check, never a
 * parse); the parsed bytes then say what each layer must hold, and each layer file is
 * opened once and checked against them (hashes from the same descriptor that is then
 * mapped). Nothing is re-read by path afterwards, so nothing swapped in meanwhile is
 * served. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "annpack/caps.h"
#include "delta.h"
#include "delta_group.h"
#include "delta_lists.h"
#include "fsops.h"
#include "json.h"
#include "signature.h"
#include "tombstones.h"
#include "view.h"

#define SIG_MAX_BYTES 4096

static const ap_checks NO_CHECKS;

/* The last path component (layer file names are "<layer path>/<name>"). */
static const char *base_name(const char *rel)
{
    const char *s = strrchr(rel, '/');
    return s ? s + 1 : rel;
}

/* Reads a small file beneath dirfd whose SHA-256 the root manifest lists: the bytes are
 * hashed as read, so what is parsed is what was checked. */
static ap_status read_listed(int dirfd, const char *display, const char *prefix, const char *rel,
                             const char *sha256, size_t max, const ap_checks *cx, char **out,
                             size_t *len, ap_err *err)
{
    ap_src s;
    ap_status st = ap_src_open(dirfd, rel, display, &s, err);
    if (st == AP_ERR_NOTFOUND)
        st = ap_err_set(err, AP_ERR_VERIFY, "%s/%s: listed in the manifest but missing", display,
                        rel);
    if (!st) st = ap_src_read(&s, max, out, len, err);
    if (!st) {
        char hex[AP_SHA256_HEX];
        ap_sha256_hex(*out, *len, hex);
        if (strcmp(hex, sha256) != 0) {
            st = ap_err_set(err, AP_ERR_VERIFY,
                            "%s: sha256 mismatch (root manifest %.16s..., file %.16s...)", s.name,
                            sha256, hex);
            free(*out);
            *out = NULL;
        }
    }
    ap_src_close(&s);
    if (st) return ap_report_failp(cx->rep, "sha256", prefix, rel, st, err);
    ap_report_okp(cx->rep, "sha256", prefix, rel);
    return AP_OK;
}

/* Root-level files that could change meaning but that the root manifest does not name. */
static ap_status check_root_unlisted(int rootfd, const char *dir, const ap_checks *cx, ap_err *err)
{
    int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return ap_err_errno(err, AP_ERR_IO, errno, "%s", dir);
    }
    ap_status st = AP_OK;
    for (struct dirent *e; !st && (e = readdir(d));) {
        if (!ap_meaningful_name(e->d_name)) continue;
        st = ap_err_set(err, AP_ERR_VERIFY,
                        "%s/%s: file not listed in the manifest could change the packset's "
                        "meaning; remove it",
                        dir, e->d_name);
        ap_report_fail(cx->rep, "unlisted", e->d_name, st, err);
    }
    closedir(d);
    return st;
}

/* The signature: present or not, and when keys are given, valid over the raw bytes. */
static ap_status check_signature(int rootfd, const char *dir, const char *raw, size_t len,
                                 const ap_view_open_opts *o, ap_view_trust *t, ap_err *err)
{
    char *sig = NULL, *name = o->sig_path ? strdup(o->sig_path) : ap_path_join(dir, AP_SIGNATURE);
    size_t slen = 0;
    if (!name) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st;
    if (o->sig_path) {
        st = ap_read_file(o->sig_path, SIG_MAX_BYTES, &sig, &slen, err);
    } else {
        ap_src s;
        st = ap_src_open(rootfd, AP_SIGNATURE, dir, &s, err);
        if (!st) st = ap_src_read(&s, SIG_MAX_BYTES, &sig, &slen, err);
        if (s.fd >= 0) ap_src_close(&s);
    }
    t->sig_present = st != AP_ERR_NOTFOUND;
    t->sig_checked = o->nkeys > 0;
    if (!o->nkeys) {
        st = AP_OK;
    } else if (st == AP_ERR_NOTFOUND) {
        st = ap_err_set(err, AP_ERR_NOTFOUND, "%s: signature missing (the manifest is not signed)",
                        name);
    } else if (st == AP_ERR_LIMIT) {
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: a signature is %d raw bytes, this file is larger",
                        name, AP_SIG_BYTES);
    } else if (!st) {
        st = ap_signature_check_bytes(sig, slen, name, raw, len, o->keys, o->nkeys, t->key_id, err);
    }
    free(sig);
    free(name);
    return st;
}

/* Records the "signature" (and "expires") blocks of the report. */
static void report_trust(const ap_checks *cx, const ap_view_trust *t, ap_status st,
                         const cJSON *root)
{
    if (!cx->rep || !cx->rep->root) return;
    cJSON *sig = cJSON_AddObjectToObject(cx->rep->root, "signature");
    cJSON_AddBoolToObject(sig, "present", t->sig_present);
    cJSON_AddBoolToObject(sig, "checked", t->sig_checked);
    if (t->sig_checked) cJSON_AddBoolToObject(sig, "valid", st == AP_OK && t->key_id[0]);
    if (t->key_id[0]) cJSON_AddStringToObject(sig, "key_id", t->key_id);
    const cJSON *exp = root ? cJSON_GetObjectItemCaseSensitive(root, "expires") : NULL;
    if (exp && cJSON_IsString(exp) && exp->valuestring)
        cJSON_AddStringToObject(cx->rep->root, "expires", exp->valuestring);
}

/* What check_delta_manifest knows of a delta layer's files. */
typedef struct layer_files {
    int layerfd;
    const char *display;
    const ap_delta_entry *d;
} layer_files;

/* A file a delta manifest lists: the layer's manifest and tombstones must carry the hashes
 * the root manifest pinned (their bytes were checked against those); any other file is
 * hashed from its descriptor. */
static ap_status check_listed(const void *ctx, const char *file, const char *sha256,
                              const char *listed_in, ap_err *err)
{
    const layer_files *lf = ctx;
    const ap_delta_entry *d = lf->d;
    const char *known = !strcmp(file, AP_MANIFEST)                ? d->sha256_manifest
                        : !strcmp(file, base_name(d->tombstones)) ? d->sha256_tombstones
                                                                  : NULL;
    if (known)
        return strcmp(known, sha256) == 0
                   ? AP_OK
                   : ap_err_set(err, AP_ERR_VERIFY, "%s/%s: sha256 mismatch with %s", lf->display,
                                file, listed_in);
    ap_src s;
    ap_status st = ap_src_open(lf->layerfd, file, lf->display, &s, err);
    if (!st) st = ap_src_check_digest(&s, UINT64_MAX, sha256, listed_in, err);
    if (s.fd >= 0) ap_src_close(&s);
    return st;
}

/* Checks a delta's own manifest (its bytes pinned by the root's) against the base and the
 * layer (delta.c), and the hashes of the files it lists. */
static ap_status check_delta_manifest(int layerfd, const char *display, const ap_root_manifest *m,
                                      const ap_delta_entry *d, ap_layer *L, const ap_checks *cx,
                                      ap_err *err)
{
    char *text = NULL, *name = ap_path_join(display, base_name(d->delta_manifest));
    size_t len = 0;
    cJSON *j = NULL;
    if (!name) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    layer_files lf = {layerfd, display, d};
    ap_status st =
        read_listed(layerfd, display, d->path, base_name(d->delta_manifest),
                    d->sha256_delta_manifest, AP_MAX_MANIFEST_BYTES, cx, &text, &len, err);
    if (!st) st = ap_json_parse_strict(text, len, name, &j, err);
    if (!st) st = ap_delta_fields_check(j, name, m->base_sha256_annpack, L->pack, L->ntomb, err);
    if (!st) st = ap_delta_files_check(j, name, base_name(d->tombstones), check_listed, &lf, err);
    if (!st && (L->default_probe = ap_calibrated_probe(j)) &&
        !(L->calibration =
              cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(j, "calibration"), true)))
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    cJSON_Delete(j);
    free(text);
    free(name);
    if (st)
        return ap_report_failp(cx->rep, "delta-manifest", d->path, base_name(d->delta_manifest), st,
                               err);
    ap_report_ok(cx->rep, "delta-manifest", d->delta_manifest);
    return AP_OK;
}

static ap_status load_tombstones(ap_layer *L, int layerfd, const char *display,
                                 const ap_delta_entry *d, const ap_checks *cx, ap_err *err)
{
    const ap_caps *caps = ap_caps_get();
    size_t max = caps->max_meta_bytes > SIZE_MAX ? SIZE_MAX : (size_t)caps->max_meta_bytes;
    char *text = NULL, *name = ap_path_join(display, base_name(d->tombstones));
    size_t len = 0;
    if (!name) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = read_listed(layerfd, display, d->path, base_name(d->tombstones),
                               d->sha256_tombstones, max, cx, &text, &len, err);
    if (st == AP_ERR_LIMIT)
        st = ap_err_set(err, AP_ERR_LIMIT, "%s: larger than ANNPACK_MAX_META_BYTES (%llu)", name,
                        (unsigned long long)caps->max_meta_bytes);
    if (!st) st = ap_delta_tombstones_parse(text, len, name, &L->tomb, &L->ntomb, err);
    free(text);
    free(name);
    return st;
}

/* verify --deep of a delta's delta.lists: each vector grouped under the base list the
 * builder's rule gives (delta_group.h), recomputed. */
static ap_status check_delta_lists(const ap_view *v, const ap_layer *L, ap_err *err)
{
    uint32_t under = 0;
    const uint8_t *g = ap_pack_delta_lists(L->pack, &under);
    if (!g) return AP_OK;
    const ap_annp *base = ap_pack_annp(v->layers[0].pack), *delta = ap_pack_annp(L->pack);
    uint32_t *want = NULL;
    ap_status st = ap_delta_group(base, delta, &want, err);
    for (uint64_t i = 0; !st && i < ap_annp_get_header(delta)->n_vectors; i++)
        if (ap_delta_lists_at(g, i) != want[i])
            st = ap_err_set(err, AP_ERR_VERIFY,
                            "%s/%s: vector %llu is grouped under base list %u, its nearest base "
                            "list is %u",
                            L->dir, AP_DELTA_LISTS, (unsigned long long)i, ap_delta_lists_at(g, i),
                            want[i]);
    free(want);
    return st;
}

/* Opens layer l (0 = base) of a packset beneath rootfd. */
static ap_status open_layer(ap_view *v, int rootfd, uint32_t l, const ap_checks *cx, ap_err *err)
{
    ap_layer *L = &v->layers[l];
    const ap_root_manifest *m = &v->root;
    const ap_delta_entry *d = l ? &m->deltas[l - 1] : NULL;
    const char *path = d ? d->path : m->base_path;
    const char *man = d ? d->manifest : m->base_manifest;
    char want[1100];
    snprintf(want, sizeof want, "%s/%s", path, AP_MANIFEST);
    if (strcmp(man, want) != 0)
        return ap_err_set(err, AP_ERR_FORMAT, "%s/%s: layer manifest \"%s\" is not \"%s\"", v->dir,
                          AP_MANIFEST, man, want);
    L->seq = d ? d->seq : 0;
    if (!(L->dir = ap_path_join(v->dir, path)))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    int fd;
    ap_status st = ap_dir_open_beneath(rootfd, path, v->dir, &fd, err);
    if (st) return ap_report_fail(cx->rep, "path", path, st, err);
    ap_pack_expect ex = {.sha256_manifest = d ? d->sha256_manifest : m->base_sha256_manifest,
                         .annpack = base_name(d ? d->annpack : m->base_annpack),
                         .sha256_annpack = d ? d->sha256_annpack : m->base_sha256_annpack,
                         .meta = base_name(d ? d->meta : m->base_meta),
                         .sha256_meta = d ? d->sha256_meta : m->base_sha256_meta,
                         .delta = d != NULL};
    /* Delta layers are small and their vectors are scanned with every base list: checked
     * whole at open even when the base is checked lazily. */
    ap_checks dcx = *cx;
    if (d) dcx.lazy = false;
    st = ap_pack_open_at(fd, L->dir, path, NULL, 0, &ex, &dcx, &L->pack, err);
    if (!st && d) st = load_tombstones(L, fd, L->dir, d, cx, err);
    if (!st && d) st = check_delta_manifest(fd, L->dir, m, d, L, cx, err);
    close(fd);
    if (st) return st;
    if (d && cx->deep && (st = check_delta_lists(v, L, err)))
        return ap_report_failp(cx->rep, "deep", path, AP_DELTA_LISTS, st, err);
    ap_report_ok(cx->rep, cx->deep ? "layer-deep" : "layer", path);
    return AP_OK;
}

/* The root manifest's dim and embedder must be the base's (they are what queries of the
 * packset are embedded with). */
static ap_status check_root_agrees(const ap_view *v, ap_err *err)
{
    const ap_pack *b = v->layers[0].pack;
    uint32_t dim = ap_annp_get_header(ap_pack_annp(b))->dim;
    if (v->root.dim != dim)
        return ap_err_set(err, AP_ERR_VERIFY, "%s/%s: dim %u differs from the base's dim %u",
                          v->dir, AP_MANIFEST, v->root.dim, dim);
    char *want = ap_embedder_describe(ap_pack_embedder(b)), *got = NULL;
    char name[1100];
    snprintf(name, sizeof name, "%.1000s/%s: embedder", v->dir, AP_MANIFEST);
    ap_status st = want ? ap_embedder_block_describe(v->root.embedder, name, &got, err)
                        : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st && got && want && strcmp(got, want) != 0)
        st = ap_err_set(err, AP_ERR_VERIFY, "%s/%s: embedder %s differs from the base's %s", v->dir,
                        AP_MANIFEST, got, want);
    free(want);
    free(got);
    return st;
}

static ap_status open_layers(ap_view *v, int rootfd, const ap_view_open_opts *o, ap_err *err)
{
    const ap_checks *cx = o ? &o->checks : &NO_CHECKS;
    ap_status st;
    if (!v->packset) {
        /* A single pack is its own root manifest: hand it the bytes already read. */
        char *copy = malloc(v->root.raw_len + 1);
        if (!copy || !(v->layers[0].dir = strdup(v->dir))) {
            free(copy);
            return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        }
        memcpy(copy, v->root.raw, v->root.raw_len + 1);
        return ap_pack_open_at(rootfd, v->dir, NULL, copy, v->root.raw_len, NULL, cx,
                               &v->layers[0].pack, err);
    }
    if (cx->hash && (st = check_root_unlisted(rootfd, v->dir, cx, err))) return st;
    for (uint32_t l = 0; l < v->nlayers; l++)
        if ((st = open_layer(v, rootfd, l, cx, err))) return st;
    if ((st = check_root_agrees(v, err)))
        return ap_report_fail(cx->rep, "manifest", AP_MANIFEST, st, err);
    return AP_OK;
}

/* Reads the root manifest's bytes, checks their signature, then parses them. */
static ap_status open_root(ap_view *v, int rootfd, const ap_view_open_opts *o, ap_view_trust *t,
                           ap_err *err)
{
    const ap_checks *cx = o ? &o->checks : &NO_CHECKS;
    char *raw = NULL, *name = ap_path_join(v->dir, AP_MANIFEST);
    size_t len = 0;
    if (!name) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = ap_manifest_read_at(rootfd, v->dir, name, &raw, &len, err);
    if (st) {
        free(name);
        return ap_report_fail(cx->rep, "manifest", AP_MANIFEST, st, err);
    }
    if (o && (st = check_signature(rootfd, v->dir, raw, len, o, t, err))) {
        report_trust(cx, t, st, NULL);
        free(raw);
        free(name);
        return ap_report_fail(cx->rep, "signature", o->sig_path ? o->sig_path : AP_SIGNATURE, st,
                              err);
    }
    st = ap_root_manifest_parse(raw, len, name, &v->root, err);
    if (st) {
        report_trust(cx, t, AP_OK, NULL);
        free(name);
        return ap_report_fail(cx->rep, "manifest", AP_MANIFEST, st, err);
    }
    ap_report_ok(cx->rep, "manifest", AP_MANIFEST);
    if (cx->rep && cx->rep->root && v->root.schema == AP_PACKSET_SCHEMA)
        cJSON_ReplaceItemInObjectCaseSensitive(cx->rep->root, "kind",
                                               cJSON_CreateString("packset"));
    st = ap_expiry_check(v->root.root, name, !o || o->allow_expired, (long long)time(NULL),
                         &t->expires, err);
    report_trust(cx, t, AP_OK, v->root.root);
    free(name);
    if (st) return ap_report_fail(cx->rep, "signature", AP_MANIFEST, st, err);
    return AP_OK;
}

ap_status ap_view_open_ex(const char *dir, const ap_view_open_opts *o, ap_view **out,
                          ap_view_trust *t, ap_err *err)
{
    *out = NULL;
    ap_view_trust tdummy;
    if (!t) t = &tdummy;
    memset(t, 0, sizeof *t);
    t->expires = -1;
    ap_view *v = calloc(1, sizeof *v);
    if (!v || !(v->dir = strdup(dir))) {
        free(v);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    ap_coarse_cache_init(&v->coarse);
    pthread_mutex_init(&v->list_mu, NULL);
    int rootfd = -1;
    ap_status st = ap_dir_open_path(dir, &rootfd, err);
    if (st) {
        ap_report_fail(o ? o->checks.rep : NULL, "manifest", AP_MANIFEST, st, err);
        goto out;
    }
    if ((st = open_root(v, rootfd, o, t, err))) goto out;
    v->packset = v->root.schema == AP_PACKSET_SCHEMA;
    v->version = v->root.version;
    v->nlayers = 1 + (uint32_t)v->root.ndeltas;
    if (!(v->layers = calloc(v->nlayers, sizeof *v->layers))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = open_layers(v, rootfd, o, err))) goto out;
    if ((st = ap_view_finish(v, err)))
        ap_report_fail(o ? o->checks.rep : NULL, "view", NULL, st, err);
out:
    if (rootfd >= 0) close(rootfd);
    if (st) {
        ap_view_close(v);
        return st;
    }
    *out = v;
    return AP_OK;
}

/* What the root manifest pins of layer l, checked without opening the layer as a pack:
 * its pack manifest (the pinned hash; it must name the files the root names, with the
 * same hashes) and, for a delta, its tombstones and delta manifest (pinned hashes; the
 * files the delta manifest lists confirmed). No data file is opened. */
static ap_status check_layer_pins(const ap_view *v, int rootfd, uint32_t l, const ap_checks *cx,
                                  ap_err *err)
{
    const ap_root_manifest *m = &v->root;
    const ap_delta_entry *d = l ? &m->deltas[l - 1] : NULL;
    const char *path = d ? d->path : m->base_path;
    const char *man = d ? d->manifest : m->base_manifest;
    char want[1100];
    snprintf(want, sizeof want, "%s/%s", path, AP_MANIFEST);
    if (strcmp(man, want) != 0)
        return ap_err_set(err, AP_ERR_FORMAT, "%s/%s: layer manifest \"%s\" is not \"%s\"", v->dir,
                          AP_MANIFEST, man, want);
    char *display = ap_path_join(v->dir, path), *name = ap_path_join(v->dir, man);
    int fd = -1;
    char *text = NULL;
    size_t len = 0;
    ap_pack_manifest pm = {0};
    bool parsed = false;
    ap_status st = display && name ? AP_OK : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st && (st = ap_dir_open_beneath(rootfd, path, v->dir, &fd, err)))
        ap_report_fail(cx->rep, "path", path, st, err);
    if (!st)
        st = read_listed(fd, display, path, AP_MANIFEST,
                         d ? d->sha256_manifest : m->base_sha256_manifest, AP_MAX_MANIFEST_BYTES,
                         cx, &text, &len, err);
    if (!st) {
        st = ap_pack_manifest_parse(text, len, name, &pm, err); /* owns text */
        parsed = true;
    }
    const char *files[2] = {d ? d->annpack : m->base_annpack, d ? d->meta : m->base_meta};
    const char *pins[2] = {d ? d->sha256_annpack : m->base_sha256_annpack,
                           d ? d->sha256_meta : m->base_sha256_meta};
    for (int k = 0; k < 2 && !st; k++) {
        const ap_manifest_file *f = ap_pack_manifest_file(&pm, base_name(files[k]));
        if (!f || strcmp(f->sha256, pins[k]) != 0)
            st = ap_err_set(err, AP_ERR_VERIFY,
                            "%s: %s: the root manifest's sha256 %.16s... %s the pack manifest's",
                            name, base_name(files[k]), pins[k], f ? "differs from" : "is not in");
    }
    if (!st && d) {
        char *tomb = NULL;
        size_t tlen = 0;
        const ap_caps *caps = ap_caps_get();
        size_t max = caps->max_meta_bytes > SIZE_MAX ? SIZE_MAX : (size_t)caps->max_meta_bytes;
        st = read_listed(fd, display, d->path, base_name(d->tombstones), d->sha256_tombstones, max,
                         cx, &tomb, &tlen, err);
        free(tomb);
        char *dm = NULL;
        size_t dlen = 0;
        cJSON *j = NULL;
        layer_files lf = {fd, display, d};
        if (!st)
            st = read_listed(fd, display, d->path, base_name(d->delta_manifest),
                             d->sha256_delta_manifest, AP_MAX_MANIFEST_BYTES, cx, &dm, &dlen, err);
        if (!st) st = ap_json_parse_strict(dm, dlen, d->delta_manifest, &j, err);
        if (!st)
            st = ap_delta_files_check(j, d->delta_manifest, base_name(d->tombstones), check_listed,
                                      &lf, err);
        cJSON_Delete(j);
        free(dm);
    }
    if (fd >= 0) close(fd);
    if (parsed) ap_pack_manifest_free(&pm);
    free(display);
    free(name);
    if (!st) ap_report_ok(cx->rep, "layer-pins", path);
    return st;
}

ap_status ap_view_check_pins(const char *dir, const ap_view_open_opts *o, ap_root_manifest *root,
                             ap_err *err)
{
    memset(root, 0, sizeof *root);
    const ap_checks *cx = o ? &o->checks : &NO_CHECKS;
    ap_view_trust t;
    memset(&t, 0, sizeof t);
    t.expires = -1;
    ap_view v = {.dir = strdup(dir)};
    int rootfd = -1;
    ap_status st = v.dir ? ap_dir_open_path(dir, &rootfd, err)
                         : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) st = open_root(&v, rootfd, o, &t, err);
    bool packset = !st && v.root.schema == AP_PACKSET_SCHEMA;
    if (packset) st = check_root_unlisted(rootfd, dir, cx, err);
    for (uint32_t l = 0; packset && !st && l < 1 + v.root.ndeltas; l++)
        st = check_layer_pins(&v, rootfd, l, cx, err);
    if (rootfd >= 0) close(rootfd);
    free(v.dir);
    if (st) {
        ap_root_manifest_free(&v.root);
        return st;
    }
    *root = v.root; /* the bytes checked are the bytes the caller uses */
    return AP_OK;
}

ap_status ap_view_check_unchanged(const ap_view *v, ap_err *err)
{
    for (uint32_t l = 0; l < v->nlayers; l++) {
        const ap_src *s;
        size_t n = ap_pack_sources(v->layers[l].pack, &s);
        for (size_t i = 0; i < n; i++) {
            if (s[i].fd < 0) continue;
            ap_status st = ap_src_unchanged(&s[i], err);
            if (st) return st;
        }
    }
    return AP_OK;
}
