/* SHA-256: see include/annpack/sign.h (ap_sha256_*) and digest.h (ap_sha256_raw). The only
 * place in libannpack that computes SHA-256: it goes through OpenSSL libcrypto's EVP
 * interface, which uses the CPU's SHA extensions (SHA-NI, ARMv8 SHA2) where present —
 * about five times libsodium's portable code on this project's machines. Every other hash
 * in core streams through ap_sha256_new, ap_sha256_update and ap_sha256_final, or calls
 * ap_sha256_hex, ap_sha256_raw or ap_sha256_file. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "annpack/sign.h"
#include "digest.h"
#include "fsops.h"
#include "mapping.h"

struct ap_sha256 {
    EVP_MD_CTX *ctx;
};

/* Every byte hashed (ap_sha256_bytes_total): relaxed, a counter for reports only. */
static _Atomic uint64_t hashed_total;

uint64_t ap_sha256_bytes_total(void)
{
    return atomic_load_explicit(&hashed_total, memory_order_relaxed);
}

static void to_hex(const unsigned char d[AP_SHA256_BYTES], char out[AP_SHA256_HEX])
{
    static const char hexd[] = "0123456789abcdef";
    for (size_t i = 0; i < AP_SHA256_BYTES; i++) {
        out[2 * i] = hexd[d[i] >> 4];
        out[2 * i + 1] = hexd[d[i] & 15];
    }
    out[2 * AP_SHA256_BYTES] = '\0';
}

ap_sha256 *ap_sha256_new(void)
{
    ap_sha256 *h = malloc(sizeof *h);
    if (!h) return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
    }
    return h;
}

void ap_sha256_update(ap_sha256 *h, const void *data, size_t len)
{
    /* EVP_DigestUpdate of an initialised SHA-256 context cannot fail. */
    (void)EVP_DigestUpdate(h->ctx, data, len);
    atomic_fetch_add_explicit(&hashed_total, len, memory_order_relaxed);
}

void ap_sha256_final_raw(ap_sha256 *h, uint8_t out[AP_SHA256_BYTES])
{
    unsigned int n = 0;
    (void)EVP_DigestFinal_ex(h->ctx, out, &n);
    ap_sha256_free(h);
}

void ap_sha256_final(ap_sha256 *h, char out[AP_SHA256_HEX])
{
    unsigned char d[AP_SHA256_BYTES];
    ap_sha256_final_raw(h, d);
    to_hex(d, out);
}

void ap_sha256_free(ap_sha256 *h)
{
    if (!h) return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void ap_sha256_raw(const void *data, size_t len, uint8_t out[AP_SHA256_BYTES])
{
    unsigned int n = 0;
    atomic_fetch_add_explicit(&hashed_total, len, memory_order_relaxed);
    /* One shot on the stack's context; SHA-256 of memory fails only when libcrypto cannot
     * allocate its context, which the digest then shows as all zero (never a match). */
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
        for (size_t i = 0; i < AP_SHA256_BYTES; i++)
            out[i] = 0;
}

void ap_sha256_hex(const void *data, size_t len, char out[AP_SHA256_HEX])
{
    unsigned char d[AP_SHA256_BYTES];
    ap_sha256_raw(data, len, d);
    to_hex(d, out);
}

ap_status ap_sha256_file(const char *path, char out[AP_SHA256_HEX], uint64_t *size, ap_err *err)
{
    ap_status st;
    int fd;
    uint64_t fsize;
    if ((st = ap_open_regular(path, &fd, &fsize, err))) return st;
    if (ap_is_scanned_file(path)) ap_cache_warm(fd, fsize);
    size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    ap_sha256 *h = ap_sha256_new();
    if (!buf || !h) {
        free(buf);
        ap_sha256_free(h);
        close(fd);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    uint64_t total = 0;
    for (;;) {
        ssize_t r = read(fd, buf, cap);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = ap_err_errno(err, AP_ERR_IO, errno, "%s: read", path);
            break;
        }
        if (r == 0) break;
        ap_sha256_update(h, buf, (size_t)r);
        total += (uint64_t)r;
    }
    free(buf);
    close(fd);
    if (st) {
        ap_sha256_free(h);
        return st;
    }
    ap_sha256_final(h, out);
    if (size) *size = total;
    return AP_OK;
}
