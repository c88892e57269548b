/* Metadata row store: both codecs, the seekable format, the index, hostile files, caps. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annpack/caps.h"
#include "annpack/meta.h"
#include "check.h"
#include "fsops.h"

#define N 20000

static char *row_for(uint64_t id, size_t *len)
{
    static char buf[300000];
    size_t pad = (id * 7919) % 300;
    if (id == 777) pad = 200 * 1024; /* one row larger than a frame */
    int n = snprintf(buf, sizeof buf, "{\"id\":%llu,\"t\":\"", (unsigned long long)id);
    for (size_t i = 0; i < pad; i++)
        buf[n++] = (char)('a' + (id + i) % 26);
    n += snprintf(buf + n, sizeof buf - (size_t)n, "\"}");
    *len = (size_t)n;
    return buf;
}

static void write_store(const char *dir, ap_meta_codec codec, ap_err *err)
{
    ap_meta_writer *w;
    CHECK_OK(ap_meta_writer_open(dir, codec, 0, &w, err), err);
    for (uint64_t i = 0; i < N; i++) {
        uint64_t id = (i * 7) % N * 3; /* unsorted, unique ids */
        size_t len;
        char *r = row_for(id, &len);
        CHECK_OK(ap_meta_writer_add(w, id, r, len, err), err);
    }
    CHECK_OK(ap_meta_writer_finish(w, err), err);
    ap_meta_writer_free(w);
}

static char *slurp(const char *path, size_t *len)
{
    char *s = NULL;
    ap_read_file(path, 1u << 30, &s, len, NULL);
    return s;
}

static void check_store(const char *dir, ap_err *err)
{
    ap_meta *m;
    CHECK_OK(ap_meta_open(dir, &m, err), err);
    if (!m) return;
    CHECK(ap_meta_count(m) == N);
    int bad = 0;
    for (uint64_t i = 0; i < N; i += 7) {
        uint64_t id = (i * 13) % N * 3;
        char *row;
        size_t len, wl;
        char *want = row_for(id, &wl);
        if (ap_meta_get(m, id, &row, &len, err) != AP_OK || len != wl || memcmp(row, want, wl))
            bad++;
        free(row);
    }
    CHECK(bad == 0);
    char *row;
    size_t len;
    CHECK_ERR(ap_meta_get(m, 1, &row, &len, err), AP_ERR_NOTFOUND, err, "id 1");
    ap_meta_close(m);
}

static void flip(const char *path, long off_from_end)
{
    int fd = open(path, O_RDWR);
    struct stat sb;
    fstat(fd, &sb);
    unsigned char b;
    pread(fd, &b, 1, sb.st_size - off_from_end);
    b ^= 0x40;
    pwrite(fd, &b, 1, sb.st_size - off_from_end);
    close(fd);
}

int main(void)
{
    ap_err err;
    char tmpl[] = "/tmp/annpack-meta-XXXXXX";
    char *dir = mkdtemp(tmpl);
    char zd[256], pd[256], cmd[1024];
    snprintf(zd, sizeof zd, "%s/z", dir);
    snprintf(pd, sizeof pd, "%s/p", dir);
    mkdir(zd, 0755);
    mkdir(pd, 0755);
    write_store(zd, AP_META_ZSTD, &err);
    write_store(pd, AP_META_NONE, &err);
    check_store(zd, &err);
    check_store(pd, &err);

    /* zstd -d of the seekable file is the plain JSONL, byte for byte. */
    snprintf(cmd, sizeof cmd, "zstd -d -q -c %s/pack.meta.jsonl.zst | cmp -s - %s/pack.meta.jsonl",
             zd, pd);
    CHECK(system(cmd) == 0);
    /* Identical indexes; stream ranges across frames equal the plain bytes. */
    snprintf(cmd, sizeof cmd, "cmp -s %s/pack.meta.idx %s/pack.meta.idx", zd, pd);
    CHECK(system(cmd) == 0);
    ap_meta *mz, *mp;
    CHECK_OK(ap_meta_open(zd, &mz, &err), &err);
    CHECK_OK(ap_meta_open(pd, &mp, &err), &err);
    CHECK(ap_meta_stream_size(mz) == ap_meta_stream_size(mp));
    char *a = malloc(300000), *b = malloc(300000);
    int diff = 0;
    for (uint64_t off = 0; off + 250000 < ap_meta_stream_size(mz); off += 333333) {
        ap_meta_read_stream(mz, off, a, 250000, &err);
        ap_meta_read_stream(mp, off, b, 250000, &err);
        diff += memcmp(a, b, 250000) != 0;
    }
    CHECK(diff == 0);
    CHECK_ERR(ap_meta_read_stream(mz, ap_meta_stream_size(mz) - 1, a, 2, &err), AP_ERR_ARG, &err,
              "outside");
    free(a);
    free(b);
    ap_meta_close(mz);
    ap_meta_close(mp);

    /* Determinism: a second write gives the same bytes. */
    char zd2[256];
    snprintf(zd2, sizeof zd2, "%s/z2", dir);
    mkdir(zd2, 0755);
    write_store(zd2, AP_META_ZSTD, &err);
    snprintf(cmd, sizeof cmd, "cmp -s %s/pack.meta.jsonl.zst %s/pack.meta.jsonl.zst", zd, zd2);
    CHECK(system(cmd) == 0);

    /* Without the idx: rebuilt by scanning, same answers. */
    snprintf(cmd, sizeof cmd, "%s/pack.meta.idx", zd2);
    unlink(cmd);
    check_store(zd2, &err);

    /* Hostile files. */
    char path[512], zfile[512], ifile[512];
    snprintf(zfile, sizeof zfile, "%s/pack.meta.jsonl.zst", zd);
    snprintf(ifile, sizeof ifile, "%s/pack.meta.idx", zd);
    size_t zlen, ilen;
    char *zorig = slurp(zfile, &zlen), *iorig = slurp(ifile, &ilen);
    ap_meta *m;
    truncate(zfile, (off_t)zlen - 5);
    CHECK_ERR(ap_meta_open(zd, &m, &err), AP_ERR_FORMAT, &err, "pack.meta.jsonl.zst");
    ap_write_file_atomic(zfile, zorig, zlen, 0644, NULL);
    flip(zfile, 20); /* inside the seek table entries: refused at open, or when the frames
                      * it misdescribes are read (frames are checked on first read) */
    if (ap_meta_open(zd, &m, &err) == AP_OK) {
        ap_status first = AP_OK;
        for (uint64_t i = 0; i < ap_meta_count(m) && !first; i++) {
            uint64_t id, off, rl;
            char *row = NULL;
            size_t len;
            ap_meta_entry(m, i, &id, &off, &rl);
            first = ap_meta_get(m, id, &row, &len, &err);
            free(row);
        }
        CHECK(first == AP_ERR_FORMAT);
        CHECK(strstr(err.msg, "pack.meta.jsonl.zst") != NULL);
        ap_meta_close(m);
    } else {
        CHECK(strstr(err.msg, "pack.meta.jsonl.zst") != NULL);
    }
    ap_write_file_atomic(zfile, zorig, zlen, 0644, NULL);
    truncate(ifile, (off_t)ilen - 1);
    CHECK_ERR(ap_meta_open(zd, &m, &err), AP_ERR_FORMAT, &err, "does not fit");
    ap_write_file_atomic(ifile, iorig, ilen, 0644, NULL);
    /* Unsorted ids: swap the first two entries. */
    char *sw = malloc(ilen);
    memcpy(sw, iorig, ilen);
    memcpy(sw + 16, iorig + 40, 24);
    memcpy(sw + 40, iorig + 16, 24);
    ap_write_file_atomic(ifile, sw, ilen, 0644, NULL);
    CHECK_ERR(ap_meta_open(zd, &m, &err), AP_ERR_FORMAT, &err, "not strictly ascending");
    /* An offset outside the stream. */
    memcpy(sw, iorig, ilen);
    memset(sw + 24, 0x7f, 8);
    ap_write_file_atomic(ifile, sw, ilen, 0644, NULL);
    CHECK_ERR(ap_meta_open(zd, &m, &err), AP_ERR_FORMAT, &err, "bytes of rows");
    /* An entry pointing at the wrong place is caught when the row is read. */
    memcpy(sw, iorig, ilen);
    uint64_t off;
    memcpy(&off, sw + 24, 8);
    off += 3;
    memcpy(sw + 24, &off, 8);
    ap_write_file_atomic(ifile, sw, ilen, 0644, NULL);
    CHECK_OK(ap_meta_open(zd, &m, &err), &err);
    uint64_t id0;
    memcpy(&id0, sw + 16, 8);
    char *row;
    size_t len;
    CHECK_ERR(ap_meta_get(m, id0, &row, &len, &err), AP_ERR_FORMAT, &err, "does not match a row");
    ap_meta_close(m);
    ap_write_file_atomic(ifile, iorig, ilen, 0644, NULL);
    free(sw);

    /* Scanning rejects rows without an integer id, and duplicates. */
    snprintf(path, sizeof path, "%s/bad", dir);
    mkdir(path, 0755);
    char jf[600];
    snprintf(jf, sizeof jf, "%s/pack.meta.jsonl", path);
    ap_write_file_atomic(jf, "{\"id\":1}\n{\"x\":2}\n", 17, 0644, NULL);
    CHECK_ERR(ap_meta_open(path, &m, &err), AP_ERR_FORMAT, &err, "pack.meta.jsonl:2");
    ap_write_file_atomic(jf, "{\"id\":1}\n{\"id\":1.5}\n", 20, 0644, NULL);
    CHECK_ERR(ap_meta_open(path, &m, &err), AP_ERR_FORMAT, &err, "exact integer");
    ap_write_file_atomic(jf, "{\"id\":1}\n{\"id\":1}\n", 18, 0644, NULL);
    CHECK_ERR(ap_meta_open(path, &m, &err), AP_ERR_FORMAT, &err, "duplicate id 1");

    /* Writer: duplicates and newlines refused. */
    ap_meta_writer *w;
    snprintf(path, sizeof path, "%s/w", dir);
    mkdir(path, 0755);
    CHECK_OK(ap_meta_writer_open(path, AP_META_ZSTD, 0, &w, &err), &err);
    CHECK_OK(ap_meta_writer_add(w, 5, "{\"id\":5}", 8, &err), &err);
    CHECK_ERR(ap_meta_writer_add(w, 6, "{\n}", 3, &err), AP_ERR_ARG, &err, "newline");
    CHECK_OK(ap_meta_writer_add(w, 5, "{\"id\":5}", 8, &err), &err);
    CHECK_ERR(ap_meta_writer_finish(w, &err), AP_ERR_FORMAT, &err, "duplicate id 5");
    ap_meta_writer_free(w);

    /* Caps: just under works, just over names the variable. */
    size_t total = 0;
    {
        ap_meta *pm;
        ap_meta_open(pd, &pm, &err);
        total = ap_meta_stream_size(pm);
        ap_meta_close(pm);
    }
    snprintf(cmd, sizeof cmd, "%zu", total);
    setenv("ANNPACK_MAX_META_BYTES", cmd, 1);
    setenv("ANNPACK_META_MAX_LINE", "300000", 1);
    ap_caps_reload(&err);
    CHECK_OK(ap_meta_open(pd, &m, &err), &err);
    ap_meta_close(m);
    snprintf(cmd, sizeof cmd, "%zu", total - 1);
    setenv("ANNPACK_MAX_META_BYTES", cmd, 1);
    ap_caps_reload(&err);
    CHECK_ERR(ap_meta_open(pd, &m, &err), AP_ERR_LIMIT, &err, "ANNPACK_MAX_META_BYTES");
    setenv("ANNPACK_ALLOW_LARGE_META", "1", 1);
    ap_caps_reload(&err);
    CHECK_OK(ap_meta_open(pd, &m, &err), &err);
    ap_meta_close(m);
    unsetenv("ANNPACK_ALLOW_LARGE_META");
    unsetenv("ANNPACK_MAX_META_BYTES");
    setenv("ANNPACK_META_MAX_LINE", "1000", 1);
    ap_caps_reload(&err);
    CHECK_ERR(ap_meta_open(pd, &m, &err), AP_ERR_LIMIT, &err, "ANNPACK_META_MAX_LINE");
    unsetenv("ANNPACK_META_MAX_LINE");
    ap_caps_reload(&err);

    free(zorig);
    free(iorig);
    ap_rmtree(dir);
    return check_done();
}
