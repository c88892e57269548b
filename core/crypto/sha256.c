/* SHA-256: see include/annpack/sign.h (ap_sha256_*). The only place in libannpack that
 * calls libsodium's SHA-256: every other hash in core streams through ap_sha256_new,
 * ap_sha256_update and ap_sha256_final, or calls ap_sha256_hex / ap_sha256_file. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <sodium.h>

#include "annpack/sign.h"
#include "fsops.h"
#include "mapping.h"

struct ap_sha256 {
    crypto_hash_sha256_state s;
};

static void sha256_begin(ap_sha256 *h)
{
    crypto_hash_sha256_init(&h->s);
}

/* Writes the digest of h as lowercase hex (h is spent). */
static void sha256_end(ap_sha256 *h, char out[AP_SHA256_HEX])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&h->s, d);
    sodium_bin2hex(out, AP_SHA256_HEX, d, sizeof d);
}

ap_sha256 *ap_sha256_new(void)
{
    if (ap_crypto_init(NULL)) return NULL;
    ap_sha256 *h = malloc(sizeof *h);
    if (h) sha256_begin(h);
    return h;
}

void ap_sha256_update(ap_sha256 *h, const void *data, size_t len)
{
    crypto_hash_sha256_update(&h->s, data, len);
}

void ap_sha256_final(ap_sha256 *h, char out[AP_SHA256_HEX])
{
    sha256_end(h, out);
    free(h);
}

void ap_sha256_free(ap_sha256 *h)
{
    free(h);
}

void ap_sha256_hex(const void *data, size_t len, char out[AP_SHA256_HEX])
{
    ap_sha256 h;
    ap_crypto_init(NULL);
    sha256_begin(&h);
    ap_sha256_update(&h, data, len);
    sha256_end(&h, out);
}

ap_status ap_sha256_file(const char *path, char out[AP_SHA256_HEX], uint64_t *size, ap_err *err)
{
    ap_status st = ap_crypto_init(err);
    if (st) return st;
    int fd;
    uint64_t fsize;
    if ((st = ap_open_regular(path, &fd, &fsize, err))) return st;
    if (ap_is_scanned_file(path)) ap_cache_warm(fd, fsize);
    size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    ap_sha256 h;
    sha256_begin(&h);
    uint64_t total = 0;
    for (;;) {
        ssize_t r = read(fd, buf, cap);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = ap_err_errno(err, AP_ERR_IO, errno, "%s: read", path);
            break;
        }
        if (r == 0) break;
        ap_sha256_update(&h, buf, (size_t)r);
        total += (uint64_t)r;
    }
    free(buf);
    close(fd);
    if (st) return st;
    sha256_end(&h, out);
    if (size) *size = total;
    return AP_OK;
}
