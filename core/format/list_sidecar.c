/* Opening a per-list sidecar (pack.sq8, pack.bits): see list_sidecar.h. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "endian.h"
#include "fsops.h"
#include "list_sidecar.h"
#include "mapping.h"

/* The header fields every kind shares, in the order a reader reports them. */
static ap_status check_header(const ap_list_sidecar *sc, const ap_annp *a,
                              const ap_list_sidecar_kind *k, ap_err *err)
{
    const char *p = sc->path;
    const ap_annp_header *h = ap_annp_get_header(a);
    if (sc->size < k->header_size)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %zu bytes is shorter than the %u-byte header", p,
                          sc->size, k->header_size);
    const uint8_t *m = sc->map;
    if (ap_le32(m) != k->magic)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: bad magic 0x%08x (not %s)", p, ap_le32(m),
                          k->what);
    if (ap_le32(m + 4) != k->version)
        return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s: version %u not supported (need %u)", p,
                          ap_le32(m + 4), k->version);
    if (ap_le32(m + 8) != k->header_size)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: header_size %u (need %u)", p, ap_le32(m + 8),
                          k->header_size);
    if (sc->dim != h->dim || sc->n_lists != h->n_lists || sc->n_vectors != h->n_vectors)
        return ap_err_set(err, AP_ERR_VERIFY, "%s: dim %u, %u lists, %u vectors; %s has %u, %u, %u",
                          p, sc->dim, sc->n_lists, sc->n_vectors, ap_annp_path(a), h->dim,
                          h->n_lists, h->n_vectors);
    return AP_OK;
}

/* Each list's count must be the ANNP list's; they give each list's first vector. */
static ap_status read_counts(ap_list_sidecar *sc, const ap_annp *a, uint64_t counts, ap_err *err)
{
    sc->first = malloc((sc->n_lists + 1ull) * sizeof *sc->first);
    if (!sc->first) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    uint64_t at = 0;
    for (uint32_t l = 0; l < sc->n_lists; l++) {
        ap_annp_list al;
        ap_annp_list_get(a, l, &al);
        uint32_t c = ap_le32(sc->map + counts + 4ull * l);
        if (c != al.count)
            return ap_err_set(err, AP_ERR_VERIFY, "%s: list %u has %u codes; %s's list has %u",
                              sc->path, l, c, ap_annp_path(a), al.count);
        sc->first[l] = at;
        at += c;
    }
    sc->first[sc->n_lists] = at;
    return AP_OK;
}

ap_status ap_list_sidecar_open_fd(int fd, uint64_t size, const char *name, const ap_annp *a,
                                  const ap_list_sidecar_kind *k, ap_list_sidecar **out, ap_err *err)
{
    *out = NULL;
    ap_list_sidecar *sc = calloc(1, k->reader_size);
    if (!sc || !(sc->path = strdup(name))) {
        free(sc);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    ap_status st = AP_OK;
    sc->size = (size_t)size;
    if (size >= k->header_size) {
        const void *m;
        if ((st = ap_map_file(fd, sc->size, name, &m, err))) goto fail;
        sc->map = m;
        sc->dim = ap_le32(sc->map + 12);
        sc->n_lists = ap_le32(sc->map + 16);
        sc->n_vectors = ap_le32(sc->map + 20);
    }
    /* A short file is not mapped: check_header reports it before reading any byte. */
    uint64_t counts = 0;
    if ((st = check_header(sc, a, k, err)) || (st = k->check(sc, &counts, err)) ||
        (st = read_counts(sc, a, counts, err)))
        goto fail;
    *out = sc;
    return AP_OK;
fail:
    ap_list_sidecar_close(sc, k);
    return st;
}

ap_status ap_list_sidecar_open(const char *path, const ap_annp *a, const ap_list_sidecar_kind *k,
                               ap_list_sidecar **out, ap_err *err)
{
    *out = NULL;
    int fd = -1;
    uint64_t size = 0;
    ap_status st = ap_open_regular(path, &fd, &size, err);
    if (st) return st;
    st = ap_list_sidecar_open_fd(fd, size, path, a, k, out, err);
    close(fd);
    return st;
}

void ap_list_sidecar_close(ap_list_sidecar *sc, const ap_list_sidecar_kind *k)
{
    if (!sc) return;
    if (k->release) k->release(sc);
    if (sc->map) ap_unmap_file(sc->map, sc->size);
    free(sc->first);
    free(sc->path);
    free(sc);
}
