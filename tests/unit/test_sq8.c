/* The int8 sidecar (pack.sq8): the documented layout, params and codes; every refusal of
 * ap_sq8_open; the deep code check; query weights; the int8 kernels (every version the
 * CPU has, by name through ap_kernel_sq8_for, gives the exact integers); sq8 searches through a
 * built pack (exact f16 scores, equal to the f16 scan when rerank covers every scanned vector;
 * statistics; errors). */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "annpack/mount.h"
#include "annpack/pack.h"
#include "annpack/packset.h"
#include "annpack/search.h"
#include "annpack/sq8.h"
#include "check.h"
#include "fp16.h"
#include "fsops.h"
#include "kernels.h"
#include "kmeans.h"

static uint64_t g_rng = 7;

static float frand(void) /* [-0.5, 0.5) */
{
    return (float)((ap_splitmix64(&g_rng) >> 11) * 0x1p-53 - 0.5);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static float getf(const uint8_t *p)
{
    uint32_t u = get32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void putf(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put32(p, u);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

/* The documented code of x: clamp(round_half_even((x - vmin) / step), 0, 255). */
static uint8_t doc_code(float x, float vmin, float step)
{
    float c = nearbyintf((x - vmin) / step);
    return c < 0 ? 0 : c > 255 ? 255 : (uint8_t)c;
}

/* --- the file: layout, params, codes, validation ---------------------------------------- */

static void sidecar_file(const char *dir)
{
    ap_err err;
    enum { DIM = 100, NL = 5 };
    const uint32_t counts[NL] = {7, 0, 300, 1, 42}; /* an empty list too */
    uint32_t n = 0;
    for (int l = 0; l < NL; l++)
        n += counts[l];
    float *cent = malloc(NL * DIM * sizeof *cent), *v = malloc((size_t)n * DIM * sizeof *v);
    uint16_t *h = malloc((size_t)n * DIM * sizeof *h);
    uint64_t *ids = malloc(n * sizeof *ids);
    for (uint32_t i = 0; i < NL * DIM; i++)
        cent[i] = frand();
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t d = 0; d < DIM; d++)
            v[(size_t)i * DIM + d] = frand();
        v[(size_t)i * DIM + 3] = 0.25f;                  /* a constant dimension */
        v[(size_t)i * DIM + 9] = i % 2 ? 0.5f : -0.125f; /* two values only */
        ids[i] = 1000 + 3 * (uint64_t)i;
    }
    ap_f32_to_f16_n(h, v, (size_t)n * DIM);
    char *apath = ap_path_join(dir, "pack.annpack"), *spath = ap_path_join(dir, AP_SQ8);
    CHECK_OK(ap_annp_write(apath, DIM, NL, cent, counts, ids, h, &err), &err);
    CHECK_OK(ap_sq8_build(dir, DIM, NL, counts, h, n, &err), &err);
    /* Created exclusively: a second build into the same directory is refused. */
    CHECK(ap_sq8_build(dir, DIM, NL, counts, h, n, &err) != AP_OK);

    /* The layout of sq8.h, read byte by byte. */
    char *raw = NULL;
    size_t len = 0;
    CHECK_OK(ap_read_file(spath, 1 << 24, &raw, &len, &err), &err);
    const uint8_t *b = (const uint8_t *)raw;
    const uint32_t stride = 128;
    const uint64_t counts_off = (64 + 8 * DIM + 63) / 64 * 64,
                   codes_off = (counts_off + 4 * NL + 63) / 64 * 64;
    CHECK(ap_sq8_stride_for(DIM) == stride && ap_sq8_stride_for(64) == 64 &&
          ap_sq8_stride_for(1) == 64 && ap_sq8_stride_for(65) == 128);
    CHECK(len == codes_off + (uint64_t)n * stride);
    CHECK(get32(b) == 0x38514E41u && !memcmp(b, "ANQ8", 4) && get32(b + 4) == 1 &&
          get32(b + 8) == 64);
    CHECK(get32(b + 12) == DIM && get32(b + 16) == NL && get32(b + 20) == n &&
          get32(b + 24) == stride);
    CHECK(get32(b + 28) == 0 && get64(b + 32) == 64 && get64(b + 40) == counts_off);
    CHECK(get64(b + 48) == codes_off && get64(b + 56) == len);
    int ok_counts = 1;
    for (int l = 0; l < NL; l++)
        ok_counts &= get32(b + counts_off + 4 * l) == counts[l];
    CHECK(ok_counts);
    /* Params: the data's per-dimension min, and step = (max - min) / 255 (1 when constant). */
    int ok_params = 1, ok_codes = 1, ok_pad = 1;
    for (uint32_t d = 0; d < DIM; d++) {
        float mn = INFINITY, mx = -INFINITY;
        for (uint32_t i = 0; i < n; i++) {
            float x = ap_f16_to_f32(h[(size_t)i * DIM + d]);
            mn = x < mn ? x : mn;
            mx = x > mx ? x : mx;
        }
        float vmin = getf(b + 64 + 4 * d), step = getf(b + 64 + 4 * (DIM + d));
        float want_step = d == 3 ? 1.0f : (mx - mn) / 255.0f;
        if (vmin != mn || step != want_step) {
            ok_params = 0;
            fprintf(stderr, "dim %u: vmin %g step %g, want %g %g\n", d, vmin, step, mn, want_step);
        }
        for (uint32_t i = 0; i < n; i++) {
            uint8_t c = b[codes_off + (size_t)i * stride + d];
            ok_codes &= c == doc_code(ap_f16_to_f32(h[(size_t)i * DIM + d]), vmin, step);
        }
    }
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t d = DIM; d < stride; d++)
            ok_pad &= b[codes_off + (size_t)i * stride + d] == 0;
    CHECK(ok_params && ok_codes && ok_pad);
    /* The range is used: min codes 0 and max codes 255 on a varying dimension. */
    int saw0 = 0, saw255 = 0;
    for (uint32_t i = 0; i < n; i++) {
        saw0 |= b[codes_off + (size_t)i * stride + 9] == 0;
        saw255 |= b[codes_off + (size_t)i * stride + 9] == 255;
    }
    CHECK(saw0 && saw255);

    /* Open: accessors match the file. */
    ap_annp *a = NULL;
    ap_sq8 *s = NULL;
    CHECK_OK(ap_annp_open(apath, &a, &err), &err);
    CHECK_OK(ap_sq8_open(spath, a, &s, &err), &err);
    if (s) {
        CHECK(ap_sq8_dim(s) == DIM && ap_sq8_stride(s) == stride);
        CHECK(ap_sq8_vmin(s)[17] == getf(b + 64 + 4 * 17) && ap_sq8_step(s)[3] == 1.0f);
        CHECK(ap_sq8_list_codes(s, 0) != NULL);
        CHECK(!memcmp(ap_sq8_list_codes(s, 2), b + codes_off + 7 * stride, 300 * stride));
        CHECK(ap_sq8_list_codes(s, 4) - ap_sq8_list_codes(s, 0) == (ptrdiff_t)(308 * stride));
        CHECK_OK(ap_sq8_check_codes(s, a, &err), &err);
        ap_sq8_close(s);
    }

    /* Every refusal of ap_sq8_open, each on a mutated copy. */
    char *bad = ap_path_join(dir, "bad.sq8");
    struct {
        const char *what;
        size_t off;
        uint32_t value;
        ap_status st;
        const char *needle;
    } cases[] = {
        {"magic", 0, 0x38514E42u, AP_ERR_FORMAT, "bad magic"},
        {"version", 4, 2, AP_ERR_UNSUPPORTED, "version 2"},
        {"header_size", 8, 72, AP_ERR_FORMAT, "header_size 72"},
        {"dim", 12, DIM + 1, AP_ERR_VERIFY, "dim 101"},
        {"n_lists", 16, NL - 1, AP_ERR_VERIFY, "4 lists"},
        {"n_vectors", 20, 349, AP_ERR_VERIFY, "349 vectors"},
        {"stride", 24, 100, AP_ERR_FORMAT, "stride 100"},
        {"params_offset", 32, 128, AP_ERR_FORMAT, "layout"},
        {"counts_offset", 40, (uint32_t)counts_off + 64, AP_ERR_FORMAT, "layout"},
        {"codes_offset", 48, (uint32_t)codes_off - 64, AP_ERR_FORMAT, "layout"},
        {"size", 56, (uint32_t)len - 1, AP_ERR_FORMAT, "layout"},
        {"count", counts_off + 4 * 2, 299, AP_ERR_VERIFY, "list 2 has 299 codes"},
    };
    uint8_t *copy = malloc(len + 1);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memcpy(copy, b, len);
        put32(copy + cases[c].off, cases[c].value);
        unlink(bad);
        write_bytes(bad, copy, len);
        ap_status st = ap_sq8_open(bad, a, &s, &err);
        if (st != cases[c].st || !strstr(err.msg, cases[c].needle) || !strstr(err.msg, "bad.sq8"))
            fprintf(stderr, "%s: %s \"%s\"\n", cases[c].what, ap_status_name(st), err.msg);
        CHECK(st == cases[c].st && strstr(err.msg, cases[c].needle) && strstr(err.msg, "bad.sq8"));
        CHECK(s == NULL);
    }
    /* Counts that still sum to n_vectors but are moved between lists. */
    memcpy(copy, b, len);
    put32(copy + counts_off, 8);
    put32(copy + counts_off + 8, 299);
    unlink(bad);
    write_bytes(bad, copy, len);
    CHECK_ERR(ap_sq8_open(bad, a, &s, &err), AP_ERR_VERIFY, &err, "list 0 has 8 codes");
    /* Params: not finite, step not positive. */
    const struct {
        size_t off;
        float v;
        const char *needle;
    } pcases[] = {{64 + 4 * 5, NAN, "vmin[5] is not finite"},
                  {64 + 4 * (DIM + 7), INFINITY, "step[7] is not finite"},
                  {64 + 4 * (DIM + 2), 0.0f, "step[2] is not positive"},
                  {64 + 4 * (DIM + 99), -0.5f, "step[99] is not positive"}};
    for (size_t c = 0; c < sizeof pcases / sizeof pcases[0]; c++) {
        memcpy(copy, b, len);
        putf(copy + pcases[c].off, pcases[c].v);
        unlink(bad);
        write_bytes(bad, copy, len);
        CHECK_ERR(ap_sq8_open(bad, a, &s, &err), AP_ERR_FORMAT, &err, pcases[c].needle);
    }
    /* Wrong file sizes: one byte more, one byte less, shorter than the header, empty. */
    memcpy(copy, b, len);
    copy[len] = 0;
    unlink(bad);
    write_bytes(bad, copy, len + 1);
    CHECK_ERR(ap_sq8_open(bad, a, &s, &err), AP_ERR_FORMAT, &err, "layout");
    unlink(bad);
    write_bytes(bad, copy, len - 1);
    CHECK_ERR(ap_sq8_open(bad, a, &s, &err), AP_ERR_FORMAT, &err, "layout");
    unlink(bad);
    write_bytes(bad, copy, 63);
    CHECK_ERR(ap_sq8_open(bad, a, &s, &err), AP_ERR_FORMAT, &err,
              "shorter than the 64-byte header");
    unlink(bad);
    write_bytes(bad, copy, 0);
    CHECK_ERR(ap_sq8_open(bad, a, &s, &err), AP_ERR_FORMAT, &err, "0 bytes");
    char *missing = ap_path_join(dir, "missing.sq8");
    CHECK(ap_sq8_open(missing, a, &s, &err) != AP_OK && strstr(err.msg, "missing.sq8"));

    /* The deep check: a changed code, or a changed padding byte, names list and vector. */
    memcpy(copy, b, len);
    copy[codes_off + (7 + 5) * stride + 40] ^= 1; /* list 2, vector 5 */
    unlink(bad);
    write_bytes(bad, copy, len);
    CHECK_OK(ap_sq8_open(bad, a, &s, &err), &err);
    if (s) {
        CHECK_ERR(ap_sq8_check_codes(s, a, &err), AP_ERR_VERIFY, &err, "list 2 vector 5");
        ap_sq8_close(s);
    }
    memcpy(copy, b, len);
    copy[codes_off + (7 + 300) * stride + DIM] = 1; /* list 3, vector 0, past dim */
    unlink(bad);
    write_bytes(bad, copy, len);
    CHECK_OK(ap_sq8_open(bad, a, &s, &err), &err);
    if (s) {
        CHECK_ERR(ap_sq8_check_codes(s, a, &err), AP_ERR_VERIFY, &err, "list 3 vector 0");
        ap_sq8_close(s);
    }
    free(copy);
    free(missing);
    free(bad);
    free(raw);
    ap_annp_close(a);
    free(apath);
    free(spath);
    free(cent);
    free(v);
    free(h);
    free(ids);
}

/* --- encoding and weights ---------------------------------------------------------------- */

static void encoding_and_weights(void)
{
    /* Rounding half to even and clamping, with vmin 0 and step 1. */
    const float xs[8] = {0.5f, 1.5f, 2.5f, 254.5f, 255.5f, -3.0f, 300.0f, 3.25f};
    const uint8_t want[8] = {0, 2, 2, 254, 255, 0, 255, 3};
    float vmin[8], step[8];
    uint16_t h[8];
    uint8_t codes[64];
    for (int d = 0; d < 8; d++) {
        vmin[d] = 0;
        step[d] = 1;
        h[d] = ap_f32_to_f16(xs[d]);
        CHECK(ap_f16_to_f32(h[d]) == xs[d]); /* all exactly representable */
    }
    memset(codes, 0xaa, sizeof codes);
    ap_sq8_encode(vmin, step, 8, 64, h, codes);
    CHECK(!memcmp(codes, want, 8));
    int zero = 1;
    for (int d = 8; d < 64; d++)
        zero &= codes[d] == 0;
    CHECK(zero);
    memset(codes, 0xaa, sizeof codes);
    ap_sq8_encode_f32(vmin, step, 8, 64, xs, codes);
    CHECK(!memcmp(codes, want, 8) && codes[8] == 0 && codes[63] == 0);
    /* A shifted, scaled range. */
    float vm2[1] = {-1.0f}, st2[1] = {0.5f}, x2[1] = {-0.25f}; /* (x + 1) / 0.5 = 1.5 -> 2 */
    ap_sq8_encode_f32(vm2, st2, 1, 64, x2, codes);
    CHECK(codes[0] == 2);
    /* ap_sq8_encode_f32's vector path (AVX2 where the CPU has it) equals the scalar code of
     * ap_sq8_encode bit for bit: random values, NaN, infinities, -0, over a width with a
     * tail. */
    for (int r = 0; r < 200; r++) {
        enum { D = 37 };
        float vmn[D], stp[D], xv[D];
        uint16_t hv[D];
        uint8_t a[64], b[64];
        for (int d = 0; d < D; d++) {
            vmn[d] = frand();
            stp[d] = fabsf(frand()) / 64 + 1e-3f;
            float x = frand() * 8;
            if (r % 7 == 0 && d % 5 == 0) x = (d & 1) ? NAN : (d & 2) ? INFINITY : -INFINITY;
            if (r % 11 == 0 && d % 3 == 0) x = -0.0f;
            hv[d] = ap_f32_to_f16(x);
            xv[d] = ap_f16_to_f32(hv[d]);
        }
        memset(a, 0x55, sizeof a);
        memset(b, 0xaa, sizeof b);
        ap_sq8_encode(vmn, stp, D, 64, hv, a);
        ap_sq8_encode_f32(vmn, stp, D, 64, xv, b);
        CHECK(!memcmp(a, b, sizeof a));
    }

    /* Training over float32 rows: min and (max - min) / 255, step 1 when constant. */
    float rows[3 * 4] = {0, 1, 5, -2, 0, 3, 5, 2, 0, -1, 5, 0};
    float tmin[4], tstep[4];
    ap_sq8_train_f32(rows, 3, 4, tmin, tstep);
    CHECK(tmin[0] == 0 && tstep[0] == 1.0f);
    CHECK(tmin[1] == -1 && tstep[1] == 4.0f / 255.0f);
    CHECK(tmin[2] == 5 && tstep[2] == 1.0f);
    CHECK(tmin[3] == -2 && tstep[3] == 4.0f / 255.0f);

    /* Query weights: |w| <= 127, the largest |q * step| maps to +-127, the rest in
     * proportion (rounded), zero past dim; the zero query has zero weights. */
    enum { DIM = 70, STRIDE = 128 };
    float q[DIM], stp[DIM];
    int8_t w[STRIDE];
    for (int trial = 0; trial < 50; trial++) {
        for (int d = 0; d < DIM; d++) {
            q[d] = frand();
            stp[d] = 0.001f + (frand() + 0.5f) * 0.01f;
        }
        memset(w, 0x55, sizeof w);
        ap_sq8_weights(stp, DIM, STRIDE, q, w);
        float amax = 0;
        for (int d = 0; d < DIM; d++)
            amax = fmaxf(amax, fabsf(q[d] * stp[d]));
        int ok = 1, max_w = 0;
        for (int d = 0; d < DIM; d++) {
            double ideal = (double)q[d] * stp[d] / (amax / 127.0);
            ok &= fabs(w[d] - ideal) <= 0.5 + 1e-3 && w[d] != -128;
            ok &= (w[d] == 0) || ((w[d] > 0) == (q[d] > 0));
            max_w = abs(w[d]) > max_w ? abs(w[d]) : max_w;
        }
        for (int d = DIM; d < STRIDE; d++)
            ok &= w[d] == 0;
        CHECK(ok && max_w == 127);
    }
    memset(q, 0, sizeof q);
    memset(w, 0x55, sizeof w);
    ap_sq8_weights(stp, DIM, STRIDE, q, w);
    int allzero = 1;
    for (int d = 0; d < STRIDE; d++)
        allzero &= w[d] == 0;
    CHECK(allzero);
}

/* --- kernels ----------------------------------------------------------------------------- */

static void ref_scores(const int8_t *w, const uint8_t *codes, uint32_t n, uint32_t stride,
                       int32_t *out)
{
    for (uint32_t j = 0; j < n; j++) {
        int64_t s = 0;
        for (uint32_t i = 0; i < stride; i++)
            s += (int64_t)w[i] * codes[(size_t)j * stride + i];
        out[j] = (int32_t)s;
    }
}

static void kernels(void)
{
    typedef struct {
        const char *name;
        ap_sq8_block_fn fn;
        int have;
    } kern;
    /* Every version by name (ap_kernel_sq8_for): there exactly when the CPU runs it. */
    kern ks[] = {
        {"portable", ap_kernel_sq8_for("portable"), 1},
#if defined(__x86_64__)
        {"avx2", ap_kernel_sq8_for("avx2"), ap_cpu_has("avx2")},
        {"avx512bw", ap_kernel_sq8_for("avx512bw"), ap_cpu_has("avx512bw")},
        {"avx512vnni", ap_kernel_sq8_for("avx512vnni"),
         ap_cpu_has("avx512bw") && ap_cpu_has("avx512vnni")},
#endif
    };
    const size_t nk = sizeof ks / sizeof ks[0];
    int tested = 0;
    for (size_t k = 0; k < nk; k++) {
        CHECK((ks[k].fn != NULL) == ks[k].have);
        tested += ks[k].fn != NULL;
    }
    CHECK(!ap_kernel_sq8_for("avx512") && !ap_kernel_sq8_for("") && !ap_kernel_sq8_for("AVX2"));
    fprintf(stderr, "sq8 kernels on this CPU: %d of %zu (dispatch: %s)\n", tested, nk,
            ap_search_kernel_sq8());
    const uint32_t max_stride = 4096, max_n = 19;
    uint8_t *cbuf = malloc((size_t)max_n * max_stride + 64);
    int8_t *wbuf = malloc(max_stride + 64);
    int32_t want[19], got[19];
    const uint32_t strides[] = {64,  128, 192,  256,  320,  384,  448,
                                512, 640, 1024, 1536, 2048, 4032, 4096};
    for (size_t si = 0; si < sizeof strides / sizeof strides[0]; si++) {
        const uint32_t stride = strides[si];
        for (int pattern = 0; pattern < 4; pattern++) {
            /* Unaligned on purpose: codes and weights at odd offsets. */
            uint8_t *codes = cbuf + (pattern & 1) + 1;
            int8_t *w = wbuf + (pattern >> 1) + 1;
            uint32_t n = 1 + (stride / 64 + (uint32_t)pattern * 5) % max_n;
            for (uint32_t i = 0; i < stride; i++)
                w[i] = pattern == 3 ? (i % 2 ? -127 : 127)
                                    : (int8_t)((int)(ap_splitmix64(&g_rng) % 255) - 127);
            for (size_t i = 0; i < (size_t)n * stride; i++)
                codes[i] = pattern == 3 ? 255 : (uint8_t)(ap_splitmix64(&g_rng) & 0xff);
            if (pattern == 2) /* the extremes: every product at its largest */
                for (uint32_t i = 0; i < stride; i++)
                    w[i] = -127, codes[i] = 255;
            ref_scores(w, codes, n, stride, want);
            for (size_t k = 0; k < nk; k++) {
                if (!ks[k].fn) continue;
                memset(got, 0x5a, sizeof got);
                ks[k].fn(w, codes, n, stride, got);
                int same = !memcmp(got, want, n * sizeof *got);
                if (!same)
                    fprintf(stderr, "sq8 kernel %s differs at stride %u pattern %d\n", ks[k].name,
                            stride, pattern);
                CHECK(same);
            }
            /* The public entry point (dispatched) and the forced portable path. */
            memset(got, 0x5a, sizeof got);
            ap_sq8_score_block(w, codes, n, stride, got);
            CHECK(!memcmp(got, want, n * sizeof *got));
            ap_search_force_portable(1);
            memset(got, 0x5a, sizeof got);
            ap_sq8_score_block(w, codes, n, stride, got);
            ap_search_force_portable(0);
            CHECK(!memcmp(got, want, n * sizeof *got));
        }
    }
    /* The extreme case's value: -127 * 255 * 4096. */
    for (uint32_t i = 0; i < 4096; i++)
        wbuf[i] = -127, cbuf[i] = 255;
    ap_sq8_score_block(wbuf, cbuf, 1, 4096, got);
    CHECK(got[0] == -127 * 255 * 4096);
    /* Dispatch names, and force_portable switches both families. */
    const char *best = ap_search_kernel_sq8();
    CHECK(!strcmp(best, "avx512vnni") || !strcmp(best, "avx512bw") || !strcmp(best, "avx2") ||
          !strcmp(best, "portable"));
#if defined(__x86_64__)
    CHECK(!strcmp(best, ks[3].have   ? "avx512vnni"
                        : ks[2].have ? "avx512bw"
                        : ks[1].have ? "avx2"
                                     : "portable"));
#endif
    ap_search_force_portable(1);
    CHECK(!strcmp(ap_search_kernel_sq8(), "portable") && !strcmp(ap_search_kernel(), "portable"));
    ap_search_force_portable(0);
    CHECK(!strcmp(ap_search_kernel_sq8(), best));
    free(cbuf);
    free(wbuf);
}

/* --- searches through a built pack ------------------------------------------------------ */

static int cmp_hit(const void *a, const void *b)
{
    const ap_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Writes n clustered rows of dim as .fvecs. */
static float *write_fvecs(const char *path, uint32_t n, uint32_t dim, uint32_t clusters)
{
    float *c = malloc((size_t)clusters * dim * sizeof *c), *x = malloc((size_t)n * dim * sizeof *x);
    for (size_t i = 0; i < (size_t)clusters * dim; i++)
        c[i] = frand() * 4;
    FILE *f = fopen(path, "wb");
    for (uint32_t i = 0; i < n; i++) {
        int32_t d = (int32_t)dim;
        fwrite(&d, 4, 1, f);
        uint32_t cl = (uint32_t)(ap_splitmix64(&g_rng) % clusters);
        for (uint32_t j = 0; j < dim; j++)
            x[(size_t)i * dim + j] = c[(size_t)cl * dim + j] + frand();
        fwrite(x + (size_t)i * dim, 4, dim, f);
    }
    fclose(f);
    free(c);
    return x;
}

static void pack_search(const char *dir)
{
    ap_err err;
    enum { N = 2000, DIM = 48, NL = 20, NQ = 60 };
    char *fv = ap_path_join(dir, "x.fvecs"), *with = ap_path_join(dir, "with"),
         *without = ap_path_join(dir, "without");
    float *x = write_fvecs(fv, N, DIM, 25);
    ap_build_opts o = {.vectors = fv,
                       .output_dir = with,
                       .lists = NL,
                       .seed = 3,
                       .sq8 = true,
                       .meta_codec = AP_META_NONE,
                       .kmeans_iters = 5};
    ap_build_report rep;
    CHECK_OK(ap_pack_build(&o, &rep, &err), &err);
    CHECK(rep.rows == N && rep.lists_effective == NL && rep.dim == DIM);
    CHECK(rep.kmeans_passes >= 1 && rep.kmeans_passes <= 5);
    o.output_dir = without;
    o.sq8 = false;
    CHECK_OK(ap_pack_build(&o, NULL, &err), &err);
    char *report = NULL;
    ap_verify_opts vo = {.deep = true};
    CHECK_OK(ap_pack_verify(with, &vo, &report, &err), &err);
    free(report);

    ap_view *vs = NULL, *vf = NULL;
    CHECK_OK(ap_view_open(with, &vs, &err), &err);
    CHECK_OK(ap_view_open(without, &vf, &err), &err);
    if (!vs || !vf) {
        ap_view_close(vs);
        ap_view_close(vf);
        free(x);
        free(fv);
        free(with);
        free(without);
        return;
    }
    CHECK(ap_view_has_sq8(vs) && !ap_view_has_sq8(vf));
    ap_vpack *ps = NULL, *pf = NULL;
    CHECK_OK(ap_vpack_open(vs, &ps, &err), &err);
    CHECK_OK(ap_vpack_open(vf, &pf, &err), &err);
    /* The merged sidecar of a single pack is its file, byte for byte. */
    char *sp = ap_path_join(with, AP_SQ8), *raw = NULL;
    size_t rawlen = 0;
    CHECK_OK(ap_read_file(sp, 1 << 24, &raw, &rawlen, &err), &err);
    CHECK(ap_vpack_sq8_size(ps) == rawlen && ap_vpack_sq8_size(pf) == 0);
    uint8_t *merged = malloc(rawlen + 1);
    CHECK_OK(ap_vpack_sq8_read(ps, 0, merged, rawlen, &err), &err);
    CHECK(!memcmp(merged, raw, rawlen));
    /* ... and in odd pieces. */
    memset(merged, 0, rawlen);
    for (size_t off = 0; off < rawlen;) {
        size_t len = 1 + (ap_splitmix64(&g_rng) % 333);
        if (len > rawlen - off) len = rawlen - off;
        CHECK_OK(ap_vpack_sq8_read(ps, off, merged + off, len, &err), &err);
        off += len;
    }
    CHECK(!memcmp(merged, raw, rawlen));
    CHECK_ERR(ap_vpack_sq8_read(ps, rawlen - 4, merged, 5, &err), AP_ERR_ARG, &err, "beyond");
    CHECK_ERR(ap_vpack_sq8_read(pf, 0, merged, 1, &err), AP_ERR_NOTFOUND, &err, "no int8 sidecar");
    free(merged);
    free(raw);
    free(sp);
    ap_vpack_close(ps);
    ap_vpack_close(pf);

    /* The stored f16 vectors, for exact reference scores. */
    uint16_t *h = malloc((size_t)N * DIM * sizeof *h);
    for (uint32_t i = 0; i < N; i++) {
        ap_l2_normalize(x + (size_t)i * DIM, DIM);
        ap_f32_to_f16_n(h + (size_t)i * DIM, x + (size_t)i * DIM, DIM);
    }
    float q[DIM];
    ap_hit a[N], b[N], ref[N];
    uint32_t na, nb;
    int exact_scores = 1, equal_full = 1, equal_f16 = 1, recall_hits = 0;
    for (int t = 0; t < NQ; t++) {
        for (int d = 0; d < DIM; d++)
            q[d] = x[(size_t)(t * 31) * DIM + d] + frand() * 0.2f;
        ap_l2_normalize(q, DIM);
        for (uint32_t i = 0; i < N; i++)
            ref[i] = (ap_hit){.id = i,
                              .score = ap_dot_f16(q, (const uint8_t *)(h + (size_t)i * DIM), DIM)};
        qsort(ref, N, sizeof *ref, cmp_hit);
        /* sq8 with every scanned vector re-ranked == the f16 scan == brute force. */
        ap_search_params pf16 = {.k = 10, .probe = NL, .scan = AP_SCAN_F16};
        ap_search_params pq = {.k = 10, .probe = NL, .scan = AP_SCAN_SQ8, .rerank = N};
        CHECK_OK(ap_view_search_ex(vs, q, &pf16, a, &na, NULL, &err), &err);
        CHECK_OK(ap_view_search_ex(vs, q, &pq, b, &nb, NULL, &err), &err);
        equal_full &= na == 10 && nb == 10 && !memcmp(a, b, 10 * sizeof *a);
        for (int i = 0; i < 10; i++)
            equal_f16 &= a[i].id == ref[i].id && a[i].score == ref[i].score;
        /* Default rerank (80): reported scores are the exact f16 scores of those ids. */
        ap_search_params pd = {.k = 10, .probe = 4};
        CHECK_OK(ap_view_search_ex(vs, q, &pd, b, &nb, NULL, &err), &err);
        for (uint32_t i = 0; i < nb; i++) {
            float s = ap_dot_f16(q, (const uint8_t *)(h + (size_t)b[i].id * DIM), DIM);
            exact_scores &= b[i].score == s && b[i].layer == 0;
            if (i) exact_scores &= cmp_hit(&b[i - 1], &b[i]) < 0;
        }
        /* Recall of the int8 candidates against f16 at the same probe. */
        ap_search_params pf4 = {.k = 10, .probe = 4, .scan = AP_SCAN_F16};
        CHECK_OK(ap_view_search_ex(vf, q, &pf4, a, &na, NULL, &err), &err);
        for (uint32_t i = 0; i < nb; i++)
            for (uint32_t j = 0; j < na; j++)
                recall_hits += b[i].id == a[j].id;
        /* force_portable gives the same sq8 results (exact integers, same candidates). */
        ap_search_force_portable(1);
        CHECK_OK(ap_view_search_ex(vs, q, &pd, a, &na, NULL, &err), &err);
        ap_search_force_portable(0);
        CHECK(na == nb && !memcmp(a, b, nb * sizeof *a));
    }
    CHECK(equal_full && equal_f16 && exact_scores);
    fprintf(stderr, "sq8 recall@10 vs f16 at probe 4, rerank 80: %.3f\n",
            recall_hits / (NQ * 10.0));
    CHECK(recall_hits >= NQ * 10 * 9 / 10);

    /* Statistics: lists, vectors and bytes scanned, candidates re-ranked, kernel. */
    ap_search_stats st = {0};
    ap_search_params p = {.k = 10, .probe = NL, .scan = AP_SCAN_SQ8, .rerank = 100};
    CHECK_OK(ap_view_search_ex(vs, q, &p, a, &na, &st, &err), &err);
    CHECK(st.searches == 1 && st.lists == NL && st.vectors == N && st.bytes == (uint64_t)N * 64);
    CHECK(st.reranked == 100 && !strcmp(st.kernel, ap_search_kernel_sq8()));
    CHECK(st.ns_total >= st.ns_scan && st.ns_scan > 0);
    p.scan = AP_SCAN_F16;
    CHECK_OK(ap_view_search_ex(vs, q, &p, a, &na, &st, &err), &err); /* stats add up */
    CHECK(st.searches == 2 && st.lists == 2 * NL && st.vectors == 2 * N);
    CHECK(st.bytes == (uint64_t)N * 64 + (uint64_t)N * DIM * 2 && st.reranked == 100);
    CHECK(!strcmp(st.kernel, ap_search_kernel()));
    /* auto = sq8 with a sidecar, f16 without; rerank below k is raised to k. */
    ap_search_stats s1 = {0}, s2 = {0};
    ap_search_params pa = {.k = 10, .probe = NL, .scan = AP_SCAN_AUTO, .rerank = 3};
    CHECK_OK(ap_view_search_ex(vs, q, &pa, a, &na, &s1, &err), &err);
    CHECK(na == 10 && s1.reranked == 10 && s1.bytes == (uint64_t)N * 64);
    CHECK_OK(ap_view_search_ex(vf, q, &pa, a, &na, &s2, &err), &err);
    CHECK(na == 10 && s2.reranked == 0 && s2.bytes == (uint64_t)N * DIM * 2);
    /* Errors. */
    ap_search_params e1 = {.k = 10, .probe = 4, .scan = AP_SCAN_SQ8};
    CHECK_ERR(ap_view_search_ex(vf, q, &e1, a, &na, NULL, &err), AP_ERR_ARG, &err,
              "no int8 sidecar");
    CHECK(strstr(err.msg, "--sq8") != NULL);
    ap_search_params e2 = {.k = 10, .probe = 4, .scan = AP_SCAN_SQ8, .rerank = AP_MAX_RERANK + 1};
    CHECK_ERR(ap_view_search_ex(vs, q, &e2, a, &na, NULL, &err), AP_ERR_ARG, &err, "rerank");
    ap_search_params e3 = {.k = 10, .probe = 4, .scan = (ap_scan_mode)7};
    CHECK_ERR(ap_view_search_ex(vs, q, &e3, a, &na, NULL, &err), AP_ERR_ARG, &err, "scan mode");
    ap_search_params e4 = {.k = 0, .probe = 4};
    CHECK_ERR(ap_view_search_ex(vs, q, &e4, a, &na, NULL, &err), AP_ERR_ARG, &err, "k = 0");
    ap_search_params e5 = {.k = 5, .probe = 0};
    CHECK_ERR(ap_view_search_ex(vs, q, &e5, a, &na, NULL, &err), AP_ERR_ARG, &err, "probe");
    /* A text query on a vectors pack fails clearly. */
    CHECK_ERR(ap_view_embed(vs, "hello", 5, q, &err), AP_ERR_UNSUPPORTED, &err,
              "built from vectors");
    CHECK(!strcmp(ap_embedder_name(ap_view_embedder(vs)), "vectors") &&
          ap_embedder_dim(ap_view_embedder(vs)) == DIM);
    free(h);
    ap_view_close(vs);
    ap_view_close(vf);
    free(x);
    free(fv);
    free(with);
    free(without);
}

int main(void)
{
    char dir[] = "/tmp/annpack-sq8-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    sidecar_file(dir);
    encoding_and_weights();
    kernels();
    pack_search(dir);
    ap_rmtree(dir);
    return check_done();
}
