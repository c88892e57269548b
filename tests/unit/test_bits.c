/* The 1-bit code sidecar (pack.bits): the rotation (orthogonal, seeded, reproducible), the
 * encoder's documented bits and scalars, the estimator (unbiased, inside its bound), every
 * bits kernel the CPU has (by name through ap_bits_kernel_for) giving the reference
 * integers, every refusal of ap_bits_open, the deep code check naming the list, and bits
 * searches through a built pack (exact f16 scores; equal to the f16 scan when nothing can
 * be ruled out). */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "annpack/bits.h"
#include "annpack/build.h"
#include "annpack/pack.h"
#include "annpack/search.h"
#include "bits_layout.h"
#include "check.h"
#include "fp16.h"
#include "fsops.h"
#include "ivf.h"
#include "kernels.h"
#include "kmeans.h"
#include "rabitq.h"

static uint64_t g_rng = 11;

static double gauss(void)
{
    double u = ((ap_splitmix64(&g_rng) >> 11) + 0.5) * 0x1p-53,
           v = ((ap_splitmix64(&g_rng) >> 11) + 0.5) * 0x1p-53;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

/* --- rotation and estimator ------------------------------------------------------------- */

static void rotation(void)
{
    const uint32_t dpads[] = {64, 128, 192, 384, 448, 1024};
    for (size_t k = 0; k < sizeof dpads / sizeof dpads[0]; k++) {
        uint32_t dp = dpads[k];
        ap_rbq_rot r, r2, r3;
        CHECK(ap_rbq_rot_init(&r, 5, dp) == 0 && ap_rbq_rot_init(&r2, 5, dp) == 0 &&
              ap_rbq_rot_init(&r3, 6, dp) == 0);
        uint32_t b = 1;
        while (b * 2 <= dp)
            b *= 2;
        CHECK(r.block == b && r.scale == (float)(1.0 / sqrt((double)b)));
        float *x = malloc(dp * sizeof *x), *y = malloc(dp * sizeof *y), *z = malloc(dp * sizeof *z);
        double nx = 0, dot = 0;
        for (uint32_t i = 0; i < dp; i++) {
            x[i] = (float)gauss();
            y[i] = (float)gauss();
        }
        for (uint32_t i = 0; i < dp; i++) {
            nx += (double)x[i] * x[i];
            dot += (double)x[i] * y[i];
        }
        memcpy(z, x, dp * sizeof *z);
        ap_rbq_rotate(&r, x);
        ap_rbq_rotate(&r, y);
        double nr = 0, dr = 0;
        for (uint32_t i = 0; i < dp; i++) {
            nr += (double)x[i] * x[i];
            dr += (double)x[i] * y[i];
        }
        /* Orthogonal: norms and inner products kept (to float rounding). */
        CHECK(fabs(nr - nx) < 1e-4 * nx && fabs(dr - dot) < 1e-3 * sqrt(nx * nx));
        /* The same seed: the same bits; another seed: another rotation. */
        float *w = malloc(dp * sizeof *w);
        memcpy(w, z, dp * sizeof *w);
        ap_rbq_rotate(&r2, w);
        CHECK(!memcmp(w, x, dp * sizeof *w));
        memcpy(w, z, dp * sizeof *w);
        ap_rbq_rotate(&r3, w);
        CHECK(memcmp(w, x, dp * sizeof *w) != 0);
        free(x);
        free(y);
        free(z);
        free(w);
        ap_rbq_rot_free(&r);
        ap_rbq_rot_free(&r2);
        ap_rbq_rot_free(&r3);
    }
}

/* The integers of the kernels, by definition. */
static void ref_bits(const uint64_t *planes, const uint8_t *codes, uint32_t n, uint32_t words,
                     uint32_t *s, uint32_t *pop)
{
    for (uint32_t j = 0; j < n; j++) {
        uint32_t a = 0, p = 0;
        for (uint32_t i = 0; i < 64 * words; i++) {
            int bit = (codes[(size_t)j * words * 8 + i / 8] >> (i % 8)) & 1;
            p += (uint32_t)bit;
            for (uint32_t k = 0; k < 4; k++)
                a += (uint32_t)bit * ((planes[k * words + i / 64] >> (i % 64)) & 1) << k;
        }
        s[j] = a;
        pop[j] = p;
    }
}

static void estimator(void)
{
    /* Encoding: the bits are the signs of the rotated residual; F and G as documented; and
     * the estimate of q . x from the kernel's integers is within a few bounds of the truth,
     * with a mean error near zero (unbiased). */
    enum { DIM = 200, N = 400 };
    const uint32_t dp = ap_rbq_dpad(DIM), words = dp / 64;
    CHECK(dp == 256 && ap_rbq_dpad(64) == 64 && ap_rbq_dpad(1) == 64 && ap_rbq_dpad(65) == 128);
    ap_rbq_rot r;
    CHECK(ap_rbq_rot_init(&r, 99, dp) == 0);
    float c[DIM], q[DIM], x[DIM], work[256], rres[256], qw[256];
    uint8_t code[32];
    uint64_t planes[4 * 4];
    double qn = 0;
    for (int i = 0; i < DIM; i++) {
        c[i] = (float)(0.05 * gauss());
        q[i] = (float)gauss();
        qn += (double)q[i] * q[i];
    }
    for (int i = 0; i < DIM; i++)
        q[i] = (float)(q[i] / sqrt(qn));
    ap_rbq_query qq;
    ap_rbq_query_make(&r, DIM, q, qw, planes, &qq);
    CHECK(qq.delta > 0 && qq.usum <= 15 * dp);
    double sum_err = 0, sum_sd = 0;
    int inside = 0, bits_ok = 1, scal_ok = 1;
    for (int v = 0; v < N; v++) {
        double truth = 0;
        for (int i = 0; i < DIM; i++) {
            x[i] = c[i] + (float)(0.06 * gauss());
            truth += (double)q[i] * x[i];
        }
        float F, G;
        ap_rbq_encode(&r, DIM, x, c, work, code, &F, &G);
        /* the documented bits and F = |r|^2 / |Pr|_1 */
        for (int i = 0; i < DIM; i++)
            rres[i] = x[i] - c[i];
        memset(rres + DIM, 0, (dp - DIM) * sizeof *rres);
        double nn = 0;
        for (int i = 0; i < DIM; i++)
            nn += (double)rres[i] * rres[i];
        ap_rbq_rotate(&r, rres);
        double l1 = 0;
        for (uint32_t i = 0; i < dp; i++) {
            bits_ok &= ((code[i / 8] >> (i % 8)) & 1) == (rres[i] > 0);
            l1 += fabs((double)rres[i]);
        }
        scal_ok &= F == (float)(nn / l1) && G > 0 && G < F;
        uint32_t s, pop;
        ref_bits(planes, code, 1, words, &s, &pop);
        float qc = 0;
        for (int i = 0; i < DIM; i++)
            qc += q[i] * c[i];
        float est = ap_rbq_estimate(&qq, dp, qc, F, s, pop);
        float bound = ap_rbq_bound(&qq, 1.0f, F, G);
        sum_err += est - truth;
        sum_sd += bound;
        inside += fabs(est - truth) <= 4 * bound;
    }
    CHECK(bits_ok && scal_ok);
    CHECK(inside >= N - 2);
    /* the mean error is far below one standard error */
    CHECK(fabs(sum_err / N) < 0.25 * sum_sd / N);
    /* A vector equal to its centroid: no bits, F = G = 0, the estimate is q . c exactly. */
    float F, G;
    ap_rbq_encode(&r, DIM, c, c, work, code, &F, &G);
    int zero = 1;
    for (int i = 0; i < 32; i++)
        zero &= code[i] == 0;
    CHECK(zero && F == 0 && G == 0 && ap_rbq_estimate(&qq, dp, 0.5f, F, 0, 0) == 0.5f);
    ap_rbq_rot_free(&r);
}

static void kernels(void)
{
    typedef struct {
        const char *name;
        ap_bits_score_fn fn;
        int have;
    } kern;
    kern ks[] = {
        {"portable", ap_bits_kernel_for("portable"), 1},
#if defined(__x86_64__)
        {"popcnt", ap_bits_kernel_for("popcnt"), ap_cpu_has("popcnt")},
        {"avx2", ap_bits_kernel_for("avx2"), ap_cpu_has("avx2")},
        {"avx512vpopcntdq", ap_bits_kernel_for("avx512vpopcntdq"), ap_cpu_has("avx512vpopcntdq")},
#endif
    };
    const size_t nk = sizeof ks / sizeof ks[0];
    int tested = 0;
    for (size_t k = 0; k < nk; k++) {
        CHECK((ks[k].fn != NULL) == ks[k].have);
        tested += ks[k].fn != NULL;
    }
    CHECK(!ap_bits_kernel_for("avx512") && !ap_bits_kernel_for("") && !ap_bits_kernel_for("AVX2"));
    fprintf(stderr, "bits kernels on this CPU: %d of %zu (dispatch: %s)\n", tested, nk,
            ap_search_kernel_bits());
    enum { MAXW = 65, MAXN = 21 };
    uint8_t *cbuf = malloc((size_t)MAXN * MAXW * 8 + 16);
    uint64_t planes[4 * MAXW];
    uint32_t want_s[MAXN], want_p[MAXN], got_s[MAXN], got_p[MAXN];
    const uint32_t wordss[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17, 64, 65};
    for (size_t wi = 0; wi < sizeof wordss / sizeof wordss[0]; wi++) {
        const uint32_t words = wordss[wi];
        for (int pattern = 0; pattern < 3; pattern++) {
            uint8_t *codes = cbuf + 1 + pattern; /* unaligned on purpose */
            uint32_t n = 1 + (words + (uint32_t)pattern * 7) % MAXN;
            for (uint32_t i = 0; i < 4 * words; i++)
                planes[i] = pattern == 2 ? ~0ull : ap_splitmix64(&g_rng);
            for (size_t i = 0; i < (size_t)n * words * 8; i++)
                codes[i] = pattern == 2 ? 0xff : (uint8_t)ap_splitmix64(&g_rng);
            ref_bits(planes, codes, n, words, want_s, want_p);
            for (size_t k = 0; k < nk; k++) {
                if (!ks[k].fn) continue;
                memset(got_s, 0x5a, sizeof got_s);
                memset(got_p, 0x5a, sizeof got_p);
                ks[k].fn(planes, codes, n, words, got_s, got_p);
                int same = !memcmp(got_s, want_s, n * sizeof *got_s) &&
                           !memcmp(got_p, want_p, n * sizeof *got_p);
                if (!same)
                    fprintf(stderr, "bits kernel %s: words %u pattern %d differs\n", ks[k].name,
                            words, pattern);
                CHECK(same);
            }
        }
    }
    free(cbuf);
}

/* The int8 row check of the bits re-rank: every version this CPU runs gives the bits of
 * the portable one (a fixed summation order), over lengths with and without a tail of
 * fewer than 16, unaligned rows, signed zeros and mixed signs; and the value is the dot
 * product to within float rounding. */
static void codes_kernels(void)
{
    const struct {
        const char *name;
        int have;
    } ks[] = {
        {"portable", 1},
#if defined(__x86_64__)
        {"avx2", ap_cpu_has("avx2")},
        {"avx512f", ap_cpu_has("avx512f")},
#endif
    };
    ap_codes_dot_fn ref = ap_kernel_codes_for("portable");
    CHECK(ref != NULL && !ap_kernel_codes_for("avx512") && !ap_kernel_codes_for(""));
    enum { MAXD = 1100 };
    float *qs = malloc(MAXD * sizeof *qs);
    uint8_t *cbuf = malloc(MAXD + 8);
    const uint32_t dims[] = {1, 7, 15, 16, 17, 31, 32, 33, 100, 384, 385, 1024, 1099};
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
        for (int pattern = 0; pattern < 3; pattern++) {
            const uint32_t dim = dims[di];
            uint8_t *c = cbuf + 1 + pattern;
            double want = 0;
            for (uint32_t d = 0; d < dim; d++) {
                qs[d] = pattern == 2 ? -0.0f : (float)(gauss() * 1e-3);
                c[d] = pattern == 1 ? 255 : (uint8_t)ap_splitmix64(&g_rng);
                want += (double)qs[d] * c[d];
            }
            const float r = ref(qs, c, dim);
            CHECK(fabs(r - want) <= 1e-5 * (1 + fabs(want)));
            for (size_t k = 0; k < sizeof ks / sizeof ks[0]; k++) {
                ap_codes_dot_fn fn = ap_kernel_codes_for(ks[k].name);
                CHECK((fn != NULL) == ks[k].have);
                if (!fn) continue;
                float g = fn(qs, c, dim);
                int same = !memcmp(&g, &r, sizeof g);
                if (!same)
                    fprintf(stderr, "codes kernel %s: dim %u pattern %d: %a vs %a\n", ks[k].name,
                            dim, pattern, (double)g, (double)r);
                CHECK(same);
            }
        }
    free(qs);
    free(cbuf);
}

/* --- the file and the searches ----------------------------------------------------------- */

static char *build_pack(const char *dir, const char *name, float *vecs, uint32_t n, uint32_t dim)
{
    char *fv = ap_path_join(dir, "v.fvecs"), *out = ap_path_join(dir, name);
    FILE *f = fopen(fv, "wb");
    for (uint32_t i = 0; i < n; i++) {
        int32_t d = (int32_t)dim;
        fwrite(&d, 4, 1, f);
        fwrite(vecs + (size_t)i * dim, 4, dim, f);
    }
    fclose(f);
    ap_build_opts o = {
        .vectors = fv, .output_dir = out, .lists = 8, .seed = 3, .bits = true, .target_recall = -1};
    ap_err err = {0};
    CHECK_OK(ap_pack_build(&o, NULL, &err), &err);
    free(fv);
    return out;
}

static void sidecar_file(const char *dir)
{
    enum { DIM = 70, N = 600 };
    float *v = malloc((size_t)N * DIM * sizeof *v);
    for (uint32_t i = 0; i < N; i++) {
        double nn = 0;
        for (int d = 0; d < DIM; d++) {
            v[(size_t)i * DIM + d] = (float)((i % 5 == (uint32_t)d % 5 ? 1.0 : 0) + 0.4 * gauss());
            nn += (double)v[(size_t)i * DIM + d] * v[(size_t)i * DIM + d];
        }
        for (int d = 0; d < DIM; d++)
            v[(size_t)i * DIM + d] = (float)(v[(size_t)i * DIM + d] / sqrt(nn));
    }
    char *pdir = build_pack(dir, "p", v, N, DIM);
    char *apath = ap_path_join(pdir, "pack.annpack"), *bpath = ap_path_join(pdir, AP_BITS);
    ap_err err;
    ap_annp *a = NULL;
    CHECK_OK(ap_annp_open(apath, &a, &err), &err);
    const ap_annp_header *h = ap_annp_get_header(a);
    char *raw = NULL;
    size_t len = 0;
    CHECK_OK(ap_read_file(bpath, 1 << 24, &raw, &len, &err), &err);
    uint8_t *b = (uint8_t *)raw;
    /* The layout of bits.h, byte by byte. */
    const uint32_t dp = 128, rec = dp / 8 + 8;
    const uint64_t data = (64 + 4 * h->n_lists + 63) / 64 * 64;
    CHECK(!memcmp(b, "ANB1", 4) && get32(b) == AP_BITS_MAGIC && get32(b + 4) == 1 &&
          get32(b + 8) == 64 && get32(b + 12) == DIM && get32(b + 16) == h->n_lists &&
          get32(b + 20) == N && get32(b + 24) == dp);
    float eps0;
    uint32_t e = get32(b + 28);
    memcpy(&eps0, &e, 4);
    CHECK(eps0 == AP_BITS_EPS0 && get32(b + 32) == (uint32_t)AP_BITS_SEED &&
          get32(b + 36) == (uint32_t)(AP_BITS_SEED >> 32) && get32(b + 40) == 64 &&
          get32(b + 48) == data && get32(b + 56) == len &&
          len == data + (uint64_t)N * rec + 4ull * h->n_lists);
    int counts_ok = 1;
    for (uint32_t l = 0; l < h->n_lists; l++) {
        ap_annp_list al;
        ap_annp_list_get(a, l, &al);
        counts_ok &= get32(b + 64 + 4 * l) == al.count;
    }
    CHECK(counts_ok);
    ap_bits *bits = NULL;
    CHECK_OK(ap_bits_open(bpath, a, &bits, &err), &err);
    CHECK(ap_bits_dim(bits) == DIM && ap_bits_dpad(bits) == dp && ap_bits_eps0(bits) == eps0 &&
          ap_bits_seed(bits) == AP_BITS_SEED);
    CHECK_OK(ap_bits_check_codes(bits, a, &err), &err);
    /* List 0's records start at data; codes of its first vector equal the encoder's. */
    uint32_t n0;
    const uint8_t *l0 = ap_bits_list(bits, 0, &n0);
    size_t bsz;
    CHECK(l0 == ap_bits_bytes(bits, &bsz) + data && bsz == len);
    ap_bits_close(bits);

    /* Every refusal, each on a mutated copy. */
    char *bad = ap_path_join(dir, "bad.bits");
    struct {
        size_t off;
        uint32_t val;
        ap_status st;
        const char *needle;
    } cases[] = {
        {0, 0x12345678, AP_ERR_FORMAT, "bad magic"},
        {4, 2, AP_ERR_UNSUPPORTED, "version 2"},
        {8, 32, AP_ERR_FORMAT, "header_size 32"},
        {12, DIM + 1, AP_ERR_VERIFY, "dim 71"},
        {16, 99, AP_ERR_VERIFY, "99 lists"},
        {20, N - 1, AP_ERR_VERIFY, "599 vectors"},
        {24, 192, AP_ERR_FORMAT, "dpad 192"},
        {28, 0x7fc00000, AP_ERR_FORMAT, "eps0"},
        {28, 0, AP_ERR_FORMAT, "eps0"},
        {48, (uint32_t)data + 64, AP_ERR_FORMAT, "layout"},
        {56, (uint32_t)len + 1, AP_ERR_FORMAT, "layout"},
        {64, 0xffff, AP_ERR_VERIFY, "list 0 has 65535 codes"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t *m = malloc(len);
        memcpy(m, b, len);
        put32(m + cases[c].off, cases[c].val);
        write_bytes(bad, m, len);
        free(m);
        CHECK_ERR(ap_bits_open(bad, a, &bits, &err), cases[c].st, &err, cases[c].needle);
        CHECK(bits == NULL);
    }
    write_bytes(bad, b, len - 1);
    CHECK_ERR(ap_bits_open(bad, a, &bits, &err), AP_ERR_FORMAT, &err, "layout");
    write_bytes(bad, b, 10);
    CHECK_ERR(ap_bits_open(bad, a, &bits, &err), AP_ERR_FORMAT, &err, "shorter");
    write_bytes(bad, b, 0);
    CHECK_ERR(ap_bits_open(bad, a, &bits, &err), AP_ERR_FORMAT, &err, "0 bytes");
    /* A flipped code bit or a changed scalar opens (the layout is intact) but fails the deep
     * check, which names the list and vector. */
    uint32_t last = h->n_lists - 1, first_of_last = 0;
    for (uint32_t l = 0; l < last; l++) {
        ap_annp_list al;
        ap_annp_list_get(a, l, &al);
        first_of_last += al.count;
    }
    for (int what = 0; what < 3; what++) {
        uint8_t *m = malloc(len);
        memcpy(m, b, len);
        ap_annp_list al;
        ap_annp_list_get(a, last, &al);
        size_t at = data + (size_t)first_of_last * rec + 4ull * last;
        if (what == 0)
            m[at + 2 * (dp / 8)] ^= 0x10; /* vector 2's code */
        else if (what == 1)
            m[at + (size_t)al.count * (dp / 8) + 4 * 1] ^= 1; /* vector 1's F */
        else
            m[at + (size_t)al.count * rec] ^= 1; /* the list's alpha */
        write_bytes(bad, m, len);
        free(m);
        CHECK_OK(ap_bits_open(bad, a, &bits, &err), &err);
        char want[64];
        if (what < 2)
            snprintf(want, sizeof want, "list %u vector %d", last, what == 0 ? 2 : 1);
        else
            snprintf(want, sizeof want, "list %u: alpha differs", last);
        CHECK_ERR(ap_bits_check_codes(bits, a, &err), AP_ERR_VERIFY, &err, want);
        ap_bits_close(bits);
    }

    /* Searches through the pack: bits scores are exact f16 scores, and with probe = all
     * lists the result is the f16 scan's on these easy queries. */
    ap_pack *p = NULL;
    CHECK_OK(ap_pack_open(pdir, &p, &err), &err);
    CHECK(ap_pack_bits(p) != NULL && ap_pack_sq8(p) == NULL);
    int same = 1;
    for (int qi = 0; qi < 20; qi++) {
        const float *q = v + (size_t)(qi * 29) * DIM;
        ap_hit hb[10], hf[10];
        uint32_t nb = 0, nf = 0;
        ap_ivf ix = {.annp = ap_pack_annp(p), .bits = ap_pack_bits(p)};
        ap_search_params sp = {.k = 10, .probe = 8, .scan = AP_SCAN_BITS};
        ap_search_stats stt = {0};
        CHECK_OK(ap_ivf_search(&ix, q, &sp, hb, &nb, &stt, &err), &err);
        CHECK(!strcmp(stt.kernel, ap_search_kernel_bits()) && stt.reranked >= 10);
        CHECK_OK(ap_annp_search(a, q, 10, 8, hf, &nf, &err), &err); /* f16 */
        same &= nb == nf && !memcmp(hb, hf, nb * sizeof *hb);
    }
    CHECK(same);
    ap_pack_close(p);
    free(raw);
    free(bad);
    ap_annp_close(a);
    free(apath);
    free(bpath);
    free(pdir);
    free(v);
}

int main(void)
{
    char dir[] = "/tmp/annpack-bits-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    rotation();
    estimator();
    kernels();
    codes_kernels();
    sidecar_file(dir);
    ap_rmtree(dir);
    return check_done();
}
