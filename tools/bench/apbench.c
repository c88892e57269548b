/* apbench — the machine's own limits and the mount's client side, for tools/bench/harness.py.
 *
 *   apbench membw [--mb N] [--runs R]      single-core sequential read bandwidth (GB/s)
 *   apbench filebw PACK.annpack [--runs R] the same over a pack file as search maps it
 *                                          (huge-page mapping of page-cache folios)
 *   apbench sgemm [--threads T] [--runs R] OpenBLAS sgemm GFLOP/s on the k-means shape
 *   apbench fusefloor MOUNTPOINT [--busy-us N] [--busy-mb M]  a trivial libfuse3 file system
 *                                          (foreground): every name under / is a small
 *                                          synthetic file; with --busy-us its lookup first
 *                                          works for N us (a query's time, so the same idle
 *                                          periods occur), streaming through M MiB of memory
 *                                          on the way when --busy-mb is given (a query's cache
 *                                          footprint)
 *   apbench readnames DIR --n N [--prefix P]  open+read+close of N distinct names DIR/P<i>
 *   apbench mountq MOUNT --queries Q.fvecs [--probe P] [-k K] [--from I] [--n N]
 *                                          open+read+close of MOUNT/vquery/<params>/<vector>
 *
 * Every measuring command prints one JSON object. Latencies are per call, in microseconds;
 * medians are what the harness reports. */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>
#include <fuse.h>

#include "annpack/annpack.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

extern void openblas_set_num_threads(int num_threads);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *xs, size_t n, double p)
{
    qsort(xs, n, sizeof *xs, cmp_double);
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    return xs[r ? r - 1 : 0];
}

static const char *arg_str(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

static long arg_long(int argc, char **argv, const char *name, long def)
{
    const char *s = arg_str(argc, argv, name, NULL);
    return s ? strtol(s, NULL, 10) : def;
}

/* --- membw ----------------------------------------------------------------------------- */

/* One pass reading every line of p[0..n) with a software prefetch 1 KiB ahead (what the
 * scan kernels do); xor keeps the loads alive. */
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static uint64_t read_pass_avx512(const uint8_t *p, size_t n)
{
    __m512i a = _mm512_setzero_si512(), b = a;
    for (size_t i = 0; i < n; i += 128) {
        _mm_prefetch((const char *)p + i + 1024, _MM_HINT_T0);
        _mm_prefetch((const char *)p + i + 1088, _MM_HINT_T0);
        a = _mm512_xor_si512(a, _mm512_load_si512((const void *)(p + i)));
        b = _mm512_xor_si512(b, _mm512_load_si512((const void *)(p + i + 64)));
    }
    uint64_t lanes[8], r = 0; /* xor the lanes: a sum could overflow (UBSan) */
    _mm512_storeu_si512((void *)lanes, _mm512_xor_si512(a, b));
    for (int i = 0; i < 8; i++)
        r ^= lanes[i];
    return r;
}
#endif

static uint64_t read_pass_portable(const uint8_t *p, size_t n)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    const uint64_t *q = (const uint64_t *)(const void *)p;
    for (size_t i = 0; i < n / 8; i += 8) {
        __builtin_prefetch(q + i + 128);
        a ^= q[i] ^ q[i + 4];
        b ^= q[i + 1] ^ q[i + 5];
        c ^= q[i + 2] ^ q[i + 6];
        d ^= q[i + 3] ^ q[i + 7];
    }
    return a ^ b ^ c ^ d;
}

static int cmd_membw(int argc, char **argv)
{
    size_t mb = (size_t)arg_long(argc, argv, "--mb", 1024);
    int runs = (int)arg_long(argc, argv, "--runs", 7);
    size_t n = mb << 20;
    uint8_t *p = aligned_alloc(2u << 20, n);
    if (!p) return fprintf(stderr, "apbench membw: out of memory\n"), 1;
    madvise(p, n, MADV_HUGEPAGE);
    memset(p, 1, n);
    int simd = 0;
#if defined(__x86_64__)
    simd = ap_cpu_has("avx512f");
#endif
    double *g = malloc((size_t)runs * sizeof *g);
    uint64_t sink = 0;
    for (int r = 0; r < runs; r++) {
        double t = now_s();
#if defined(__x86_64__)
        sink += simd ? read_pass_avx512(p, n) : read_pass_portable(p, n);
#else
        sink += read_pass_portable(p, n);
#endif
        g[r] = (double)n / (now_s() - t) / 1e9;
    }
    double best = 0;
    for (int r = 0; r < runs; r++)
        best = g[r] > best ? g[r] : best;
    printf("{\"buffer_mb\":%zu,\"runs\":%d,\"read_gbps_median\":%.2f,\"read_gbps_best\":%.2f,"
           "\"sink\":%llu}\n",
           mb, runs, pct(g, (size_t)runs, 50), best, (unsigned long long)(sink & 1));
    free(g);
    free(p);
    return 0;
}

static uint64_t read_pass(const uint8_t *p, size_t n)
{
#if defined(__x86_64__)
    if (ap_cpu_has("avx512f")) return read_pass_avx512(p, n);
#endif
    return read_pass_portable(p, n);
}

/* On a virtual machine the speed of memory depends on how the host backs each guest page,
 * so the page-cache folios holding a pack can read slower than a fresh anonymous buffer:
 * this is the limit for the pages the searches actually stream. */
static int cmd_filebw(int argc, char **argv)
{
    if (argc < 2) return fprintf(stderr, "usage: apbench filebw PACK.annpack [--runs R]\n"), 2;
    int runs = (int)arg_long(argc, argv, "--runs", 5);
    ap_annp *a;
    ap_err err = {0};
    if (ap_annp_open(argv[1], &a, &err)) return fprintf(stderr, "apbench: %s\n", err.msg), 1;
    size_t n = (size_t)ap_annp_file_size(a) & ~(size_t)255;
    const uint8_t *p = ap_annp_bytes(a);
    double *g = malloc((size_t)(runs + 1) * sizeof *g);
    uint64_t sink = 0;
    for (int r = -1; r < runs; r++) { /* one unmeasured pass faults the pages in */
        double t = now_s();
        sink += read_pass(p, n);
        if (r >= 0) g[r] = (double)n / (now_s() - t) / 1e9;
    }
    printf("{\"file_bytes\":%zu,\"runs\":%d,\"read_gbps_median\":%.2f,\"sink\":%llu}\n", n, runs,
           pct(g, (size_t)runs, 50), (unsigned long long)(sink & 1));
    free(g);
    ap_annp_close(a);
    return 0;
}

/* --- sgemm ------------------------------------------------------------------------------ */

static int cmd_sgemm(int argc, char **argv)
{
    int t = (int)arg_long(argc, argv, "--threads", 1),
        runs = (int)arg_long(argc, argv, "--runs", 5);
    int m = (int)arg_long(argc, argv, "--m", 8192), n = (int)arg_long(argc, argv, "--n", 1024),
        k = (int)arg_long(argc, argv, "--k", 384);
    openblas_set_num_threads(t);
    float *a = malloc((size_t)m * k * sizeof *a), *b = malloc((size_t)n * k * sizeof *b),
          *c = malloc((size_t)m * n * sizeof *c);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return fprintf(stderr, "apbench sgemm: out of memory\n"), 1;
    }
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)n * k; i++)
        b[i] = (float)(i % 5) * 0.1f;
    double *g = malloc((size_t)runs * sizeof *g);
    for (int r = -1; r < runs; r++) {
        double s = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        double dt = now_s() - s;
        if (r >= 0) g[r] = 2.0 * m * n * k / dt / 1e9;
    }
    printf("{\"threads\":%d,\"m\":%d,\"n\":%d,\"k\":%d,\"gflops_median\":%.1f}\n", t, m, n, k,
           pct(g, (size_t)runs, 50));
    free(g);
    free(a);
    free(b);
    free(c);
    return 0;
}

/* --- fusefloor: the cheapest file a libfuse3 file system can serve ---------------------- */

static const char FLOOR_BODY[] = "{\"floor\":true,\"results\":[]}\n";
static double g_busy_us;
static uint8_t *g_busy_buf;
static size_t g_busy_len, g_busy_at;

static int ff_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    (void)fi;
    memset(st, 0, sizeof *st);
    if (!strcmp(path, "/")) {
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
        return 0;
    }
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = (off_t)(sizeof FLOOR_BODY - 1);
    /* Lookups come through getattr in the high-level API: spin like a search would. */
    if (g_busy_us > 0 && !fi) {
        double until = now_s() + g_busy_us * 1e-6;
        volatile uint8_t sink = 0;
        while (now_s() < until)
            if (g_busy_buf)
                for (int i = 0; i < 64; i++, g_busy_at = (g_busy_at + 64) % g_busy_len)
                    sink ^= g_busy_buf[g_busy_at];
        (void)sink;
    }
    return 0;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    return (fi->flags & O_ACCMODE) == O_RDONLY ? 0 : -EROFS;
}

static int ff_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    (void)fi;
    size_t len = sizeof FLOOR_BODY - 1;
    if ((size_t)off >= len) return 0;
    size_t n = len - (size_t)off < size ? len - (size_t)off : size;
    memcpy(buf, FLOOR_BODY + off, n);
    return (int)n;
}

static void *ff_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->entry_timeout = 1.0;
    cfg->attr_timeout = 1.0;
    return NULL;
}

static const struct fuse_operations ff_ops = {
    .init = ff_init, .getattr = ff_getattr, .open = ff_open, .read = ff_read};

static int cmd_fusefloor(int argc, char **argv)
{
    if (argc < 2) return fprintf(stderr, "usage: apbench fusefloor MOUNTPOINT [--busy-us N]\n"), 2;
    g_busy_us = (double)arg_long(argc, argv, "--busy-us", 0);
    g_busy_len = (size_t)arg_long(argc, argv, "--busy-mb", 0) << 20;
    if (g_busy_len && (g_busy_buf = malloc(g_busy_len))) memset(g_busy_buf, 1, g_busy_len);
    /* Multi-threaded, foreground, read-only: fuse_main parses the same options as ours. */
    char fg[] = "-f", o[] = "-o", opts[] = "ro,auto_unmount";
    char *fargv[] = {argv[0], argv[1], fg, o, opts, NULL};
    return fuse_main(5, fargv, &ff_ops, NULL);
}

/* --- clients ---------------------------------------------------------------------------- */

/* open + read to EOF + close of path; returns microseconds, or -1 on error. */
static double timed_cat(const char *path, char *buf, size_t cap, size_t *got)
{
    double t = now_s();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n == cap) break;
    }
    close(fd);
    if (got) *got = n;
    return (now_s() - t) * 1e6;
}

static void print_lat(const char *what, double *us, size_t n, size_t errors, double wall)
{
    double mean = 0;
    for (size_t i = 0; i < n; i++)
        mean += us[i];
    mean = n ? mean / (double)n : 0;
    double p50 = n ? pct(us, n, 50) : 0, p99 = n ? pct(us, n, 99) : 0;
    printf("{\"what\":\"%s\",\"calls\":%zu,\"errors\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,"
           "\"mean_us\":%.1f,\"qps\":%.1f}\n",
           what, n, errors, p50, p99, mean, wall > 0 ? (double)n / wall : 0);
}

static int cmd_readnames(int argc, char **argv)
{
    if (argc < 2) return fprintf(stderr, "usage: apbench readnames DIR --n N [--prefix P]\n"), 2;
    long n = arg_long(argc, argv, "--n", 2000);
    const char *prefix = arg_str(argc, argv, "--prefix", "f");
    double *us = malloc((size_t)n * sizeof *us);
    char path[4096], buf[65536];
    size_t ok = 0, errors = 0;
    unsigned tag = (unsigned)getpid();
    double w = now_s();
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s%u-%ld", argv[1], prefix, tag, i);
        double t = timed_cat(path, buf, sizeof buf, NULL);
        if (t < 0)
            errors++;
        else
            us[ok++] = t;
    }
    print_lat("readnames", us, ok, errors, now_s() - w);
    free(us);
    return errors ? 1 : 0;
}

static int cmd_mountq(int argc, char **argv)
{
    if (argc < 2) return fprintf(stderr, "usage: apbench mountq MOUNT --queries Q.fvecs ...\n"), 2;
    const char *qf = arg_str(argc, argv, "--queries", NULL);
    if (!qf) return fprintf(stderr, "apbench mountq: --queries is required\n"), 2;
    long probe = arg_long(argc, argv, "--probe", 8), k = arg_long(argc, argv, "-k", 10);
    long from = arg_long(argc, argv, "--from", 0), n = arg_long(argc, argv, "--n", -1);
    ap_vecs *v;
    ap_err err = {0};
    if (ap_vecs_open(qf, AP_VECS_F32, &v, &err))
        return fprintf(stderr, "apbench: %s\n", err.msg), 1;
    size_t nq = ap_vecs_count(v);
    if (n < 0 || (size_t)(from + n) > nq) n = (long)nq - from;
    if (n <= 0) return fprintf(stderr, "apbench mountq: no queries in range\n"), 2;
    uint32_t dim = ap_vecs_dim(v);
    char *enc = malloc(ap_query_vector_len(dim) + 1),
         *path = malloc(ap_query_vector_len(dim) + 4096);
    double *us = malloc((size_t)n * sizeof *us);
    static char buf[1 << 20];
    size_t ok = 0, errors = 0;
    double w = now_s();
    for (long i = 0; i < n; i++) {
        ap_query_vector_encode(ap_vecs_f32(v, (size_t)(from + i)), dim, enc);
        snprintf(path, ap_query_vector_len(dim) + 4096, "%s/vquery/k=%ld&probe=%ld/%s", argv[1], k,
                 probe, enc);
        size_t got = 0;
        double t = timed_cat(path, buf, sizeof buf, &got);
        if (t < 0 || got == 0 || buf[0] != '{')
            errors++;
        else
            us[ok++] = t;
    }
    print_lat("mountq", us, ok, errors, now_s() - w);
    free(enc);
    free(path);
    free(us);
    ap_vecs_close(v);
    return errors ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs("usage: apbench membw|filebw|sgemm|fusefloor|readnames|mountq ... (see the source "
              "header)\n",
              argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *c = argv[1];
    if (!strcmp(c, "membw")) return cmd_membw(argc - 1, argv + 1);
    if (!strcmp(c, "filebw")) return cmd_filebw(argc - 1, argv + 1);
    if (!strcmp(c, "sgemm")) return cmd_sgemm(argc - 1, argv + 1);
    if (!strcmp(c, "fusefloor")) return cmd_fusefloor(argc - 1, argv + 1);
    if (!strcmp(c, "readnames")) return cmd_readnames(argc - 1, argv + 1);
    if (!strcmp(c, "mountq")) return cmd_mountq(argc - 1, argv + 1);
    fprintf(stderr, "apbench: unknown command '%s'\n", c);
    return 2;
}
