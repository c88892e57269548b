/* The 1-bit code sidecar pack.bits: see include/annpack/bits.h and docs/FORMAT.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annpack/bits.h"
#include "bits_layout.h"
#include "endian.h"
#include "fp16.h"
#include "fsops.h"
#include "mapping.h"
#include "rabitq.h"

struct ap_bits {
    char *path;
    const uint8_t *map;
    size_t size;
    ap_bits_layout L;
    uint64_t *first; /* n_lists + 1: first vector of each list */
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

static ap_status validate(ap_bits *b, const ap_annp *a, ap_err *err)
{
    const char *p = b->path;
    const ap_annp_header *h = ap_annp_get_header(a);
    if (b->size < AP_BITS_HEADER_SIZE)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %zu bytes is shorter than the %u-byte header", p,
                          b->size, AP_BITS_HEADER_SIZE);
    const uint8_t *m = b->map;
    if (ap_le32(m) != AP_BITS_MAGIC)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: bad magic 0x%08x (not a 1-bit code sidecar)", p,
                          ap_le32(m));
    if (ap_le32(m + 4) != AP_BITS_VERSION)
        return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s: version %u not supported (need %u)", p,
                          ap_le32(m + 4), AP_BITS_VERSION);
    if (ap_le32(m + 8) != AP_BITS_HEADER_SIZE)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: header_size %u (need %u)", p, ap_le32(m + 8),
                          AP_BITS_HEADER_SIZE);
    ap_bits_layout got = ap_bits_header_decode(m);
    if (got.dim != h->dim || got.n_lists != h->n_lists || got.n_vectors != h->n_vectors)
        return ap_err_set(err, AP_ERR_VERIFY, "%s: dim %u, %u lists, %u vectors; %s has %u, %u, %u",
                          p, got.dim, got.n_lists, got.n_vectors, ap_annp_path(a), h->dim,
                          h->n_lists, h->n_vectors);
    if (got.dpad != ap_rbq_dpad(got.dim))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: dpad %u (need %u for dim %u)", p, got.dpad,
                          ap_rbq_dpad(got.dim), got.dim);
    if (!isfinite(got.eps0) || !(got.eps0 > 0) || got.eps0 > 64)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: eps0 %g is not in (0, 64]", p, (double)got.eps0);
    ap_bits_layout want =
        ap_bits_layout_for(got.dim, got.n_lists, got.n_vectors, got.seed, got.eps0);
    if (got.counts != want.counts || got.data != want.data || got.size != want.size ||
        got.size != b->size)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: layout (counts %llu, data %llu, size %llu) does not match dim %u, "
                          "%u lists, %u vectors and the file's %zu bytes",
                          p, (unsigned long long)got.counts, (unsigned long long)got.data,
                          (unsigned long long)got.size, got.dim, got.n_lists, got.n_vectors,
                          b->size);
    b->L = got;
    b->first = malloc((got.n_lists + 1ull) * sizeof *b->first);
    if (!b->first || ap_rbq_rot_init(&b->rot, got.seed, got.dpad))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    uint64_t at = 0;
    for (uint32_t l = 0; l < got.n_lists; l++) {
        ap_annp_list al;
        ap_annp_list_get(a, l, &al);
        uint32_t c = ap_le32(m + got.counts + 4ull * l);
        if (c != al.count)
            return ap_err_set(err, AP_ERR_VERIFY, "%s: list %u has %u codes; %s's list has %u", p,
                              l, c, ap_annp_path(a), al.count);
        b->first[l] = at;
        at += c;
    }
    b->first[got.n_lists] = at;
    return AP_OK;
}

ap_status ap_bits_open_fd(int fd, uint64_t size, const char *name, const ap_annp *a, ap_bits **out,
                          ap_err *err)
{
    *out = NULL;
    ap_bits *b = calloc(1, sizeof *b);
    if (!b || !(b->path = strdup(name))) {
        free(b);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    ap_status st = AP_OK;
    b->size = (size_t)size;
    if (size >= AP_BITS_HEADER_SIZE) {
        const void *m;
        if ((st = ap_map_file(fd, b->size, name, &m, err))) goto fail;
        b->map = m;
    } else {
        static const uint8_t none[AP_BITS_HEADER_SIZE];
        b->map = none; /* validate() reports the short file */
    }
    if ((st = validate(b, a, err))) goto fail;
    *out = b;
    return AP_OK;
fail:
    ap_bits_close(b);
    return st;
}

ap_status ap_bits_open(const char *path, const ap_annp *a, ap_bits **out, ap_err *err)
{
    *out = NULL;
    int fd = -1;
    uint64_t size = 0;
    ap_status st = ap_open_regular(path, &fd, &size, err);
    if (st) return st;
    st = ap_bits_open_fd(fd, size, path, a, out, err);
    close(fd);
    return st;
}

void ap_bits_close(ap_bits *b)
{
    if (!b) return;
    if (b->map && b->size >= AP_BITS_HEADER_SIZE) ap_unmap_file(b->map, b->size);
    free(b->first);
    ap_rbq_rot_free(&b->rot);
    free(b->path);
    free(b);
}

const uint8_t *ap_bits_bytes(const ap_bits *b, size_t *size)
{
    *size = b->size;
    return b->map;
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
    *count = (uint32_t)(b->first[i + 1] - b->first[i]);
    return b->map + b->L.data + b->first[i] * b->L.record + 4ull * i;
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
                            b->path, l, ap_annp_path(a));
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
                                b->path, l, j, ap_annp_path(a));
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
