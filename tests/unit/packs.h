/* Small packs and packsets for the unit tests of verification, trust and the packset
 * operations: built through the library (tests/fuzz/fixture.h) in a scratch directory that
 * is removed at exit, plus the tampering those tests need (a flipped byte, a file's hash
 * re-pinned in its manifest so only the deep checks can see a change, a text edit). */
#ifndef ANNPACK_TEST_PACKS_H
#define ANNPACK_TEST_PACKS_H

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fuzz/fixture.h"
#include "annpack/packset.h"
#include "annpack/sign.h"
#include "check.h"
#include "digest_table.h"
#include "digests_write.h"
#include "fsops.h"
#include "json.h"

#define PK_DIM 8
#define PK_ROWS 40

static const char *pk_root;

/* root/name, malloc'd. */
static inline char *pk_path(const char *name)
{
    return fx_path(pk_root, name);
}

/* dir/name, malloc'd. */
static inline char *pk_join(const char *dir, const char *name)
{
    return fx_path(dir, name);
}

/* A CSV of PK_ROWS rows, ids first.., at root/name (salt varies the texts). */
static inline char *pk_csv(const char *name, uint64_t first, size_t n, unsigned salt)
{
    char *p = pk_path(name);
    fx_csv(p, fx_range(first, n), n, salt);
    return p;
}

/* A pack (packset 0) or a packset with only a base (packset 1) at root/name, from ids
 * 1..PK_ROWS; the metadata plain JSONL (AP_META_NONE) so tests can edit rows. */
static inline char *pk_build(const char *name, int packset, int sq8)
{
    char csvname[300];
    snprintf(csvname, sizeof csvname, "%s.csv", name);
    char *csv = pk_csv(csvname, 1, PK_ROWS, 0);
    char *out = pk_path(name);
    fx_build(csv, out, packset, PK_DIM, 1, 3, sq8, AP_META_NONE);
    free(csv);
    return out;
}

/* A packset at root/name with one appended delta (deltas/0001.delta: ids 41..45 added,
 * 2 and 3 deleted): live = PK_ROWS + 5 - 2. */
static inline char *pk_packset_with_delta(const char *name)
{
    char *ps = pk_build(name, 1, 0);
    char csvname[300];
    snprintf(csvname, sizeof csvname, "%s.add.csv", name);
    char *add = pk_csv(csvname, PK_ROWS + 1, 5, 3);
    char *out = pk_join(ps, "deltas/0001.delta");
    const uint64_t del[2] = {2, 3};
    ap_delta_opts o = {.add_csv = add,
                       .text_col = "text",
                       .id_col = "id",
                       .delete_ids = del,
                       .n_delete = 2,
                       .out_dir = out,
                       .lists = 2,
                       .seed = 1,
                       .meta_codec = AP_META_NONE};
    ap_err err = {0};
    if (ap_packset_add_delta(ps, &o, 0, NULL, &err)) fx_die(out, &err);
    free(add);
    free(out);
    return ps;
}

/* XORs the byte at off of path with x. */
static inline void pk_flip(const char *path, long off, unsigned char x)
{
    int fd = open(path, O_RDWR);
    unsigned char b = 0;
    if (fd < 0 || pread(fd, &b, 1, off) != 1) fx_die(path, NULL);
    b ^= x;
    if (pwrite(fd, &b, 1, off) != 1) fx_die(path, NULL);
    close(fd);
}

/* Writes len bytes at off of path. */
static inline void pk_poke(const char *path, long off, const void *data, size_t len)
{
    int fd = open(path, O_RDWR);
    if (fd < 0 || pwrite(fd, data, len, off) != (ssize_t)len) fx_die(path, NULL);
    close(fd);
}

static inline char *pk_slurp(const char *path, size_t *len)
{
    char *s = NULL;
    ap_err err = {0};
    if (ap_read_file(path, 1u << 26, &s, len, &err)) fx_die(path, &err);
    return s;
}

/* Replaces (atomically) path with data. */
static inline void pk_put(const char *path, const char *data, size_t len)
{
    ap_err err = {0};
    if (ap_write_file_atomic(path, data, len, 0644, &err)) fx_die(path, &err);
}

/* Replaces the first occurrence of from by to in the file; 1 when it was there. */
static inline int pk_edit(const char *path, const char *from, const char *to)
{
    size_t len;
    char *s = pk_slurp(path, &len);
    char *at = strstr(s, from);
    if (!at) {
        free(s);
        return 0;
    }
    size_t fl = strlen(from), tl = strlen(to), nl = len - fl + tl;
    char *n = malloc(nl + 1);
    if (!n) fx_die("out of memory", NULL);
    size_t pre = (size_t)(at - s);
    memcpy(n, s, pre);
    memcpy(n + pre, to, tl);
    memcpy(n + pre + tl, at + fl, len - pre - fl);
    pk_put(path, n, nl);
    free(n);
    free(s);
    return 1;
}

/* Sets files[name] of dir/pack.manifest.json to size and hex. */
static inline void pk_pin(const char *dir, const char *file, uint64_t size, const char *hex)
{
    char *mp = pk_join(dir, AP_MANIFEST);
    size_t len;
    char *text = pk_slurp(mp, &len);
    cJSON *m = cJSON_Parse(text);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "files"), file);
    if (!e) fx_die(file, NULL);
    cJSON_ReplaceItemInObjectCaseSensitive(e, "size", cJSON_CreateNumber((double)size));
    cJSON_ReplaceItemInObjectCaseSensitive(e, "sha256", cJSON_CreateString(hex));
    size_t nl;
    char *out = ap_json_render(m, &nl);
    pk_put(mp, out, nl);
    free(out);
    cJSON_Delete(m);
    free(text);
    free(mp);
}

/* Re-pins dir/file's size and SHA-256 in dir/pack.manifest.json (a changed file whose
 * manifest was rewritten to match: only the deep checks see the change), and when the
 * manifest lists pack.digests, rewrites that table over the listed files and re-pins it. */
static inline void pk_rehash(const char *dir, const char *file)
{
    char *fp = pk_join(dir, file), *mp = pk_join(dir, AP_MANIFEST);
    char hex[AP_SHA256_HEX];
    uint64_t size;
    ap_err err = {0};
    if (ap_sha256_file(fp, hex, &size, &err)) fx_die(fp, &err);
    pk_pin(dir, file, size, hex);
    size_t len;
    char *text = pk_slurp(mp, &len);
    cJSON *m = cJSON_Parse(text);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files");
    if (cJSON_GetObjectItemCaseSensitive(files, AP_DIGESTS)) {
        const char *names[16];
        size_t n = 0;
        for (const cJSON *f = files->child; f && n < 16; f = f->next)
            if (strcmp(f->string, AP_DIGESTS) != 0) names[n++] = f->string;
        char hx[16][AP_SHA256_HEX], dhex[AP_SHA256_HEX];
        uint64_t sz[16], dsize;
        char *dp = pk_join(dir, AP_DIGESTS);
        unlink(dp);
        free(dp);
        if (ap_digests_write(dir, names, n, hx, sz, dhex, &dsize, &err)) fx_die(dir, &err);
        pk_pin(dir, AP_DIGESTS, dsize, dhex);
    }
    cJSON_Delete(m);
    free(text);
    free(fp);
    free(mp);
}

/* The report's "ok", and its "error"."file" (or "" when none) into file. */
static inline int pk_report_ok(const char *report, char *file, size_t cap)
{
    cJSON *r = cJSON_Parse(report ? report : "");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "file");
    if (file) snprintf(file, cap, "%s", cJSON_IsString(f) ? f->valuestring : "");
    int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"));
    cJSON_Delete(r);
    return ok;
}

#endif
