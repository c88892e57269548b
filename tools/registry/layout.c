/* The OCI layout of packs and packsets (layout.h, docs/DISTRIBUTION.md). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "annpack/sign.h"
#include "cli.h"
#include "layout.h"

#define MAX_FILES 4096

bool oci_valid_tag(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || !(isalnum((unsigned char)s[0]) || s[0] == '_')) return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i])) return false;
    return true;
}

bool tree_safe_path(const char *p)
{
    if (!p || !*p || *p == '/' || strlen(p) > 1024) return false;
    for (const char *c = p; *c;) {
        size_t k = strcspn(c, "/");
        if (k == 0 || (k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        for (size_t i = 0; i < k; i++)
            if ((unsigned char)c[i] < 0x20) return false;
        c += k;
        if (*c == '/') c++;
    }
    return true;
}

/* The layer media type of a file, by its name (a reader goes by the title, not by this). */
static const char *media_of(const char *name, bool root)
{
    const char *b = strrchr(name, '/');
    b = b ? b + 1 : name;
    static const struct {
        const char *name, *media;
    } t[] = {
        {"pack.manifest.json.sig", "application/vnd.annpack.signature.v1"},
        {"pack.annpack", "application/vnd.annpack.annp.v1"},
        {"pack.sq8", "application/vnd.annpack.sq8.v1"},
        {"pack.meta.jsonl.zst", "application/vnd.annpack.meta.v1+zstd"},
        {"pack.meta.jsonl", "application/vnd.annpack.meta.v1+jsonl"},
        {"pack.meta.idx", "application/vnd.annpack.meta-index.v1"},
        {"pack.digests", "application/vnd.annpack.digests.v1"},
        {"tombstones.jsonl", "application/vnd.annpack.tombstones.v1+jsonl"},
        {"delta.manifest.json", "application/vnd.annpack.delta-manifest.v1+json"},
        {"delta.lists", "application/vnd.annpack.delta-lists.v1"},
    };
    if (!strcmp(b, "pack.manifest.json"))
        return root ? "application/vnd.annpack.packset-manifest.v1+json"
                    : "application/vnd.annpack.manifest.v1+json";
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(b, t[i].name)) return t[i].media;
    return "application/vnd.annpack.file.v1";
}

char *tree_file_path(const tree_member *m, const tree_file *f)
{
    size_t n = strlen(m->path) + strlen(f->name) + 2;
    char *p = malloc(n);
    if (!p) return NULL;
    if (!strcmp(m->path, "."))
        snprintf(p, n, "%s", f->name);
    else
        snprintf(p, n, "%s/%s", m->path, f->name);
    return p;
}

void tree_free(tree *t)
{
    for (size_t i = 0; i < t->n; i++) {
        for (size_t k = 0; k < t->m[i].nfiles; k++)
            free(t->m[i].files[k].name);
        free(t->m[i].files);
        free(t->m[i].path);
        free(t->m[i].manifest);
    }
    free(t->m);
    free(t->top);
    memset(t, 0, sizeof *t);
}

static tree_member *add_member(tree *t, const char *path, const char *at, ap_err *err)
{
    if (t->n >= MAX_FILES) {
        ap_err_set(err, AP_ERR_LIMIT, "more than %d layers", MAX_FILES);
        return NULL;
    }
    tree_member *nm = realloc(t->m, (t->n + 1) * sizeof *nm);
    if (!nm) {
        ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    t->m = nm;
    tree_member *m = &t->m[t->n];
    memset(m, 0, sizeof *m);
    m->path = strdup(path);
    m->artifact_type = at;
    if (!m->path) {
        ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    t->n++;
    return m;
}

static tree_file *add_file(tree_member *m, const char *name, ap_err *err)
{
    if (!tree_safe_path(name)) {
        ap_err_set(err, AP_ERR_FORMAT, "unsafe file name \"%s\" in member %s", name, m->path);
        return NULL;
    }
    for (size_t i = 0; i < m->nfiles; i++)
        if (!strcmp(m->files[i].name, name)) {
            ap_err_set(err, AP_ERR_FORMAT, "file %s listed twice in member %s", name, m->path);
            return NULL;
        }
    if (m->nfiles >= MAX_FILES) {
        ap_err_set(err, AP_ERR_LIMIT, "member %s: more than %d files", m->path, MAX_FILES);
        return NULL;
    }
    tree_file *nf = realloc(m->files, (m->nfiles + 1) * sizeof *nf);
    if (!nf) {
        ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->files = nf;
    tree_file *f = &m->files[m->nfiles];
    memset(f, 0, sizeof *f);
    f->name = strdup(name);
    if (!f->name) {
        ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->nfiles++;
    return f;
}

/* --- from a directory ------------------------------------------------------------------- */

static cJSON *read_json(const char *path, ap_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ap_err_set(err, AP_ERR_NOTFOUND, "%s: cannot open", path);
        return NULL;
    }
    size_t cap = 1u << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t k; buf && (k = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += k;
        if (n == cap) {
            if (cap >= OCI_MAX_MANIFEST * 16) break;
            char *b = realloc(buf, cap * 2 + 1);
            if (!b) break;
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    if (!j) ap_err_set(err, AP_ERR_FORMAT, "%s: not JSON", path);
    return j;
}

/* Hashes dir/member/name into a new file entry. */
static ap_status add_local(const char *dir, tree_member *m, const char *name, ap_err *err)
{
    tree_file *f = add_file(m, name, err);
    if (!f) return err->status;
    char *rel = tree_file_path(m, f);
    size_t n = strlen(dir) + (rel ? strlen(rel) : 0) + 2;
    char *p = malloc(n);
    if (!rel || !p) {
        free(rel);
        free(p);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    snprintf(p, n, "%s/%s", dir, rel);
    char hex[AP_SHA256_HEX];
    ap_status st = ap_sha256_file(p, hex, &f->size, err);
    if (!st) snprintf(f->digest, sizeof f->digest, "sha256:%s", hex);
    free(rel);
    free(p);
    return st;
}

/* A file of a pack manifest's "files": its declared size and SHA-256 (`upload` verified
 * them; with --skip-verify the registry's own digest check on the PUT catches a file that
 * does not match), else hashed here. */
static ap_status add_declared(const char *dir, tree_member *m, const cJSON *entry, ap_err *err)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(entry, "sha256");
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(entry, "size");
    bool ok = cJSON_IsString(h) && strlen(h->valuestring) == 64 && cJSON_IsNumber(sz) &&
              sz->valuedouble >= 0 && sz->valuedouble < 9007199254740992.0;
    for (const char *p = ok ? h->valuestring : ""; ok && *p; p++)
        ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
    if (!ok) return add_local(dir, m, entry->string, err);
    tree_file *f = add_file(m, entry->string, err);
    if (!f) return err->status;
    snprintf(f->digest, sizeof f->digest, "sha256:%s", h->valuestring);
    f->size = (uint64_t)sz->valuedouble;
    return AP_OK;
}

/* A pack directory's files: its manifest and every name in "files". */
static ap_status scan_pack(const char *dir, tree_member *m, ap_err *err)
{
    char *mp = malloc(strlen(dir) + strlen(m->path) + 32);
    if (!mp) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    sprintf(mp, "%s/%s/pack.manifest.json", dir, m->path);
    cJSON *j = read_json(mp, err);
    free(mp);
    if (!j) return err->status;
    ap_status st = add_local(dir, m, "pack.manifest.json", err);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(j, "files"), *it;
    if (!st && !cJSON_IsObject(files))
        st = ap_err_set(err, AP_ERR_FORMAT, "%s/%s/pack.manifest.json: no \"files\"", dir, m->path);
    cJSON_ArrayForEach(it, files)
    {
        if (st) break;
        st = add_declared(dir, m, it, err);
    }
    cJSON_Delete(j);
    return st;
}

/* The name of a root-manifest path (e.g. "deltas/0001.delta/tombstones.jsonl") inside the
 * member at mpath, or NULL when it is not inside it. */
static const char *inside(const char *path, const char *mpath)
{
    size_t k = strlen(mpath);
    return strncmp(path, mpath, k) || path[k] != '/' ? NULL : path + k + 1;
}

static ap_status scan_layer(const char *dir, tree *t, const cJSON *layer, ap_err *err)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(layer, "path");
    if (!cJSON_IsString(p) || !tree_safe_path(p->valuestring))
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s/pack.manifest.json: a layer without a safe \"path\"", dir);
    tree_member *m = add_member(t, p->valuestring, AT_PACK, err);
    if (!m) return err->status;
    ap_status st = scan_pack(dir, m, err);
    for (const char *const *k = (const char *const[]){"tombstones", "delta_manifest", NULL};
         !st && *k; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(layer, *k);
        if (!cJSON_IsString(v)) continue;
        const char *name = inside(v->valuestring, m->path);
        if (!name)
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s/pack.manifest.json: %s %s is outside layer %s", dir, *k,
                              v->valuestring, m->path);
        st = add_local(dir, m, name, err);
    }
    return st;
}

/* --- OCI JSON --------------------------------------------------------------------------- */

static cJSON *descriptor(const char *media, const char *digest, double size)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "mediaType", media);
    cJSON_AddStringToObject(d, "digest", digest);
    cJSON_AddNumberToObject(d, "size", size);
    return d;
}

static char *print_free(cJSON *j, size_t *len)
{
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (s && len) *len = strlen(s);
    return s;
}

static ap_status member_manifest(tree *t, tree_member *m, ap_err *err)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "schemaVersion", 2);
    cJSON_AddStringToObject(j, "mediaType", OCI_MANIFEST);
    cJSON_AddStringToObject(j, "artifactType", m->artifact_type);
    cJSON *cfg = descriptor(OCI_EMPTY, OCI_EMPTY_DIGEST, 2);
    cJSON_AddStringToObject(cfg, "data", "e30=");
    cJSON_AddItemToObject(j, "config", cfg);
    cJSON *layers = cJSON_AddArrayToObject(j, "layers");
    bool root = t->packset && !strcmp(m->path, ".");
    for (size_t i = 0; i < m->nfiles; i++) {
        cJSON *d = descriptor(media_of(m->files[i].name, root), m->files[i].digest,
                              (double)m->files[i].size);
        cJSON *a = cJSON_AddObjectToObject(d, "annotations");
        cJSON_AddStringToObject(a, ANN_TITLE, m->files[i].name);
        cJSON_AddItemToArray(layers, d);
    }
    cJSON *a = cJSON_AddObjectToObject(j, "annotations");
    if (t->packset) cJSON_AddStringToObject(a, ANN_PATH, m->path);
    if (root) {
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)t->version);
        cJSON_AddStringToObject(a, ANN_VERSION, v);
    }
    m->manifest = print_free(j, &m->manifest_len);
    if (!m->manifest) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    oci_digest_mem(m->manifest, m->manifest_len, m->digest);
    return AP_OK;
}

static ap_status top_artifact(tree *t, ap_err *err)
{
    if (!t->packset) {
        t->top = strdup(t->m[0].manifest);
        t->top_len = t->m[0].manifest_len;
        t->top_media = OCI_MANIFEST;
    } else {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "schemaVersion", 2);
        cJSON_AddStringToObject(j, "mediaType", OCI_INDEX);
        cJSON_AddStringToObject(j, "artifactType", AT_PACKSET);
        cJSON *arr = cJSON_AddArrayToObject(j, "manifests");
        for (size_t i = 0; i < t->n; i++) {
            cJSON *d = descriptor(OCI_MANIFEST, t->m[i].digest, (double)t->m[i].manifest_len);
            cJSON_AddStringToObject(d, "artifactType", t->m[i].artifact_type);
            cJSON *a = cJSON_AddObjectToObject(d, "annotations");
            cJSON_AddStringToObject(a, ANN_PATH, t->m[i].path);
            cJSON_AddItemToArray(arr, d);
        }
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)t->version);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(j, "annotations"), ANN_VERSION, v);
        t->top = print_free(j, &t->top_len);
        t->top_media = OCI_INDEX;
    }
    if (!t->top) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    oci_digest_mem(t->top, t->top_len, t->top_digest);
    return AP_OK;
}

char *alias_index(const char *alias, const char *version, const char *media, const char *digest,
                  size_t size, const char *artifact_type)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "schemaVersion", 2);
    cJSON_AddStringToObject(j, "mediaType", OCI_INDEX);
    cJSON_AddStringToObject(j, "artifactType", AT_ALIAS);
    cJSON *d = descriptor(media, digest, (double)size);
    if (artifact_type) cJSON_AddStringToObject(d, "artifactType", artifact_type);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(j, "manifests"), d);
    cJSON *a = cJSON_AddObjectToObject(j, "annotations");
    cJSON_AddStringToObject(a, ANN_ALIAS, alias);
    cJSON_AddStringToObject(a, ANN_TARGET, version);
    return print_free(j, NULL);
}

ap_status tree_from_dir(const char *dir, tree *t, ap_err *err)
{
    memset(t, 0, sizeof *t);
    char *rp = malloc(strlen(dir) + 32);
    if (!rp) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    sprintf(rp, "%s/pack.manifest.json", dir);
    cJSON *j = read_json(rp, err);
    free(rp);
    if (!j) return err->status;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    t->packset = cJSON_IsString(fmt) && !strcmp(fmt->valuestring, "annpack-packset");
    ap_status st = AP_OK;
    tree_member *root = add_member(t, ".", t->packset ? AT_ROOT : AT_PACK, err);
    if (!root) st = err->status;
    if (!st && t->packset) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "version");
        if (!cJSON_IsNumber(v) || v->valuedouble < 1)
            st = ap_err_set(err, AP_ERR_FORMAT, "%s/pack.manifest.json: no \"version\"", dir);
        else
            t->version = (uint64_t)v->valuedouble;
        if (!st) st = add_local(dir, &t->m[0], "pack.manifest.json", err);
        if (!st) st = scan_layer(dir, t, cJSON_GetObjectItemCaseSensitive(j, "base"), err);
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(j, "deltas"))
        {
            if (st) break;
            st = scan_layer(dir, t, d, err);
        }
    } else if (!st) {
        st = scan_pack(dir, &t->m[0], err);
    }
    cJSON_Delete(j);
    /* The signature travels as a layer of the root member (registries without referrers). */
    char *sp = malloc(strlen(dir) + 32);
    if (!sp) st = st ? st : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) {
        sprintf(sp, "%s/" AP_SIGNATURE, dir);
        FILE *f = fopen(sp, "rb");
        if (f) {
            fclose(f);
            st = add_local(dir, &t->m[0], AP_SIGNATURE, err);
        }
    }
    free(sp);
    for (size_t i = 0; !st && i < t->n; i++)
        st = member_manifest(t, &t->m[i], err);
    if (!st) st = top_artifact(t, err);
    if (st) tree_free(t);
    return st;
}

/* --- from the registry ------------------------------------------------------------------ */

static const char *str_at(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool valid_digest(const char *d)
{
    if (!d || strncmp(d, "sha256:", 7) || strlen(d) != 71) return false;
    for (const char *p = d + 7; *p; p++)
        if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p)) return false;
    return true;
}

/* A member manifest's layers (title, digest, size) into m. */
static ap_status parse_member(oci_client *c, tree_member *m, const char *body, size_t len,
                              ap_err *err)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers"), *l;
    ap_status st = AP_OK;
    if (!cJSON_IsArray(layers))
        st = ap_err_set(err, AP_ERR_FORMAT, "%s %s: member %s is not an OCI image manifest",
                        oci_url(c), oci_repo(c), m->digest);
    cJSON_ArrayForEach(l, layers)
    {
        if (st) break;
        const char *title = str_at(cJSON_GetObjectItemCaseSensitive(l, "annotations"), ANN_TITLE);
        const char *d = str_at(l, "digest");
        const cJSON *sz = cJSON_GetObjectItemCaseSensitive(l, "size");
        if (!title || !valid_digest(d) || !cJSON_IsNumber(sz) || sz->valuedouble < 0 ||
            sz->valuedouble > 9007199254740992.0) {
            st = ap_err_set(
                err, AP_ERR_FORMAT,
                "%s %s: member %s has a layer without a title, a sha256 digest or a size",
                oci_url(c), oci_repo(c), m->digest);
            break;
        }
        tree_file *f = add_file(m, title, err);
        if (!f) {
            st = err->status;
            break;
        }
        snprintf(f->digest, sizeof f->digest, "%s", d);
        f->size = (uint64_t)sz->valuedouble;
    }
    cJSON_Delete(j);
    return st;
}

static ap_status fetch_member(oci_client *c, tree *t, const char *path, const char *at,
                              const char *digest, ap_err *err)
{
    if (!tree_safe_path(path) && strcmp(path, "."))
        return ap_err_set(err, AP_ERR_FORMAT, "%s %s: unsafe member path \"%s\"", oci_url(c),
                          oci_repo(c), path);
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->m[i].path, path))
            return ap_err_set(err, AP_ERR_FORMAT, "%s %s: member path %s twice", oci_url(c),
                              oci_repo(c), path);
    tree_member *m = add_member(t, path, at, err);
    if (!m) return err->status;
    ap_status st =
        oci_manifest_get(c, digest, &m->manifest, &m->manifest_len, m->digest, NULL, 0, err);
    return st ? st : parse_member(c, m, m->manifest, m->manifest_len, err);
}

ap_status tree_from_registry(oci_client *c, const char *ref, tree *t, char *target, size_t tlen,
                             ap_err *err)
{
    memset(t, 0, sizeof *t);
    if (target) *target = 0;
    ap_status st = oci_manifest_get(c, ref, &t->top, &t->top_len, t->top_digest, NULL, 0, err);
    if (st) return st;
    cJSON *j = cJSON_ParseWithLength(t->top, t->top_len);
    const char *at = str_at(j, "artifactType");
    if (at && !strcmp(at, AT_ALIAS)) {
        /* An alias: the index names one artifact, the version tag's. */
        const char *tg = str_at(cJSON_GetObjectItemCaseSensitive(j, "annotations"), ANN_TARGET);
        const cJSON *d0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "manifests"), 0);
        const char *dg = str_at(d0, "digest");
        if (!tg || !valid_digest(dg)) {
            cJSON_Delete(j);
            tree_free(t);
            return ap_err_set(err, AP_ERR_FORMAT, "%s %s:%s: an alias index without a target",
                              oci_url(c), oci_repo(c), ref);
        }
        if (target) snprintf(target, tlen, "%s", tg);
        char dcopy[OCI_DIGEST_LEN];
        snprintf(dcopy, sizeof dcopy, "%s", dg);
        cJSON_Delete(j);
        free(t->top);
        t->top = NULL;
        st = oci_manifest_get(c, dcopy, &t->top, &t->top_len, t->top_digest, NULL, 0, err);
        if (st) return st;
        j = cJSON_ParseWithLength(t->top, t->top_len);
        at = str_at(j, "artifactType");
    }
    const char *mt = str_at(j, "mediaType");
    if (at && !strcmp(at, AT_PACKSET) && mt && !strcmp(mt, OCI_INDEX)) {
        t->packset = true;
        t->top_media = OCI_INDEX;
        const char *v = str_at(cJSON_GetObjectItemCaseSensitive(j, "annotations"), ANN_VERSION);
        t->version = v ? strtoull(v, NULL, 10) : 0;
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(j, "manifests"))
        {
            const char *p = str_at(cJSON_GetObjectItemCaseSensitive(d, "annotations"), ANN_PATH);
            const char *dg = str_at(d, "digest"), *dat = str_at(d, "artifactType");
            if (!p || !valid_digest(dg)) {
                st = ap_err_set(err, AP_ERR_FORMAT,
                                "%s %s:%s: a packset member without %s or digest", oci_url(c),
                                oci_repo(c), ref, ANN_PATH);
                break;
            }
            st = fetch_member(c, t, p, dat && !strcmp(dat, AT_ROOT) ? AT_ROOT : AT_PACK, dg, err);
            if (st) break;
        }
        if (!st && (t->n == 0 || strcmp(t->m[0].path, ".")))
            st = ap_err_set(err, AP_ERR_FORMAT,
                            "%s %s:%s: the packset's first member is not its root", oci_url(c),
                            oci_repo(c), ref);
    } else if (at && !strcmp(at, AT_PACK) && mt && !strcmp(mt, OCI_MANIFEST)) {
        t->top_media = OCI_MANIFEST;
        tree_member *m = add_member(t, ".", AT_PACK, err);
        if (!m) {
            st = err->status;
        } else {
            snprintf(m->digest, sizeof m->digest, "%s", t->top_digest);
            m->manifest = t->top ? malloc(t->top_len + 1) : NULL;
            if (!m->manifest) {
                st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
            } else {
                memcpy(m->manifest, t->top, t->top_len);
                m->manifest[t->top_len] = 0;
                m->manifest_len = t->top_len;
                st = parse_member(c, m, t->top, t->top_len, err);
            }
        }
    } else {
        st = ap_err_set(err, AP_ERR_FORMAT, "%s %s:%s is not an annpack artifact (artifactType %s)",
                        oci_url(c), oci_repo(c), ref, at ? at : "none");
    }
    cJSON_Delete(j);
    if (st) tree_free(t);
    return st;
}
