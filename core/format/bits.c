/* The 1-bit code sidecar pack.bits: see include/annpack/bits.h and docs/FORMAT.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/bits.h"
#include "bits_layout.h"
#include "endian.h"
#include "fp16.h"
#include "list_sidecar.h"
#include "rabitq.h"

struct ap_bits {
    ap_list_sidecar sc; /* first: list_sidecar.h */
    ap_bits_layout L;
    ap_rbq_rot rot;
};

ap_bits_layout ap_bits_layout_for(uint32_t dim, uint32_t n_lists, uint32_t n_vectors, uint64_t seed,
                                  float eps0)
{
    ap_bits_layout L = {.dim = dim,
                        .n_lists = n_lists,
                        .n_vectors = n_vectors,
                        .dpad = ap_rbq_dpad(dim),
                        .eps0 = eps0,
                        .seed = seed,
                        .counts = AP_BITS_HEADER_SIZE};
    L.record = L.dpad / 8 + 8;
    L.data = (L.counts + 4ull * n_lists + 63) & ~63ull;
    L.size = L.data + (uint64_t)n_vectors * L.record + 4ull * n_lists; /* + alpha per list */
    return L;
}

void ap_bits_header_encode(const ap_bits_layout *L, uint8_t out[AP_BITS_HEADER_SIZE])
{
    memset(out, 0, AP_BITS_HEADER_SIZE);
    uint32_t e;
    memcpy(&e, &L->eps0, 4);
    ap_put32(out + 0, AP_BITS_MAGIC);
    ap_put32(out + 4, AP_BITS_VERSION);
    ap_put32(out + 8, AP_BITS_HEADER_SIZE);
    ap_put32(out + 12, L->dim);
    ap_put32(out + 16, L->n_lists);
    ap_put32(out + 20, L->n_vectors);
    ap_put32(out + 24, L->dpad);
    ap_put32(out + 28, e);
    ap_put64(out + 32, L->seed);
    ap_put64(out + 40, L->counts);
    ap_put64(out + 48, L->data);
    ap_put64(out + 56, L->size);
}

ap_bits_layout ap_bits_header_decode(const uint8_t in[AP_BITS_HEADER_SIZE])
{
    uint32_t e = ap_le32(in + 28);
    ap_bits_layout L = {.dim = ap_le32(in + 12),
                        .n_lists = ap_le32(in + 16),
                        .n_vectors = ap_le32(in + 20),
                        .dpad = ap_le32(in + 24),
                        .seed = ap_le64(in + 32),
                        .counts = ap_le64(in + 40),
                        .data = ap_le64(in + 48),
                        .size = ap_le64(in + 56)};
    memcpy(&L.eps0, &e, 4);
    L.record = L.dpad / 8 + 8;
    return L;
}

/* The 1-bit code sidecar's own fields: dpad, eps0 and layout; the rotation of its seed. */
static ap_status check_bits(ap_list_sidecar *sc, uint64_t *counts, ap_err *err)
{
    ap_bits *b = (ap_bits *)sc;
    const char *p = sc->path;
    ap_bits_layout got = ap_bits_header_decode(sc->map);
    if (got.dpad != ap_rbq_dpad(got.dim))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: dpad %u (need %u for dim %u)", p, got.dpad,
                          ap_rbq_dpad(got.dim), got.dim);
    if (!isfinite(got.eps0) || !(got.eps0 > 0) || got.eps0 > 64)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: eps0 %g is not in (0, 64]", p, (double)got.eps0);
    ap_bits_layout want =
        ap_bits_layout_for(got.dim, got.n_lists, got.n_vectors, got.seed, got.eps0);
    if (got.counts != want.counts || got.data != want.data || got.size != want.size ||
        got.size != sc->size)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: layout (counts %llu, data %llu, size %llu) does not match dim %u, "
                          "%u lists, %u vectors and the file's %zu bytes",
                          p, (unsigned long long)got.counts, (unsigned long long)got.data,
                          (unsigned long long)got.size, got.dim, got.n_lists, got.n_vectors,
                          sc->size);
    b->L = got;
    if (ap_rbq_rot_init(&b->rot, got.seed, got.dpad))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    *counts = got.counts;
    return AP_OK;
}

static void release_bits(ap_list_sidecar *sc)
{
    ap_rbq_rot_free(&((ap_bits *)sc)->rot);
}

static const ap_list_sidecar_kind bits_kind = {.magic = AP_BITS_MAGIC,
                                               .version = AP_BITS_VERSION,
                                               .header_size = AP_BITS_HEADER_SIZE,
                                               .what = "a 1-bit code sidecar",
                                               .reader_size = sizeof(ap_bits),
                                               .check = check_bits,
                                               .release = release_bits};

ap_status ap_bits_open_fd(int fd, uint64_t size, const char *name, const ap_annp *a, ap_bits **out,
                          ap_err *err)
{
    ap_list_sidecar *sc = NULL;
    ap_status st = ap_list_sidecar_open_fd(fd, size, name, a, &bits_kind, &sc, err);
    *out = (ap_bits *)sc;
    return st;
}

ap_status ap_bits_open(const char *path, const ap_annp *a, ap_bits **out, ap_err *err)
{
    ap_list_sidecar *sc = NULL;
    ap_status st = ap_list_sidecar_open(path, a, &bits_kind, &sc, err);
    *out = (ap_bits *)sc;
    return st;
}

void ap_bits_close(ap_bits *b)
{
    ap_list_sidecar_close((ap_list_sidecar *)b, &bits_kind);
}

const uint8_t *ap_bits_bytes(const ap_bits *b, size_t *size)
{
    *size = b->sc.size;
    return b->sc.map;
}

uint32_t ap_bits_dim(const ap_bits *b)
{
    return b->L.dim;
}

uint32_t ap_bits_dpad(const ap_bits *b)
{
    return b->L.dpad;
}

float ap_bits_eps0(const ap_bits *b)
{
    return b->L.eps0;
}

uint64_t ap_bits_seed(const ap_bits *b)
{
    return b->L.seed;
}

const ap_rbq_rot *ap_bits_rot(const ap_bits *b)
{
    return &b->rot;
}

const uint8_t *ap_bits_list(const ap_bits *b, uint32_t i, uint32_t *count)
{
    *count = (uint32_t)(b->sc.first[i + 1] - b->sc.first[i]);
    return b->sc.map + b->L.data + b->sc.first[i] * b->L.record + 4ull * i;
}

ap_status ap_bits_check_codes(const ap_bits *b, const ap_annp *a, ap_err *err)
{
    const uint32_t dim = b->L.dim, dpad = b->L.dpad, cb = dpad / 8;
    float *x = malloc((size_t)(dim + dpad) * sizeof *x);
    uint8_t *code = malloc(cb);
    uint16_t *h = malloc((size_t)dim * sizeof *h);
    float *ref = malloc((size_t)dim * sizeof *ref);
    ap_status st = AP_OK;
    if (!x || !code || !h || !ref) {
        free(x);
        free(code);
        free(h);
        free(ref);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    const float *cent = ap_annp_centroids(a);
    for (uint32_t l = 0; l < b->L.n_lists && !st; l++) {
        ap_annp_list al;
        ap_annp_list_get(a, l, &al);
        uint32_t n;
        const uint8_t *d = ap_bits_list(b, l, &n);
        const float *c = cent + (size_t)l * dim;
        float alpha = ap_rbq_alpha(al.vecs, n, dim, c, h, x);
        uint32_t ab, sa = ap_le32(d + (size_t)n * (cb + 8));
        memcpy(&ab, &alpha, 4);
        if (ab != sa) {
            st = ap_err_set(err, AP_ERR_VERIFY,
                            "%s: list %u: alpha differs from the mean of %s's vectors on the "
                            "centroid",
                            b->sc.path, l, ap_annp_path(a));
            break;
        }
        ap_rbq_scale(c, alpha, dim, ref);
        for (uint32_t j = 0; j < n; j++) {
            memcpy(h, al.vecs + (size_t)j * 2 * dim, 2ull * dim);
            ap_f16_to_f32_n(x, h, dim);
            float F, G;
            ap_rbq_encode(&b->rot, dim, x, ref, x + dim, code, &F, &G);
            uint32_t fb, gb, sf = ap_le32(d + (size_t)n * cb + 4ull * j),
                             sg = ap_le32(d + (size_t)n * (cb + 4) + 4ull * j);
            memcpy(&fb, &F, 4);
            memcpy(&gb, &G, 4);
            if (memcmp(code, d + (size_t)j * cb, cb) != 0 || fb != sf || gb != sg) {
                st = ap_err_set(err, AP_ERR_VERIFY,
                                "%s: list %u vector %u: code differs from the encoding of %s's "
                                "vector",
                                b->sc.path, l, j, ap_annp_path(a));
                break;
            }
        }
    }
    free(x);
    free(code);
    free(h);
    free(ref);
    return st;
}
