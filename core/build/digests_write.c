/* pack.digests at the end of a build: see digests_write.h. */
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

/* One file: mapped, its ranges, their digests. */
typedef struct one_file {
    const void *map;
    uint64_t size;
    ap_digest_layout lay;
    uint8_t (*sha)[32];
} one_file;

/* Maps dir/name, lays out its ranges and hashes them and the whole file in one pass over
 * the bytes. *annp: the pack's ANNP file, opened here from pack.annpack (which sorts first)
 * for its own layout and pack.sq8's. */
static ap_status hash_file(const char *dir, const char *name, ap_annp **annp, one_file *f,
                           char hex[AP_SHA256_HEX], ap_err *err)
{
    char *p = ap_path_join(dir, name);
    if (!p) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    int fd;
    ap_status st = ap_open_regular(p, &fd, &f->size, err);
    if (!st) {
        if (f->size) st = ap_map_file(fd, (size_t)f->size, p, &f->map, err);
        close(fd);
    }
    const uint8_t *b = f->map;
    if (!st && strcmp(name, AP_ANNPACK) == 0 && !*annp)
        st = ap_annp_open_mem(b, (size_t)f->size, p, annp, err);
    if (!st) st = ap_digest_layout_of(name, b, f->size, *annp, &f->lay, err);
    ap_sha256 *whole = st ? NULL : ap_sha256_new();
    if (!st && (!whole || !(f->sha = malloc((f->lay.n ? f->lay.n : 1) * sizeof *f->sha))))
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (uint32_t k = 0; !st && k < f->lay.n; k++) {
        ap_sha256_raw(b + f->lay.off[k], (size_t)f->lay.len[k], f->sha[k]);
        ap_sha256_update(whole, b + f->lay.off[k], (size_t)f->lay.len[k]);
    }
    if (!st)
        ap_sha256_final(whole, hex);
    else
        ap_sha256_free(whole);
    free(p);
    return st;
}

static void free_file(one_file *f)
{
    if (f->map) ap_unmap_file(f->map, (size_t)f->size);
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
    if (!fs || !spec) {
        free(fs);
        free(spec);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    ap_status st = AP_OK;
    /* pack.annpack sorts first: its lists give pack.sq8's ranges. */
    for (size_t i = 0; !st && i < n; i++) {
        st = hash_file(dir, names[i], &annp, &fs[i], hex[i], err);
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
    ap_annp_close(annp); /* before the mapping it reads goes */
    for (size_t i = 0; fs && i < n; i++)
        free_file(&fs[i]);
    free(fs);
    free(spec);
    return st;
}
