/* Ed25519 keys (OpenSSL-compatible PEM) and signatures: see include/annpack/sign.h
 * (SHA-256 is sha256.c). Everything cryptographic is libsodium's; this file only frames
 * the fixed-size DER structures RFC 8410 defines for Ed25519. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "annpack/log.h"
#include "annpack/sign.h"
#include "fsops.h"

/* PKCS#8 PrivateKeyInfo for Ed25519: version 0, AlgorithmIdentifier 1.3.101.112,
 * OCTET STRING wrapping the 32-byte seed as an OCTET STRING. */
static const uint8_t PKCS8_PREFIX[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                         0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
/* SubjectPublicKeyInfo for Ed25519: AlgorithmIdentifier, BIT STRING of the 32-byte key. */
static const uint8_t SPKI_PREFIX[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                        0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
static const uint8_t ED25519_OID[5] = {0x06, 0x03, 0x2b, 0x65, 0x70};

struct ap_seckey {
    unsigned char sk[crypto_sign_SECRETKEYBYTES]; /* seed || public key */
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc;

static void init_once(void)
{
    g_init_rc = sodium_init();
}

ap_status ap_crypto_init(ap_err *err)
{
    pthread_once(&g_once, init_once);
    if (g_init_rc < 0) return ap_err_set(err, AP_ERR_INTERNAL, "libsodium failed to initialise");
    return AP_OK;
}

/* The key id: the first 8 bytes of SHA-256 of the raw key, as 16 hex digits. */
static void fill_keyid(ap_pubkey *k)
{
    char hex[AP_SHA256_HEX];
    ap_sha256_hex(k->raw, sizeof k->raw, hex);
    memcpy(k->keyid, hex, AP_KEYID_HEX - 1);
    k->keyid[AP_KEYID_HEX - 1] = '\0';
}

static ap_seckey *alloc_key(void)
{
    ap_seckey *k = sodium_malloc(sizeof *k);
    if (k) sodium_memzero(k, sizeof *k);
    return k;
}

ap_status ap_seckey_generate(ap_seckey **out, ap_err *err)
{
    *out = NULL;
    ap_status st = ap_crypto_init(err);
    if (st) return st;
    ap_seckey *k = alloc_key();
    if (!k) return ap_err_set(err, AP_ERR_NOMEM, "out of secure memory");
    crypto_sign_keypair(k->pk, k->sk);
    *out = k;
    return AP_OK;
}

void ap_seckey_free(ap_seckey *k)
{
    if (k) sodium_free(k); /* wipes before freeing */
}

void ap_seckey_public(const ap_seckey *k, ap_pubkey *out)
{
    memcpy(out->raw, k->pk, sizeof out->raw);
    fill_keyid(out);
}

/* Finds the next PEM block "-----BEGIN LABEL-----" ... "-----END LABEL-----" at or after
 * *pos. Returns 1 and the label/body bounds, 0 when there is none, -1 when malformed. */
static int next_block(const char *pem, size_t len, size_t *pos, const char **label,
                      size_t *label_len, const char **body, size_t *body_len)
{
    static const char BEGIN[] = "-----BEGIN ", END[] = "-----END ", DASH[] = "-----";
    const char *p = pem + *pos, *end = pem + len;
    const char *b = NULL;
    for (const char *q = p; q + sizeof BEGIN - 1 <= end; q++)
        if (!memcmp(q, BEGIN, sizeof BEGIN - 1) && (q == pem || q[-1] == '\n')) {
            b = q;
            break;
        }
    if (!b) return 0;
    const char *l = b + sizeof BEGIN - 1;
    const char *le = NULL;
    for (const char *q = l; q + 5 <= end && *q != '\n'; q++)
        if (!memcmp(q, DASH, 5)) {
            le = q;
            break;
        }
    if (!le || le == l) return -1;
    *label = l;
    *label_len = (size_t)(le - l);
    const char *bs = memchr(le, '\n', (size_t)(end - le));
    if (!bs) return -1;
    bs++;
    /* The END line must carry the same label. */
    for (const char *q = bs; q + sizeof END - 1 <= end; q++) {
        if (!memcmp(q, END, sizeof END - 1) && q[-1] == '\n') {
            const char *el = q + sizeof END - 1;
            if ((size_t)(end - el) < *label_len + 5 || memcmp(el, l, *label_len) ||
                memcmp(el + *label_len, DASH, 5))
                return -1;
            *body = bs;
            *body_len = (size_t)(q - bs);
            const char *after = el + *label_len + 5;
            *pos = (size_t)(after - pem);
            return 1;
        }
    }
    return -1;
}

/* ---- naming the key a PEM holds when it is not Ed25519 -------------------------------- */

/* One DER TLV at *p (before end): its tag and content; advances *p past it. */
static int der_tlv(const uint8_t **p, const uint8_t *end, uint8_t *tag, const uint8_t **c,
                   size_t *clen)
{
    const uint8_t *q = *p;
    if (end - q < 2) return -1;
    *tag = *q++;
    size_t len = *q++;
    if (len & 0x80) {
        size_t nb = len & 0x7f;
        if (nb == 0 || nb > 3 || (size_t)(end - q) < nb) return -1;
        len = 0;
        while (nb--)
            len = len << 8 | *q++;
    }
    if ((size_t)(end - q) < len) return -1;
    *c = q;
    *clen = len;
    *p = q + len;
    return 0;
}

/* The AlgorithmIdentifier OID (and its first parameter when that is an OID, e.g. the EC
 * curve) of a PKCS#8 PrivateKeyInfo (pkcs8) or SubjectPublicKeyInfo. */
static int der_algorithm(const uint8_t *der, size_t n, int pkcs8, const uint8_t **oid,
                         size_t *oid_len, const uint8_t **param, size_t *param_len)
{
    const uint8_t *p = der, *c, *end = der + n;
    size_t cl;
    uint8_t tag;
    *param = NULL;
    *param_len = 0;
    if (der_tlv(&p, end, &tag, &c, &cl) || tag != 0x30) return -1;
    p = c;
    end = c + cl;
    if (pkcs8 && (der_tlv(&p, end, &tag, &c, &cl) || tag != 0x02)) return -1;
    if (der_tlv(&p, end, &tag, &c, &cl) || tag != 0x30) return -1;
    const uint8_t *a = c, *aend = c + cl;
    if (der_tlv(&a, aend, &tag, oid, oid_len) || tag != 0x06 || *oid_len == 0) return -1;
    if (a < aend && !der_tlv(&a, aend, &tag, &c, &cl) && tag == 0x06) {
        *param = c;
        *param_len = cl;
    }
    return 0;
}

/* Dotted form of a DER OID body. */
static void oid_text(const uint8_t *o, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    unsigned long long v = 0;
    int first = 1;
    out[0] = '\0';
    for (size_t i = 0; i < n && w + 24 < cap; i++) {
        v = v << 7 | (o[i] & 0x7f);
        if (o[i] & 0x80) {
            if (v >> 56) break; /* absurd arc */
            continue;
        }
        if (first) {
            unsigned long long x = v < 80 ? v / 40 : 2, y = v < 80 ? v % 40 : v - 80;
            w += (size_t)snprintf(out + w, cap - w, "%llu.%llu", x, y);
            first = 0;
        } else {
            w += (size_t)snprintf(out + w, cap - w, ".%llu", v);
        }
        v = 0;
    }
}

static const struct {
    const char *name;
    uint8_t len;
    uint8_t oid[10];
} KNOWN_OIDS[] = {
    {"RSA", 9, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01}},
    {"RSA-PSS", 9, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a}},
    {"DH", 9, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x03, 0x01}},
    {"DSA", 7, {0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01}},
    {"EC", 7, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01}},
    {"SM2", 8, {0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d}},
    {"X25519", 3, {0x2b, 0x65, 0x6e}},
    {"X448", 3, {0x2b, 0x65, 0x6f}},
    {"Ed25519", 3, {0x2b, 0x65, 0x70}},
    {"Ed448", 3, {0x2b, 0x65, 0x71}},
    /* EC curves (the parameter of an EC key) */
    {"P-256", 8, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}},
    {"P-384", 5, {0x2b, 0x81, 0x04, 0x00, 0x22}},
    {"P-521", 5, {0x2b, 0x81, 0x04, 0x00, 0x23}},
    {"secp256k1", 5, {0x2b, 0x81, 0x04, 0x00, 0x0a}},
};

static const char *oid_name(const uint8_t *o, size_t n)
{
    for (size_t i = 0; i < sizeof KNOWN_OIDS / sizeof KNOWN_OIDS[0]; i++)
        if (KNOWN_OIDS[i].len == n && !memcmp(KNOWN_OIDS[i].oid, o, n)) return KNOWN_OIDS[i].name;
    return NULL;
}

/* "an RSA private key (algorithm 1.2.840.113549.1.1.1)", "an EC (P-256) public key (...)",
 * "a private key of algorithm 1.2.3.4", or "" when the DER does not say. */
static void describe_key(const uint8_t *der, size_t n, int pkcs8, char *out, size_t cap)
{
    const uint8_t *oid, *param;
    size_t ol, pl;
    const char *kind = pkcs8 ? "private" : "public";
    out[0] = '\0';
    if (der_algorithm(der, n, pkcs8, &oid, &ol, &param, &pl)) return;
    char dotted[96];
    oid_text(oid, ol, dotted, sizeof dotted);
    const char *name = oid_name(oid, ol);
    if (!name) {
        snprintf(out, cap, "a %s key of algorithm %s", kind, dotted);
        return;
    }
    const char *curve = param ? oid_name(param, pl) : NULL;
    /* "an RSA", "an EC", "an Ed448", "an X25519", "an SM2"; "a DSA", "a DH" */
    int vowel = strchr("AEIORSUX", name[0]) != NULL;
    if (curve)
        snprintf(out, cap, "%s %s (%s) %s key (algorithm %s)", vowel ? "an" : "a", name, curve,
                 kind, dotted);
    else
        snprintf(out, cap, "%s %s %s key (algorithm %s)", vowel ? "an" : "a", name, kind, dotted);
}

/* Traditional (not PKCS#8 / SPKI) PEM labels of other algorithms: the key they hold. */
static const char *traditional_label(const char *label, size_t n)
{
    static const struct {
        const char *label, *what;
    } T[] = {
        {"RSA PRIVATE KEY", "an RSA private key"},
        {"EC PRIVATE KEY", "an EC private key"},
        {"DSA PRIVATE KEY", "a DSA private key"},
        {"OPENSSH PRIVATE KEY", "an OpenSSH private key"},
        {"RSA PUBLIC KEY", "an RSA public key"},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (strlen(T[i].label) == n && !memcmp(T[i].label, label, n)) return T[i].what;
    return NULL;
}

/* Decodes a PEM body (base64 with line breaks) into out (cap bytes). */
static int decode_body(const char *body, size_t len, uint8_t *out, size_t cap, size_t *got)
{
    /* libsodium 1.0.18 takes bytes >= 0x80 for base64 digits: check the alphabet first, so
     * a body with such bytes is refused instead of decoding to some other key. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)body[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=' || c == '\r' || c == '\n'))
            return -1;
    }
    const char *end = NULL;
    if (sodium_base642bin(out, cap, body, len, "\r\n", got, &end, sodium_base64_VARIANT_ORIGINAL) !=
        0)
        return -1;
    return end == body + len ? 0 : -1;
}

/* What every PEM parse starts with: libsodium ready, and a file no larger than a key file. */
static ap_status pem_begin(size_t len, const char *name, ap_err *err)
{
    ap_status st = ap_crypto_init(err);
    if (st) return st;
    if (len > AP_MAX_PEM_BYTES)
        return ap_err_set(err, AP_ERR_LIMIT,
                          "%s: %zu bytes is too large for a key file (at most %u)", name, len,
                          AP_MAX_PEM_BYTES);
    return AP_OK;
}

ap_status ap_seckey_parse_pem(const char *pem, size_t len, const char *name, ap_seckey **out,
                              ap_err *err)
{
    *out = NULL;
    ap_status st = pem_begin(len, name, err);
    if (st) return st;
    size_t pos = 0, label_len, body_len;
    const char *label, *body;
    int r = next_block(pem, len, &pos, &label, &label_len, &body, &body_len);
    if (r <= 0) return ap_err_set(err, AP_ERR_FORMAT, "%s: no PEM private key block", name);
    if (label_len == 21 && !memcmp(label, "ENCRYPTED PRIVATE KEY", 21))
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: encrypted private keys are not supported (decrypt it with "
                          "`openssl pkey -in KEY -out PLAIN`)",
                          name);
    const char *trad = traditional_label(label, label_len);
    if (trad && !memcmp(label + label_len - 11, "PRIVATE KEY", 11))
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: not an Ed25519 key: it is %s (PEM \"%.*s\"); annpack signs with "
                          "Ed25519 keys (annpack keygen, or openssl genpkey -algorithm ed25519)",
                          name, trad, (int)label_len, label);
    if ((label_len == 10 && !memcmp(label, "PUBLIC KEY", 10)) || trad)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: a public key (PEM \"%.*s\"), not a private key: give the private "
                          "key file (KEY.pem)",
                          name, (int)label_len, label);
    if (label_len != 11 || memcmp(label, "PRIVATE KEY", 11))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: PEM block \"%.*s\" is not a PKCS#8 PRIVATE KEY",
                          name, (int)(label_len > 40 ? 40 : label_len), label);
    size_t p2 = pos, l2, b2;
    const char *lab2, *bod2;
    if (next_block(pem, len, &p2, &lab2, &l2, &bod2, &b2) != 0)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: more than one PEM block in a private key file",
                          name);
    /* Room for any key's DER (an RSA key is over 1 KB), so another algorithm is named
     * rather than reported as bad base64. */
    size_t der_cap = body_len / 4 * 3 + 3;
    uint8_t *der = sodium_malloc(der_cap);
    if (!der) return ap_err_set(err, AP_ERR_NOMEM, "out of secure memory");
    size_t n = 0;
    char what[160];
    if (decode_body(body, body_len, der, der_cap, &n) != 0) {
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: invalid base64 in the PEM body", name);
    } else if (!memmem(der, n, ED25519_OID, sizeof ED25519_OID)) {
        describe_key(der, n, 1, what, sizeof what);
        st = ap_err_set(err, AP_ERR_FORMAT,
                        "%s: not an Ed25519 key: %s%s; annpack signs with Ed25519 keys "
                        "(annpack keygen, or openssl genpkey -algorithm ed25519)",
                        name, what[0] ? "it is " : "",
                        what[0] ? what : "no algorithm 1.3.101.112 in its PKCS#8 DER");
        sodium_memzero(what, sizeof what);
    } else if (n != sizeof PKCS8_PREFIX + 32 || memcmp(der, PKCS8_PREFIX, sizeof PKCS8_PREFIX)) {
        st = ap_err_set(err, AP_ERR_FORMAT,
                        "%s: not an unencrypted PKCS#8 Ed25519 private key (%zu DER bytes)", name,
                        n);
    } else {
        ap_seckey *k = alloc_key();
        if (!k) {
            st = ap_err_set(err, AP_ERR_NOMEM, "out of secure memory");
        } else {
            crypto_sign_seed_keypair(k->pk, k->sk, der + sizeof PKCS8_PREFIX);
            *out = k;
        }
    }
    sodium_free(der);
    return st;
}

ap_status ap_seckey_load(const char *path, ap_seckey **out, ap_err *err)
{
    *out = NULL;
    ap_status st = ap_crypto_init(err);
    if (st) return st;
    int fd;
    uint64_t fsize;
    if ((st = ap_open_regular(path, &fd, &fsize, err))) return st;
    struct stat sb;
    int exposed = fstat(fd, &sb) == 0 && (sb.st_mode & 077);
    if (fsize > AP_MAX_PEM_BYTES) {
        close(fd);
        return ap_err_set(err, AP_ERR_LIMIT, "%s: %llu bytes is too large for a key file", path,
                          (unsigned long long)fsize);
    }
    char *buf = sodium_malloc((size_t)fsize + 1);
    if (!buf) {
        close(fd);
        return ap_err_set(err, AP_ERR_NOMEM, "out of secure memory");
    }
    size_t got = 0;
    while (got < (size_t)fsize) {
        ssize_t r = read(fd, buf + got, (size_t)fsize - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    st = ap_seckey_parse_pem(buf, got, path, out, err);
    sodium_free(buf);
    /* Only about a file that is a private key (a public key given by mistake is reported as
     * such, without this warning). */
    if (st == AP_OK && exposed)
        ap_log(AP_LOG_WARN, "sign",
               "private key %s is readable by group or others (mode %04o); chmod 600 it", path,
               (unsigned)(sb.st_mode & 07777));
    return st;
}

/* Writes a PEM file with O_EXCL and the given mode. */
static ap_status write_pem(const char *path, const char *label, const uint8_t *der, size_t n,
                           int mode, ap_err *err)
{
    char b64[256];
    sodium_bin2base64(b64, sizeof b64, der, n, sodium_base64_VARIANT_ORIGINAL);
    char *text = sodium_malloc(512);
    if (!text) return ap_err_set(err, AP_ERR_NOMEM, "out of secure memory");
    int len = snprintf(text, 512, "-----BEGIN %s-----\n%s\n-----END %s-----\n", label, b64, label);
    sodium_memzero(b64, sizeof b64);
    ap_status st = AP_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        st = ap_err_errno(err, errno == EEXIST ? AP_ERR_EXISTS : AP_ERR_IO, errno, "%s", path);
    } else {
        if (fchmod(fd, (mode_t)mode) != 0 || write(fd, text, (size_t)len) != len || fsync(fd) != 0)
            st = ap_err_errno(err, AP_ERR_IO, errno, "%s: write", path);
        close(fd);
        if (st) unlink(path);
    }
    sodium_free(text);
    return st;
}

ap_status ap_seckey_save(const ap_seckey *k, const char *path, ap_err *err)
{
    uint8_t *der = sodium_malloc(sizeof PKCS8_PREFIX + 32);
    if (!der) return ap_err_set(err, AP_ERR_NOMEM, "out of secure memory");
    memcpy(der, PKCS8_PREFIX, sizeof PKCS8_PREFIX);
    memcpy(der + sizeof PKCS8_PREFIX, k->sk, 32); /* the seed */
    ap_status st = write_pem(path, "PRIVATE KEY", der, sizeof PKCS8_PREFIX + 32, 0600, err);
    sodium_free(der);
    return st;
}

static void spki(const ap_pubkey *k, uint8_t der[44])
{
    memcpy(der, SPKI_PREFIX, sizeof SPKI_PREFIX);
    memcpy(der + sizeof SPKI_PREFIX, k->raw, 32);
}

ap_status ap_pubkey_save(const ap_pubkey *k, const char *path, ap_err *err)
{
    uint8_t der[44];
    spki(k, der);
    return write_pem(path, "PUBLIC KEY", der, sizeof der, 0644, err);
}

char *ap_pubkey_to_pem(const ap_pubkey *k)
{
    uint8_t der[44];
    spki(k, der);
    char b64[128];
    sodium_bin2base64(b64, sizeof b64, der, sizeof der, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(256);
    if (s) snprintf(s, 256, "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n", b64);
    return s;
}

ap_status ap_pubkeys_parse_pem(const char *pem, size_t len, const char *name, ap_pubkey *keys,
                               size_t *nkeys, ap_err *err)
{
    *nkeys = 0;
    ap_status st = pem_begin(len, name, err);
    if (st) return st;
    size_t pos = 0, private_len = 0;
    const char *private_block = NULL;
    for (;;) {
        size_t label_len, body_len;
        const char *label, *body;
        int r = next_block(pem, len, &pos, &label, &label_len, &body, &body_len);
        if (r == 0) break;
        if (r < 0) return ap_err_set(err, AP_ERR_FORMAT, "%s: malformed PEM block", name);
        if (label_len >= 11 && !memcmp(label + label_len - 11, "PRIVATE KEY", 11)) {
            private_block = label;
            private_len = label_len;
        }
        const char *trad = traditional_label(label, label_len);
        if (trad && label_len == 14 && !memcmp(label, "RSA PUBLIC KEY", 14))
            return ap_err_set(err, AP_ERR_FORMAT, "%s: not an Ed25519 key: it is %s (PEM \"%.*s\")",
                              name, trad, (int)label_len, label);
        if (label_len != 10 || memcmp(label, "PUBLIC KEY", 10)) continue;
        if (*nkeys == AP_MAX_PUBKEYS)
            return ap_err_set(err, AP_ERR_LIMIT, "%s: more than %u public keys", name,
                              AP_MAX_PUBKEYS);
        /* Room for any public key (an RSA one is hundreds of bytes), so another algorithm
         * is named rather than reported as bad base64. */
        size_t der_cap = body_len / 4 * 3 + 3, n = 0;
        uint8_t *der = malloc(der_cap);
        if (!der) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        if (decode_body(body, body_len, der, der_cap, &n) != 0) {
            free(der);
            return ap_err_set(err, AP_ERR_FORMAT, "%s: invalid base64 in PUBLIC KEY block %zu",
                              name, *nkeys + 1);
        }
        if (n != 44 || memcmp(der, SPKI_PREFIX, sizeof SPKI_PREFIX)) {
            char what[160];
            describe_key(der, n, 0, what, sizeof what);
            free(der);
            if (what[0] && memcmp(what, "an Ed25519 ", 11) != 0)
                return ap_err_set(err, AP_ERR_FORMAT,
                                  "%s: PUBLIC KEY block %zu is not an Ed25519 key: it is %s", name,
                                  *nkeys + 1, what);
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: PUBLIC KEY block %zu is not an Ed25519 SubjectPublicKeyInfo",
                              name, *nkeys + 1);
        }
        memcpy(keys[*nkeys].raw, der + sizeof SPKI_PREFIX, 32);
        free(der);
        fill_keyid(&keys[*nkeys]);
        (*nkeys)++;
    }
    if (*nkeys == 0 && private_block)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: a private key (PEM \"%.*s\"), not a public key: give the .pub file",
                          name, (int)private_len, private_block);
    if (*nkeys == 0) return ap_err_set(err, AP_ERR_FORMAT, "%s: no PUBLIC KEY block", name);
    return AP_OK;
}

ap_status ap_pubkeys_load(const char *path, ap_pubkey *keys, size_t *nkeys, ap_err *err)
{
    *nkeys = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ap_err_errno(err, errno == ENOENT ? AP_ERR_NOTFOUND : AP_ERR_IO, errno, "%s", path);
    char *buf = malloc(AP_MAX_PEM_BYTES + 1);
    if (!buf) {
        fclose(f);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, AP_MAX_PEM_BYTES + 1, f);
    fclose(f);
    ap_status st = ap_pubkeys_parse_pem(buf, n, path, keys, nkeys, err);
    free(buf);
    return st;
}

ap_status ap_sign(const ap_seckey *k, const void *msg, size_t len, uint8_t sig[AP_SIG_BYTES],
                  ap_err *err)
{
    ap_status st = ap_crypto_init(err);
    if (st) return st;
    if (crypto_sign_detached(sig, NULL, msg, len, k->sk) != 0)
        return ap_err_set(err, AP_ERR_INTERNAL, "signing failed");
    return AP_OK;
}

ap_status ap_verify_sig(const ap_pubkey *keys, size_t nkeys, const void *msg, size_t len,
                        const uint8_t sig[AP_SIG_BYTES], size_t *matched, ap_err *err)
{
    ap_status st = ap_crypto_init(err);
    if (st) return st;
    for (size_t i = 0; i < nkeys; i++)
        if (crypto_sign_verify_detached(sig, msg, len, keys[i].raw) == 0) {
            if (matched) *matched = i;
            return AP_OK;
        }
    char ids[AP_MAX_PUBKEYS * 18 + 1] = "";
    for (size_t i = 0; i < nkeys && i < AP_MAX_PUBKEYS; i++) {
        if (i) strcat(ids, ", ");
        strcat(ids, keys[i].keyid);
    }
    return ap_err_set(err, AP_ERR_VERIFY,
                      "signature does not verify with any of %zu key(s) (key ids: %s)", nkeys, ids);
}
