/* pack.digests at the end of a build: see digests_write.h.
 *
 * The files are read with pread into bounded buffers, never held mapped while hashed: the
 * builder still holds every row at this point, and a mapped 1 GB pack.annpack would add its
 * pages to the builder's RSS. Only the layouts are read through a mapping (the ANNP header,
 * centroids and offset table, the zstd frame headers), which is dropped before hashing.
 *
 * Every file is hashed twice, whole (for the manifest) and range by range (for the table),
 * so the work is cut into jobs: each file's whole hash, and runs of its ranges. Worker
 * threads take jobs in turn; each job writes only its own digests, so the bytes do not
 * depend on the thread count, and errors are reported in job order. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annpack/format.h"
#include "digest.h"
#include "digest_layout.h"
#include "digest_table.h"
#include "digests_write.h"
#include "fsops.h"
#include "mapping.h"
#include "parallel.h"

/* Bytes read per pread. */
#define READ_BUF (1u << 20)
/* A range job hashes consecutive ranges until it has this many bytes. */
#define RANGE_JOB_BYTES (32ull << 20)

/* One file: open, its ranges, their digests. */
typedef struct one_file {
    char *path;
    int fd;
    uint64_t size;
    ap_digest_layout lay;
    uint8_t (*sha)[32];
    char whole[AP_SHA256_HEX];
} one_file;

/* A job: file f's whole hash (first == UINT32_MAX), or its ranges [first, last). */
typedef struct hash_job {
    uint32_t f, first, last;
    ap_status st;
    ap_err err;
} hash_job;

typedef struct hash_work {
    one_file *fs;
    hash_job *jobs;
    size_t njobs;
    atomic_size_t next;
    atomic_int nomem;
} hash_work;

static ap_status read_at(const one_file *f, uint64_t off, uint8_t *buf, size_t len, ap_err *err)
{
    while (len) {
        ssize_t r = pread(f->fd, buf, len, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return ap_err_errno(err, AP_ERR_IO, errno, "%s: read", f->path);
        if (r == 0) return ap_err_set(err, AP_ERR_IO, "%s: shrank while being hashed", f->path);
        buf += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return AP_OK;
}

/* SHA-256 of len bytes of f at off: raw into out, or as hex into hex when out is NULL. */
static ap_status hash_span(const one_file *f, uint64_t off, uint64_t len, uint8_t *buf,
                           uint8_t *out, char *hex, ap_err *err)
{
    ap_sha256 *h = ap_sha256_new();
    if (!h) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = AP_OK;
    while (len && !st) {
        size_t piece = len < READ_BUF ? (size_t)len : READ_BUF;
        if (!(st = read_at(f, off, buf, piece, err))) ap_sha256_update(h, buf, piece);
        off += piece;
        len -= piece;
    }
    if (st)
        ap_sha256_free(h);
    else if (out)
        ap_sha256_final_raw(h, out);
    else
        ap_sha256_final(h, hex);
    return st;
}

static void hash_part(void *ctx, uint32_t p, uint32_t nparts)
{
    (void)p;
    (void)nparts;
    hash_work *w = ctx;
    uint8_t *buf = malloc(READ_BUF);
    if (!buf) {
        atomic_store(&w->nomem, 1);
        return;
    }
    for (size_t i; (i = atomic_fetch_add(&w->next, 1)) < w->njobs;) {
        hash_job *j = &w->jobs[i];
        one_file *f = &w->fs[j->f];
        if (j->first == UINT32_MAX) {
            j->st = hash_span(f, 0, f->size, buf, NULL, f->whole, &j->err);
            continue;
        }
        for (uint32_t k = j->first; k < j->last && !j->st; k++)
            j->st = hash_span(f, f->lay.off[k], f->lay.len[k], buf, f->sha[k], NULL, &j->err);
    }
    free(buf);
}

/* Opens dir/name and lays out its ranges (through a mapping dropped before returning).
 * *annp: the pack's ANNP file, opened here from pack.annpack (which sorts first) for its own
 * layout and pack.sq8's; *annp_map: its mapping, which *annp reads until closed. */
static ap_status lay_out(const char *dir, const char *name, ap_annp **annp, const void **annp_map,
                         uint64_t *annp_size, one_file *f, ap_err *err)
{
    f->fd = -1;
    if (!(f->path = ap_path_join(dir, name))) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = ap_open_regular(f->path, &f->fd, &f->size, err);
    const void *map = NULL;
    if (!st && f->size) st = ap_map_file(f->fd, (size_t)f->size, f->path, &map, err);
    bool keep = false;
    if (!st && strcmp(name, AP_ANNPACK) == 0 && !*annp) {
        st = ap_annp_open_mem(map, (size_t)f->size, f->path, annp, err);
        keep = !st;
    }
    if (!st) st = ap_digest_layout_of(name, map, f->size, *annp, &f->lay, err);
    if (!st && !(f->sha = malloc((f->lay.n ? f->lay.n : 1) * sizeof *f->sha)))
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (keep) {
        *annp_map = map;
        *annp_size = f->size;
    } else if (map) {
        ap_unmap_file(map, (size_t)f->size);
    }
    return st;
}

/* The jobs for n laid-out files: the whole hashes first (the longest, so they start first),
 * then runs of ranges. *out is the caller's. */
static ap_status make_jobs(const one_file *fs, size_t n, hash_job **out, size_t *njobs, ap_err *err)
{
    size_t cap = n;
    for (size_t i = 0; i < n; i++)
        cap += fs[i].lay.n;
    hash_job *jobs = calloc(cap ? cap : 1, sizeof *jobs);
    if (!jobs) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    size_t nj = 0;
    for (size_t i = 0; i < n; i++)
        jobs[nj++] = (hash_job){.f = (uint32_t)i, .first = UINT32_MAX};
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < fs[i].lay.n;) {
            uint64_t bytes = 0;
            uint32_t first = k;
            while (k < fs[i].lay.n && (k == first || bytes < RANGE_JOB_BYTES))
                bytes += fs[i].lay.len[k++];
            jobs[nj++] = (hash_job){.f = (uint32_t)i, .first = first, .last = k};
        }
    *out = jobs;
    *njobs = nj;
    return AP_OK;
}

static void free_file(one_file *f)
{
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    ap_digest_layout_free(&f->lay);
    free(f->sha);
}

ap_status ap_digests_write(const char *dir, const char *const *names, size_t n,
                           char (*hex)[AP_SHA256_HEX], uint64_t *size, char dhex[AP_SHA256_HEX],
                           uint64_t *dsize, ap_err *err)
{
    one_file *fs = calloc(n ? n : 1, sizeof *fs);
    ap_digest_spec *spec = calloc(n ? n : 1, sizeof *spec);
    ap_annp *annp = NULL;
    const void *annp_map = NULL;
    uint64_t annp_size = 0;
    hash_work w = {.fs = fs};
    ap_status st = AP_OK;
    if (!fs || !spec) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        fs[i].fd = -1;
    /* pack.annpack sorts first: its lists give pack.sq8's ranges. */
    for (size_t i = 0; !st && i < n; i++)
        st = lay_out(dir, names[i], &annp, &annp_map, &annp_size, &fs[i], err);
    ap_annp_close(annp); /* before the mapping it reads goes */
    annp = NULL;
    if (annp_map) ap_unmap_file(annp_map, (size_t)annp_size);
    if (!st) st = make_jobs(fs, n, &w.jobs, &w.njobs, err);
    if (!st) {
        atomic_init(&w.next, 0);
        atomic_init(&w.nomem, 0);
        ap_parallel_for(ap_parallel_parts(w.njobs, 1), hash_part, &w);
        /* A part that cannot allocate takes no job; the others then take them all. */
        if (atomic_load(&w.next) < w.njobs)
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory hashing %s", dir);
        for (size_t i = 0; i < w.njobs && !st; i++)
            if ((st = w.jobs[i].st) && err) *err = w.jobs[i].err;
    }
    for (size_t i = 0; !st && i < n; i++) {
        memcpy(hex[i], fs[i].whole, AP_SHA256_HEX);
        size[i] = fs[i].size;
        spec[i] = (ap_digest_spec){.name = names[i],
                                   .size = fs[i].size,
                                   .n_ranges = fs[i].lay.n,
                                   .off = fs[i].lay.off,
                                   .len = fs[i].lay.len,
                                   .sha256 = (const uint8_t(*)[32])fs[i].sha};
    }
    uint8_t *tab = NULL;
    size_t tlen = 0;
    if (!st) st = ap_digest_table_encode(spec, n, &tab, &tlen, err);
    char *p = st ? NULL : ap_path_join(dir, AP_DIGESTS);
    if (!st && !p) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) st = ap_write_file(p, tab, tlen, err);
    if (!st) {
        ap_sha256_hex(tab, tlen, dhex);
        *dsize = tlen;
    }
    free(p);
    free(tab);
out:
    for (size_t i = 0; fs && i < n; i++)
        free_file(&fs[i]);
    free(fs);
    free(spec);
    free(w.jobs);
    return st;
}
