/* Fuzz helper: scratch directories and small valid packs, packsets and deltas built once
 * per process through the library's own build API (so the fixtures always match the
 * current formats). Setup failures abort: the harness cannot run without its fixture. */
#ifndef ANNPACK_FUZZ_FIXTURE_H
#define ANNPACK_FUZZ_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annpack/packset.h"
#include "fsops.h"

static char fx_root[128];

/* ANNPACK_FUZZ_KEEP=1 keeps the scratch directory (to look at a fixture or a failure). */
static inline void fx_cleanup(void)
{
    const char *keep = getenv("ANNPACK_FUZZ_KEEP");
    if (fx_root[0] && !(keep && !strcmp(keep, "1"))) ap_rmtree(fx_root);
}

static inline void fx_die(const char *what, const ap_err *err)
{
    fprintf(stderr, "fuzz fixture: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    abort();
}

/* Creates the process's scratch directory ($TMPDIR or /tmp), removed at exit. */
static inline const char *fx_scratch(const char *tag)
{
    const char *t = getenv("TMPDIR");
    snprintf(fx_root, sizeof fx_root, "%s/annpack-fuzz-%s-XXXXXX", t && *t ? t : "/tmp", tag);
    if (!mkdtemp(fx_root)) fx_die("mkdtemp", NULL);
    atexit(fx_cleanup);
    return fx_root;
}

/* dir/name, malloc'd. */
static inline char *fx_path(const char *dir, const char *name)
{
    char *p = ap_path_join(dir, name);
    if (!p) fx_die("out of memory", NULL);
    return p;
}

/* Writes (replaces) a whole file; 0 on success. */
static inline int fx_put(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = (len == 0 || fwrite(data, 1, len, f) == len);
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Writes a CSV "id,text" with one row per id to path. The text varies with salt so that
 * two CSVs give different vectors for the same ids. */
static inline void fx_csv(const char *path, const uint64_t *ids, size_t n, unsigned salt)
{
    static const char *words[] = {"bread",  "coffee",  "tomato", "rust",    "kernel", "river",
                                  "violin", "granite", "orbit",  "lantern", "meadow", "cipher"};
    size_t cap = 64 + n * 96, len = 0;
    char *s = malloc(cap);
    if (!s) fx_die("out of memory", NULL);
    len += (size_t)snprintf(s, cap, "id,text\n");
    for (size_t i = 0; i < n; i++) {
        size_t a = (i * 7 + salt) % 12, b = (i * 5 + salt * 3 + 1) % 12;
        len += (size_t)snprintf(s + len, cap - len, "%llu,%s %s number %zu\n",
                                (unsigned long long)ids[i], words[a], words[b], i);
    }
    if (fx_put(path, s, len)) fx_die(path, NULL);
    free(s);
}

/* ids first, first + 1, ... first + n - 1 (n <= 256) into a static array. */
static inline const uint64_t *fx_range(uint64_t first, size_t n)
{
    static uint64_t r[256];
    for (size_t i = 0; i < n && i < 256; i++)
        r[i] = first + i;
    return r;
}

/* Builds a pack (or, with packset, a packset whose base is the pack) from a CSV file. */
static inline void fx_build(const char *csv, const char *out, int packset, uint32_t dim,
                            uint64_t seed, uint32_t lists, int sq8, ap_meta_codec codec)
{
    ap_err err = {0};
    ap_build_opts o = {.input_csv = csv,
                       .text_col = "text",
                       .id_col = "id",
                       .output_dir = out,
                       .lists = lists,
                       .seed = seed,
                       .dim = dim,
                       .meta_codec = codec,
                       .sq8 = sq8 != 0};
    ap_build_report rep;
    ap_status st = packset ? ap_packset_build_base(&o, &rep, &err) : ap_pack_build(&o, &rep, &err);
    if (st) fx_die(out, &err);
}

/* Builds a delta directory against base_dir: rows of add_csv (or none) and deletions. */
static inline void fx_delta(const char *base_dir, const char *out, const char *add_csv,
                            const uint64_t *del, size_t ndel, ap_meta_codec codec)
{
    ap_err err = {0};
    ap_delta_opts o = {.base_dir = base_dir,
                       .add_csv = add_csv,
                       .text_col = "text",
                       .id_col = "id",
                       .delete_ids = del,
                       .n_delete = ndel,
                       .out_dir = out,
                       .lists = 2,
                       .seed = 1,
                       .meta_codec = codec};
    if (ap_delta_build(&o, &err)) fx_die(out, &err);
}

/* Splits data at each occurrence of sep into at most max parts; returns the count. */
static inline size_t fx_split(const uint8_t *data, size_t size, const char *sep,
                              const uint8_t **part, size_t *len, size_t max)
{
    size_t sl = strlen(sep), n = 0, start = 0;
    for (size_t i = 0; n + 1 < max && i + sl <= size; i++)
        if (memcmp(data + i, sep, sl) == 0) {
            part[n] = data + start;
            len[n++] = i - start;
            start = i + sl;
            i += sl - 1;
        }
    part[n] = data + start;
    len[n++] = size - start;
    return n;
}

#endif
